//! The conformance suite against the embedded broker with durable storage: its journal in a
//! temporary directory of each case. A restart severs the connections, closes the journal
//! (queued records written) and opens a new broker from it; a crash first halts the journal
//! where it stands (records not yet being written are lost, and nothing the broker does
//! afterwards reaches the disk, as when the process is killed) and does the same. A real
//! SIGKILL of a process running the durable broker is `broker-native/tests/durable_crash.rs`.

mod secured_config;

use async_trait::async_trait;
use courier_api::{ConnectionFactory, Result};
use courier_broker::storage::{open_broker, JournalOptions, JournalStore};
use courier_broker::{BrokerConfig, EmbeddedFactory};
use courier_conformance::{AccessSpec, Namespace};
use secured_config::secured_config;
use std::sync::{Arc, Mutex};

/// A durable broker per case, with dead-lettering after three attempts.
struct DurableHarness {
    dir: tempfile::TempDir,
    current: Mutex<(Arc<EmbeddedFactory>, Arc<JournalStore>)>,
    namespace: Namespace,
}

fn open(dir: &std::path::Path) -> Result<(Arc<EmbeddedFactory>, Arc<JournalStore>)> {
    let config = BrokerConfig {
        max_delivery_attempts: Some(3),
        ..BrokerConfig::default()
    };
    let (broker, store, _) = open_broker(dir, config, JournalOptions::default())?;
    Ok((Arc::new(EmbeddedFactory::from_broker(broker)), store))
}

impl DurableHarness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let current = open(dir.path()).expect("a durable broker");
        DurableHarness {
            dir,
            current: Mutex::new(current),
            namespace: Namespace::new(),
        }
    }

    /// Takes the broker down (`halt`: as if killed) and opens a new one from its journal.
    fn bounce(&self, halt: bool) -> Result<()> {
        let mut current = self.current.lock().unwrap();
        if halt {
            // Killed: storage stops first, so nothing the dying broker does after reaches it.
            current.1.journal().halt();
            current.0.sever_connections("the broker was killed");
        } else {
            current.0.sever_connections("the broker was restarted");
            current.1.journal().close();
        }
        *current = open(self.dir.path())?;
        Ok(())
    }
}

#[async_trait]
impl courier_conformance::Harness for DurableHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.current.lock().unwrap().0.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// Nothing to delete: the case's broker and directory are its own.
    async fn cleanup(&self) -> Result<()> {
        Ok(())
    }

    async fn restart(&self) -> Result<()> {
        self.bounce(false)
    }

    async fn crash(&self) -> Result<()> {
        self.bounce(true)
    }

    /// A second, in-memory broker with the spec's users; access control is the same code
    /// with or without a journal.
    async fn secured_factory(&self, spec: &AccessSpec) -> Result<Arc<dyn ConnectionFactory>> {
        Ok(Arc::new(EmbeddedFactory::new(secured_config(spec)?)))
    }

    async fn sever_connections(&self) -> Result<()> {
        self.current
            .lock()
            .unwrap()
            .0
            .sever_connections("severed by the conformance harness");
        Ok(())
    }

    /// The case's broker, through a factory configured with `client_id`.
    async fn factory_with_client_id(&self, client_id: &str) -> Result<Arc<dyn ConnectionFactory>> {
        let factory = self.current.lock().unwrap().0.clone();
        Ok(Arc::new(
            EmbeddedFactory::clone(&factory).with_client_id(client_id)?,
        ))
    }
}

courier_conformance::conformance_suite!(DurableHarness::new());
