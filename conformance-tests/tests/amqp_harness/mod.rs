//! The harness of the RabbitMQ suites: a namespace per case, a loopback TCP proxy in front of
//! RabbitMQ so a case can lose its connections as a network failure would, and cleanup of
//! every durable queue the case's factory declared.

#![allow(dead_code)]

use async_trait::async_trait;
use courier_amqp::{AmqpFactory, QueueType};
use courier_api::{ConnectionFactory, Error, Result};
use courier_conformance::Namespace;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Where RabbitMQ listens.
pub const BROKER: &str = "127.0.0.1:5672";

/// A TCP proxy to [`BROKER`] whose connections can all be cut at once.
pub struct Proxy {
    port: u16,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Listens on a free loopback port.
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = TcpStream::connect(BROKER).await else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let pipe = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                let mut links = held.lock();
                links.retain(|l| !l.is_finished());
                links.push(pipe.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            port,
            links,
            accept,
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cuts every connection through the proxy (new ones still pass).
    pub fn sever(&self) {
        for link in self.links.lock().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}

/// One case's view of RabbitMQ.
pub struct AmqpHarness {
    factory: Arc<AmqpFactory>,
    namespace: Namespace,
    proxy: Proxy,
}

impl AmqpHarness {
    /// A harness whose factory declares queues of `queue_type`, through a fresh proxy.
    pub async fn new(queue_type: QueueType) -> Self {
        let proxy = Proxy::start().await;
        let kind = match queue_type {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        };
        let url = format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f?queue_type={kind}&request_timeout=10s",
            proxy.port
        );
        AmqpHarness {
            factory: Arc::new(AmqpFactory::new(&url).expect("a valid URL")),
            namespace: Namespace::new(),
            proxy,
        }
    }
}

/// Deletes `queues` over a direct connection to RabbitMQ.
pub async fn delete_queues(queues: &[String]) -> Result<()> {
    if queues.is_empty() {
        return Ok(());
    }
    let backend = |e: lapin::Error| Error::backend("amqp", e);
    let connection = lapin::Connection::connect(
        &format!("amqp://guest:guest@{BROKER}/%2f"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .map_err(backend)?;
    for queue in queues {
        // A channel per delete: a missing queue is fine, and must not close the others.
        let channel = connection.create_channel().await.map_err(backend)?;
        let _ = channel
            .queue_delete(
                queue.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
        let _ = channel.close(200, "OK".into()).await;
    }
    connection.close(200, "OK".into()).await.map_err(backend)
}

/// Runs `rabbitmqctl` with `args` (two minutes at most); its output, or an error.
async fn rabbitmqctl(args: &[&str]) -> Result<String> {
    let run = tokio::process::Command::new("rabbitmqctl")
        .args(["--timeout", "120"])
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .map_err(|_| Error::Timeout(Duration::from_secs(150)))?
        .map_err(|e| Error::backend("amqp", e))?;
    if !output.status.success() {
        return Err(Error::illegal_state(format!(
            "rabbitmqctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Waits (two minutes at most) until RabbitMQ runs and has booted: `await_startup` fails at
/// once while the node is not yet registered, so it is asked again every half second.
async fn wait_up() -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match rabbitmqctl(&["await_startup"]).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Where RabbitMQ's node keeps its process id and its log (Debian's package).
const PID_FILE: &str = "/var/lib/rabbitmq/mnesia/rabbit@localhost.pid";
const LOG_FILE: &str = "/var/log/rabbitmq/rabbit@localhost.log";

/// Kills `pid` with SIGKILL, waits until it is gone (or a zombie: nothing reaps orphans in
/// some containers), then starts `rabbitmq-server -detached`.
async fn kill_and_start(pid: u32) -> Result<()> {
    let killed = tokio::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .await
        .map_err(|e| Error::backend("amqp", e))?;
    if !killed.success() && alive(pid) {
        return Err(Error::illegal_state(format!("kill -9 {pid} failed")));
    }
    for _ in 0..100 {
        if !alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = tokio::process::Command::new("rabbitmq-server")
        .arg("-detached")
        .status()
        .await
        .map_err(|e| Error::backend("amqp", e))?;
    if !started.success() {
        return Err(Error::illegal_state("rabbitmq-server -detached failed"));
    }
    Ok(())
}

/// Whether process `pid` runs: it exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `1234 (beam.smp) Z ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The process id RabbitMQ's node wrote at start, if any.
async fn pid_file() -> Option<u32> {
    tokio::fs::read_to_string(PID_FILE)
        .await
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// The last lines of RabbitMQ's log, for a failure report.
async fn log_tail() -> String {
    let text = tokio::fs::read_to_string(LOG_FILE)
        .await
        .unwrap_or_else(|e| format!("({LOG_FILE}: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Free space where RabbitMQ keeps its data, for a failure report.
fn disk_free() -> String {
    std::process::Command::new("df")
        .args(["-h", "/var/lib/rabbitmq"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("(df: {e})"))
}

/// The OS process id of RabbitMQ's Erlang VM, from `rabbitmqctl status`.
async fn status_pid() -> Result<u32> {
    let status = rabbitmqctl(&["status"]).await?;
    status
        .lines()
        .find_map(|line| line.trim().strip_prefix("OS PID: "))
        .and_then(|pid| pid.trim().parse().ok())
        .ok_or_else(|| Error::illegal_state("rabbitmqctl status names no OS PID"))
}

#[async_trait]
impl courier_conformance::Harness for AmqpHarness {
    fn factory(&self) -> Arc<dyn ConnectionFactory> {
        self.factory.clone()
    }

    fn namespace(&self) -> &str {
        self.namespace.as_str()
    }

    /// Deletes every durable queue the case's factories declared; exclusive and auto-delete
    /// queues went with their connections.
    async fn cleanup(&self) -> Result<()> {
        let queues = self.factory.declared_queues();
        tokio::time::timeout(Duration::from_secs(30), delete_queues(&queues))
            .await
            .map_err(|_| Error::Timeout(Duration::from_secs(30)))?
    }

    /// `rabbitmqctl stop_app` then `start_app`: RabbitMQ stops gracefully and comes back with
    /// what it stored durably.
    async fn restart(&self) -> Result<()> {
        wait_up().await?;
        rabbitmqctl(&["stop_app"]).await?;
        rabbitmqctl(&["start_app"]).await?;
        wait_up().await
    }

    /// Kills RabbitMQ's Erlang VM with SIGKILL (no chance to flush its message store), then
    /// starts the server again and waits for it.
    ///
    /// Before the kill, Mnesia (RabbitMQ 3.x's metadata store) is asked to dump its log: this
    /// RabbitMQ (3.10 on Erlang 25) loses a durable queue declared moments before a kill -9,
    /// and every confirmed message in it: 5 of 81 crashes here (the queue is missing after
    /// recovery, "Recovering 0 queues"), none of 72 after the dump.
    /// That is RabbitMQ's metadata, not message durability, which is what the cases test;
    /// the README says a queue that must survive a crash is declared ahead of time.
    async fn crash(&self) -> Result<()> {
        wait_up().await?;
        rabbitmqctl(&["eval", "mnesia:dump_log()."]).await?;
        let pid = status_pid().await?;
        kill_and_start(pid).await?;
        match wait_up().await {
            Ok(()) => Ok(()),
            Err(first) => {
                // Seen once on CI: the restarted node never finished booting. Kill it and
                // start again once before calling the case failed, saying what RabbitMQ
                // logged either way.
                let stuck = pid_file().await;
                eprintln!(
                    "RabbitMQ did not boot after kill -9 ({first}); its log ends:\n{}",
                    log_tail().await
                );
                if let Some(stuck) = stuck {
                    kill_and_start(stuck).await?;
                }
                wait_up().await.map_err(|e| {
                    Error::illegal_state(format!(
                        "RabbitMQ did not boot after kill -9, twice: {e}; disk: {}",
                        disk_free()
                    ))
                })
            }
        }
    }

    fn quiet(&self) -> Duration {
        Duration::from_millis(300)
    }

    /// Cuts the proxied sockets, then gives the clients' I/O loops a moment to read the end
    /// of their streams.
    async fn sever_connections(&self) -> Result<()> {
        self.proxy.sever();
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }

    async fn factory_with_client_id(&self, client_id: &str) -> Result<Arc<dyn ConnectionFactory>> {
        Ok(Arc::new(
            AmqpFactory::clone(&self.factory).with_client_id(client_id),
        ))
    }
}

/// The RabbitMQ suite for queues of `$queue_type`: every area but persistence, acknowledge,
/// messages and in-doubt (each binary adds those three: quorum queues leave out their two cases that
/// need a message given back to keep its place), and of the tuple-space cases only
/// `open_needs_queue_selectors` (see the test binaries' docs).
#[macro_export]
macro_rules! amqp_suite {
    ($queue_type:expr) => {
        courier_conformance::browsing_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::cases!(
            AmqpHarness::new($queue_type).await,
            concurrency,
            [
                queue_4x4_exactly_once_in_order_6_2_9,
                topic_concurrent_publishers_all_subscribers_get_all_6_2_9,
                transacted_competing_consumers_commit_once_6_2_9,
                cancelled_receive_passes_wakeup_on_timeout,
                cancelled_receive_passes_wakeup_on_select,
                worker_pool_with_timeouts_gets_every_message_promptly,
            ]
        );
        courier_conformance::connection_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::connection_loss_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::cases!(
            AmqpHarness::new($queue_type).await,
            dead_letter,
            [
                rolled_back_message_dead_lettered_6_2_10,
                acknowledged_before_limit_never_dead_lettered_6_2_10,
                poison_message_does_not_block_queue_6_2_10,
                unacknowledged_close_counts_as_failed_attempt_6_2_10,
            ]
        );
        courier_conformance::deletion_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::delivery_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::errors_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::headers_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::listener_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::ordering_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::pipelining_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::properties_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::queues_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::security_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::selector_index_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::selectors_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::temporary_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::topics_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::transactions_cases!(AmqpHarness::new($queue_type).await);
        courier_conformance::cases!(
            AmqpHarness::new($queue_type).await,
            space,
            [open_needs_queue_selectors]
        );
    };
}
