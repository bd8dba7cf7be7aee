//! The conformance suite against the embedded (in-process) broker.

use async_trait::async_trait;
use courier_api::{ConnectionFactory, Result};
use courier_broker::{BrokerConfig, EmbeddedFactory};
use courier_conformance::Namespace;
use std::sync::Arc;

/// A fresh in-memory broker per case, with dead-lettering after three attempts. It cannot
/// restart or crash (nothing is durable), so those keep the suite's `Unsupported` default.
struct EmbeddedHarness {
    factory: Arc<EmbeddedFactory>,
    namespace: Namespace,
}

impl EmbeddedHarness {
    fn new() -> Self {
        let config = BrokerConfig {
            max_delivery_attempts: Some(3),
            ..BrokerConfig::default()
        };
        EmbeddedHarness {
            factory: Arc::new(EmbeddedFactory::new(config)),
            namespace: Namespace::new(),
        }
    }
}

#[async_trait]
impl courier_conformance::Harness for EmbeddedHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// Nothing to delete: the case's broker is its own and goes away with the harness.
    async fn cleanup(&self) -> Result<()> {
        Ok(())
    }
}

courier_conformance::conformance_suite!(EmbeddedHarness::new());
