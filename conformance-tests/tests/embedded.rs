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

/// Checks of the suite's own machinery, on the embedded broker.
mod machinery {
    use super::EmbeddedHarness;
    use async_trait::async_trait;
    use courier_api::{Capabilities, ConnectionFactory, Error, Result};
    use courier_conformance::harness::run_case;
    use courier_conformance::{persistence, Harness};
    use futures::FutureExt;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// The embedded harness, counting cleanups and optionally claiming durable storage.
    struct Probe {
        inner: EmbeddedHarness,
        cleanups: AtomicUsize,
        claims_durable: bool,
    }

    impl Probe {
        fn new(claims_durable: bool) -> Self {
            Probe {
                inner: EmbeddedHarness::new(),
                cleanups: AtomicUsize::new(0),
                claims_durable,
            }
        }
    }

    #[async_trait]
    impl Harness for Probe {
        fn factory(&self) -> Arc<dyn ConnectionFactory> {
            self.inner.factory()
        }

        fn capabilities(&self) -> Capabilities {
            let mut caps = self.inner.capabilities();
            caps.durable_storage = self.claims_durable;
            caps
        }

        fn namespace(&self) -> &str {
            self.inner.namespace()
        }

        async fn cleanup(&self) -> Result<()> {
            self.cleanups.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Runs `case` through [`run_case`]; true when it panicked.
    async fn panics<F: std::future::Future<Output = Result<()>>>(probe: &Probe, case: F) -> bool {
        AssertUnwindSafe(run_case(probe, "machinery::probe", case))
            .catch_unwind()
            .await
            .is_err()
    }

    #[tokio::test]
    async fn cleanup_runs_after_passing_failing_and_panicking_cases() {
        let probe = Probe::new(false);
        assert!(!panics(&probe, async { Ok(()) }).await);
        assert!(panics(&probe, async { Err(Error::IllegalState("failed".into())) }).await);
        assert!(panics(&probe, async { panic!("an assertion failed") }).await);
        assert_eq!(probe.cleanups.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn names_live_under_the_namespace() {
        let probe = Probe::new(false);
        let a = probe.name("orders");
        assert!(
            a.starts_with(&format!("{}_orders-", probe.namespace())),
            "{a}"
        );
        assert_ne!(a, probe.name("orders"), "each name is unique");
        assert_ne!(probe.namespace(), Probe::new(false).namespace());
    }

    #[tokio::test]
    async fn persistence_case_fails_when_a_durable_backend_cannot_restart() {
        let honest = Probe::new(false);
        assert!(
            !panics(
                &honest,
                persistence::persistent_message_survives_restart_6_2_6(&honest)
            )
            .await
        );
        let durable = Probe::new(true);
        assert!(
            panics(
                &durable,
                persistence::persistent_message_survives_crash_6_2_6(&durable)
            )
            .await,
            "a backend claiming durable storage must not pass by answering Unsupported"
        );
    }
}
