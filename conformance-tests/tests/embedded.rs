//! The conformance suite against the embedded (in-process) broker.

use async_trait::async_trait;
use courier_api::{ConnectionFactory, Error, Result};
use courier_broker::{BrokerConfig, EmbeddedFactory};
use std::sync::Arc;

/// A fresh in-memory broker per case, with dead-lettering after three attempts.
struct EmbeddedHarness {
    factory: Arc<EmbeddedFactory>,
}

impl EmbeddedHarness {
    fn new() -> Self {
        let config = BrokerConfig {
            max_delivery_attempts: Some(3),
            ..BrokerConfig::default()
        };
        EmbeddedHarness {
            factory: Arc::new(EmbeddedFactory::new(config)),
        }
    }
}

#[async_trait]
impl courier_conformance::Harness for EmbeddedHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    async fn restart(&self) -> Result<()> {
        Err(Error::unsupported(
            "embedded",
            "restart of an in-memory broker (nothing is durable)",
        ))
    }

    async fn sever_connections(&self) -> Result<()> {
        self.factory
            .sever_connections("severed by the conformance harness");
        Ok(())
    }
}

courier_conformance::conformance_suite!(EmbeddedHarness::new());
