//! The conformance suite against the embedded (in-process) broker.

mod secured_config;

use async_trait::async_trait;
use courier_api::{ConnectionFactory, Result};
use courier_broker::{BrokerConfig, EmbeddedFactory};
use courier_conformance::{AccessSpec, Namespace};
use secured_config::secured_config;
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

    /// A second broker of the case with the spec's users (each password hashed here with
    /// argon2id) and anonymous access off; each grant is a rule for the exact name.
    async fn secured_factory(&self, spec: &AccessSpec) -> Result<Arc<dyn ConnectionFactory>> {
        Ok(Arc::new(EmbeddedFactory::new(secured_config(spec)?)))
    }

    async fn sever_connections(&self) -> Result<()> {
        self.factory
            .sever_connections("severed by the conformance harness");
        Ok(())
    }

    /// The case's broker, through a factory configured with `client_id`.
    async fn factory_with_client_id(&self, client_id: &str) -> Result<Arc<dyn ConnectionFactory>> {
        Ok(Arc::new(
            EmbeddedFactory::clone(&self.factory).with_client_id(client_id)?,
        ))
    }
}

courier_conformance::conformance_suite!(EmbeddedHarness::new());

/// Checks of the suite's own machinery, on the embedded broker.
mod machinery {
    use super::EmbeddedHarness;
    use async_trait::async_trait;
    use courier_api::{Capabilities, ConnectionFactory, Durability, Error, Result};
    use courier_conformance::harness::run_case;
    use courier_conformance::{persistence, Harness};
    use futures::FutureExt;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// The embedded harness, counting cleanups and optionally claiming durable storage or
    /// denying capabilities it has.
    struct Probe {
        inner: EmbeddedHarness,
        cleanups: AtomicUsize,
        claims_durable: bool,
        deny: fn(&mut Capabilities),
    }

    impl Probe {
        fn new(claims_durable: bool) -> Self {
            Probe {
                inner: EmbeddedHarness::new(),
                cleanups: AtomicUsize::new(0),
                claims_durable,
                deny: |_| {},
            }
        }

        fn denying(deny: fn(&mut Capabilities)) -> Self {
            Probe {
                deny,
                ..Probe::new(false)
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
            if self.claims_durable {
                caps.durable_storage = true;
                caps.persistent_durability = Durability::Disk;
            }
            (self.deny)(&mut caps);
            caps
        }

        fn namespace(&self) -> &str {
            self.inner.namespace()
        }

        async fn cleanup(&self) -> Result<()> {
            self.cleanups.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        /// A backend that ignores the spec: no users, anonymous callers may do everything,
        /// any credentials are let in.
        async fn secured_factory(
            &self,
            _spec: &courier_conformance::AccessSpec,
        ) -> Result<Arc<dyn ConnectionFactory>> {
            Ok(Arc::new(Lax(courier_broker::EmbeddedFactory::default())))
        }
    }

    /// A factory that lets any credentials in, as a backend without access control would.
    struct Lax(courier_broker::EmbeddedFactory);

    #[async_trait]
    impl ConnectionFactory for Lax {
        async fn create_connection(&self) -> Result<Box<dyn courier_api::Connection>> {
            self.0.create_connection().await
        }

        async fn create_connection_with(
            &self,
            _username: &str,
            _password: &str,
        ) -> Result<Box<dyn courier_api::Connection>> {
            self.0.create_connection().await
        }

        fn capabilities(&self) -> Capabilities {
            self.0.capabilities()
        }
    }

    /// Every security case fails against a backend that checks nothing.
    #[tokio::test]
    async fn security_cases_fail_without_access_control() {
        use courier_conformance::security;
        macro_rules! probe {
            ($case:path) => {{
                let probe = Probe::new(false);
                (stringify!($case), panics(&probe, $case(&probe)).await)
            }};
        }
        let results = [
            probe!(security::wrong_password_is_refused),
            probe!(security::unknown_user_is_refused_like_a_wrong_password),
            probe!(security::no_credentials_are_refused_when_anonymous_is_off),
            probe!(security::send_to_a_receive_only_destination_is_refused),
            probe!(security::receive_from_a_forbidden_destination_is_refused),
            probe!(security::browse_of_a_forbidden_destination_is_refused),
        ];
        let passed: Vec<_> = results.iter().filter(|(_, p)| !p).map(|(n, _)| n).collect();
        assert!(
            passed.is_empty(),
            "passed without access control: {passed:?}"
        );
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

    /// A case whose capability gate is wired fails when the harness denies the capability the
    /// embedded broker really has: the gate expects `Unsupported` and gets success.
    #[tokio::test]
    async fn gated_cases_fail_when_a_capability_is_wrongly_denied() {
        use courier_conformance::{
            connection, delivery, headers, ordering, security, temporary, topics, transactions,
        };
        type Deny = fn(&mut Capabilities);
        macro_rules! probe {
            ($deny:expr, $case:path) => {{
                let probe = Probe::denying($deny);
                (stringify!($case), panics(&probe, $case(&probe)).await)
            }};
        }
        let priority: Deny = |c| c.priority = false;
        let expiry: Deny = |c| c.expiry = false;
        let no_local: Deny = |c| c.no_local = false;
        let client_id: Deny = |c| c.client_id_exclusive = false;
        let transactions_off: Deny = |c| c.transactions = false;
        let temporary_off: Deny = |c| c.temporary_destinations = false;
        let durable: Deny = |c| c.durable_subscriptions = false;
        let shared: Deny = |c| c.shared_subscriptions = false;
        let access: Deny = |c| c.access_control = false;
        let results = [
            probe!(priority, ordering::priority_order_3_4_10),
            probe!(expiry, delivery::expired_message_not_delivered_7_8),
            probe!(expiry, headers::expiration_is_send_time_plus_ttl_3_4_9),
            probe!(no_local, topics::no_local_skips_own_connection_6_11),
            probe!(client_id, connection::duplicate_client_id_is_refused_6_1_2),
            probe!(
                transactions_off,
                transactions::rollback_discards_sends_6_2_6
            ),
            probe!(temporary_off, temporary::temporary_queues_are_distinct_4_4),
            probe!(durable, topics::durable_keeps_messages_while_inactive_6_11),
            probe!(shared, topics::shared_subscription_splits_messages_6_11),
            probe!(access, security::permitted_operations_work),
        ];
        let passed: Vec<_> = results.iter().filter(|(_, p)| !p).map(|(n, _)| n).collect();
        assert!(passed.is_empty(), "gates not wired in {passed:?}");
    }
}
