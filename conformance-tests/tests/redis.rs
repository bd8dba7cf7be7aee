//! The conformance suite against the machine's Redis (127.0.0.1:6379), each case under its
//! own namespace whose keys are deleted after it. Restart and crash need a server of their
//! own: that area runs in `redis_persistence.rs`.

use async_trait::async_trait;
use courier_api::{ConnectionFactory, Result};
use courier_conformance::Namespace;
use courier_redis::RedisFactory;
use std::sync::Arc;

/// The machine's Redis, unless `COURIER_REDIS_URL` names another.
fn server() -> String {
    std::env::var("COURIER_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// More Courier URL options for every case, from `COURIER_REDIS_OPTIONS`
/// (`COURIER_REDIS_OPTIONS=prefetch=50` runs the suite with consumers that buffer).
fn options() -> String {
    std::env::var("COURIER_REDIS_OPTIONS")
        .map(|o| format!("&{o}"))
        .unwrap_or_default()
}

/// One case's view of the server: its namespace, and a dead-letter queue inside it.
struct RedisHarness {
    factory: Arc<RedisFactory>,
    namespace: Namespace,
}

impl RedisHarness {
    fn new() -> Self {
        let namespace = Namespace::new();
        let url = format!(
            "{}?max_delivery_attempts=3&dead_letter_queue={}_DLQ{}",
            server(),
            namespace.as_str(),
            options()
        );
        RedisHarness {
            factory: Arc::new(courier_redis::factory_for(&url).expect("a valid URL")),
            namespace,
        }
    }
}

/// Deletes every key whose name holds `namespace`.
async fn delete_namespace(namespace: &str) -> Result<()> {
    let client =
        redis::Client::open(server()).map_err(|e| courier_api::Error::backend("redis", e))?;
    let mut cmd = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| courier_api::Error::backend("redis", e))?;
    let pattern = format!("*{namespace}*");
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut cmd)
            .await
            .map_err(|e| courier_api::Error::backend("redis", e))?;
        if !found.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&found)
                .query_async(&mut cmd)
                .await
                .map_err(|e| courier_api::Error::backend("redis", e))?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

#[async_trait]
impl courier_conformance::Harness for RedisHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// What a dead connection held comes back when its lease (three 1 s heartbeats) lapses.
    fn wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(10)
    }

    /// Closes what the case left open (by severing), then deletes the namespace's keys.
    async fn cleanup(&self) -> Result<()> {
        self.factory.sever_connections().await?;
        delete_namespace(self.namespace.as_str()).await
    }

    async fn sever_connections(&self) -> Result<()> {
        self.factory.sever_connections().await
    }

    async fn factory_with_client_id(&self, client_id: &str) -> Result<Arc<dyn ConnectionFactory>> {
        Ok(Arc::new(self.factory.with_client_id(client_id)?))
    }
}

courier_conformance::ordinary_suite!(RedisHarness::new());
