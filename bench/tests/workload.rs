//! Small end-to-end runs of the workload runner on the embedded broker. They check delivery
//! (exactly once, in order), never speed.

use courier::DeliveryMode;
use courier_bench::{
    self as workload, AckMode, DeepQueueSpec, FlowSpec, Limit, MemorySpec, Scenario, Topology,
    Workload,
};
use std::time::Duration;

fn flow(name: &str, spec: FlowSpec) -> Workload {
    Workload::new(name, "test", Scenario::Flow(spec))
}

fn small(topology: Topology) -> FlowSpec {
    FlowSpec {
        limit: Limit::Messages(2_000),
        ..FlowSpec::new(topology)
    }
}

async fn assert_exactly_once(workload: Workload) {
    let report = workload::measure("embedded:", &workload)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", workload.name));
    assert!(
        report.measured.check.exactly_once(),
        "{}",
        report.failure().unwrap_or_default()
    );
    assert!(report.passed(), "{}", report.failure().unwrap_or_default());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["exactly_once"], true);
    assert_eq!(json["url"], "embedded:");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_competing_client_ack_consumers_delivers_exactly_once() {
    assert_exactly_once(flow(
        "queue-3x2-client",
        FlowSpec {
            ack: AckMode::Client { batch: 7 },
            message_size: 64,
            ..small(Topology::Queue {
                producers: 3,
                consumers: 2,
            })
        },
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscription_of_a_topic_gets_every_message() {
    let report = workload::measure(
        "embedded:",
        &flow(
            "topic-2x3",
            FlowSpec {
                ack: AckMode::DupsOk,
                ..small(Topology::Topic {
                    producers: 2,
                    subscriptions: 3,
                })
            },
        ),
    )
    .await
    .unwrap();
    assert!(report.passed(), "{}", report.failure().unwrap_or_default());
    assert_eq!(report.measured.messages, 3 * 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transacted_sends_and_a_forwarding_stage_deliver_exactly_once() {
    assert_exactly_once(flow(
        "tx-batch",
        FlowSpec {
            send_batch: Some(64),
            delivery_mode: DeliveryMode::Persistent,
            ..small(Topology::Queue {
                producers: 2,
                consumers: 1,
            })
        },
    ))
    .await;
    assert_exactly_once(flow(
        "tx-forward",
        small(Topology::Forward {
            producers: 2,
            consumers: 2,
            commit_every: 5,
        }),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_deliver_exactly_once_alone_and_in_transactions() {
    let pipelined = FlowSpec {
        send_window: Some(50),
        ..small(Topology::Queue {
            producers: 2,
            consumers: 2,
        })
    };
    assert_exactly_once(flow("queue-pipelined", pipelined.clone())).await;
    assert_exactly_once(flow(
        "tx-pipelined",
        FlowSpec {
            send_batch: Some(64),
            ..pipelined
        },
    ))
    .await;
}

#[test]
fn a_send_window_must_be_bounded_and_positive() {
    for window in [0, courier_bench::MAX_SEND_WINDOW + 1, usize::MAX] {
        let spec = FlowSpec {
            send_window: Some(window),
            ..small(Topology::Queue {
                producers: 1,
                consumers: 1,
            })
        };
        assert!(
            flow("bad-window", spec).validate().is_err(),
            "window {window}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_split_a_queue_and_a_timed_paced_run_checks_out() {
    assert_exactly_once(flow(
        "queue-keyed",
        FlowSpec {
            selector_keys: Some(3),
            ..small(Topology::Queue {
                producers: 2,
                consumers: 4,
            })
        },
    ))
    .await;
    assert_exactly_once(flow(
        "queue-timed",
        FlowSpec {
            limit: Limit::Duration(Duration::from_millis(200)),
            rate: Some(5_000),
            ..FlowSpec::new(Topology::Queue {
                producers: 2,
                consumers: 2,
            })
        },
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_queue_selectors_and_the_memory_workload_check_out() {
    assert_exactly_once(Workload::new(
        "deep",
        "test",
        Scenario::DeepQueue(DeepQueueSpec {
            depth: 5_000,
            keys: 50,
            consumers: 5,
            message_size: 100,
            delivery_mode: DeliveryMode::NonPersistent,
            stall_timeout: Duration::from_secs(10),
        }),
    ))
    .await;
    let memory = Workload::new(
        "memory",
        "test",
        Scenario::Memory(MemorySpec {
            depth: 2_000,
            message_size: 100,
            delivery_mode: DeliveryMode::NonPersistent,
        }),
    );
    if cfg!(target_os = "linux") {
        assert_exactly_once(memory).await;
    }
}

/// A run deletes the destinations it made, with what they still hold: the broker is left
/// as it was (only the dead-letter queue it always has).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_deletes_its_destinations() {
    use courier::broker::{BrokerConfig, EmbeddedFactory};
    let factory = EmbeddedFactory::new(BrokerConfig::default());
    let before = factory.broker().stats();
    let forward = flow(
        "forward",
        small(Topology::Forward {
            producers: 1,
            consumers: 1,
            commit_every: 10,
        }),
    );
    let topic = flow(
        "topic",
        small(Topology::Topic {
            producers: 1,
            subscriptions: 2,
        }),
    );
    for w in [forward, topic] {
        workload::run(&factory, &w).await.unwrap();
        let after = factory.broker().stats();
        assert_eq!(
            (after.queues, after.topics, after.stored_messages),
            (before.queues, before.topics, 0),
            "{} left destinations behind",
            w.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_workloads_are_refused_before_running() {
    let factory = courier::connect("embedded:").await.unwrap();
    let tiny = flow(
        "tiny",
        FlowSpec {
            message_size: 4,
            ..small(Topology::Queue {
                producers: 1,
                consumers: 1,
            })
        },
    );
    assert!(matches!(
        workload::run(factory.as_ref(), &tiny).await,
        Err(courier::Error::InvalidArgument(_))
    ));
}

/// A backend that breaks delivery on purpose, to show the runner reports it end to end: the
/// embedded broker behind consumers that lose, repeat or swap one message.
mod faulty {
    use async_trait::async_trait;
    use courier::{
        Browser, Capabilities, Connection, ConnectionFactory, Consumer, ConsumerOptions,
        Destination, ExceptionListener, Message, Producer, Result, Session, SessionMode,
    };
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// What goes wrong, at the consumer's `n`-th message (from 0).
    #[derive(Debug, Clone, Copy)]
    pub enum Fault {
        Drop(u64),
        Duplicate(u64),
        Swap(u64),
        /// Hands out a message this stamp before the `n`-th: (n, producer, sequence), with
        /// the headers of a real one.
        Forge(u64, u32, u64),
        /// Hands out the `n`-th message with its destination header changed.
        Misaddress(u64),
        /// Hands out the `n`-th message with one byte of its body past the stamp flipped.
        Corrupt(u64),
    }

    pub struct Factory {
        pub inner: courier::broker::EmbeddedFactory,
        pub fault: Fault,
    }

    #[async_trait]
    impl ConnectionFactory for Factory {
        async fn create_connection(&self) -> Result<Box<dyn Connection>> {
            Ok(Box::new(FaultyConnection {
                inner: self.inner.create_connection().await?,
                fault: self.fault,
            }))
        }

        async fn create_connection_with(&self, _: &str, _: &str) -> Result<Box<dyn Connection>> {
            self.create_connection().await
        }

        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
    }

    struct FaultyConnection {
        inner: Box<dyn Connection>,
        fault: Fault,
    }

    #[async_trait]
    impl Connection for FaultyConnection {
        async fn set_client_id(&self, id: &str) -> Result<()> {
            self.inner.set_client_id(id).await
        }
        fn client_id(&self) -> Option<String> {
            self.inner.client_id()
        }
        async fn start(&self) -> Result<()> {
            self.inner.start().await
        }
        async fn stop(&self) -> Result<()> {
            self.inner.stop().await
        }
        async fn create_session(&self, mode: SessionMode) -> Result<Box<dyn Session>> {
            Ok(Box::new(FaultySession {
                inner: self.inner.create_session(mode).await?,
                fault: self.fault,
            }))
        }
        fn set_exception_listener(&self, listener: Option<ExceptionListener>) {
            self.inner.set_exception_listener(listener)
        }
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        fn metadata(&self) -> courier::ConnectionMetadata {
            self.inner.metadata()
        }
        async fn closed(&self) -> courier::Error {
            self.inner.closed().await
        }
        async fn close(&self) -> Result<()> {
            self.inner.close().await
        }
    }

    struct FaultySession {
        inner: Box<dyn Session>,
        fault: Fault,
    }

    #[async_trait]
    impl Session for FaultySession {
        fn mode(&self) -> SessionMode {
            self.inner.mode()
        }
        async fn create_producer(&self, d: Option<&Destination>) -> Result<Box<dyn Producer>> {
            self.inner.create_producer(d).await
        }
        async fn create_consumer(
            &self,
            d: &Destination,
            options: ConsumerOptions,
        ) -> Result<Box<dyn Consumer>> {
            Ok(Box::new(FaultyConsumer {
                inner: self.inner.create_consumer(d, options).await?,
                fault: self.fault,
                seen: AtomicU64::new(0),
                held: Mutex::new(None),
            }))
        }
        async fn create_durable_consumer(
            &self,
            t: &Destination,
            name: &str,
            o: ConsumerOptions,
        ) -> Result<Box<dyn Consumer>> {
            self.inner.create_durable_consumer(t, name, o).await
        }
        async fn create_shared_consumer(
            &self,
            t: &Destination,
            name: &str,
            o: ConsumerOptions,
        ) -> Result<Box<dyn Consumer>> {
            self.inner.create_shared_consumer(t, name, o).await
        }
        async fn create_shared_durable_consumer(
            &self,
            t: &Destination,
            name: &str,
            o: ConsumerOptions,
        ) -> Result<Box<dyn Consumer>> {
            self.inner.create_shared_durable_consumer(t, name, o).await
        }
        async fn unsubscribe(&self, name: &str) -> Result<()> {
            self.inner.unsubscribe(name).await
        }
        async fn create_browser(
            &self,
            q: &Destination,
            s: Option<&str>,
        ) -> Result<Box<dyn Browser>> {
            self.inner.create_browser(q, s).await
        }
        async fn create_temporary_queue(&self) -> Result<Destination> {
            self.inner.create_temporary_queue().await
        }
        async fn create_temporary_topic(&self) -> Result<Destination> {
            self.inner.create_temporary_topic().await
        }
        async fn delete_temporary(&self, d: &Destination) -> Result<()> {
            self.inner.delete_temporary(d).await
        }
        async fn delete_destination(&self, d: &Destination) -> Result<()> {
            self.inner.delete_destination(d).await
        }
        async fn commit(&self) -> Result<()> {
            self.inner.commit().await
        }
        async fn rollback(&self) -> Result<()> {
            self.inner.rollback().await
        }
        async fn recover(&self) -> Result<()> {
            self.inner.recover().await
        }
        async fn acknowledge(&self) -> Result<()> {
            self.inner.acknowledge().await
        }
        async fn close(&self) -> Result<()> {
            self.inner.close().await
        }
    }

    struct FaultyConsumer {
        inner: Box<dyn Consumer>,
        fault: Fault,
        seen: AtomicU64,
        /// A message to hand out before asking the broker again.
        held: Mutex<Option<Message>>,
    }

    #[async_trait]
    impl Consumer for FaultyConsumer {
        fn destination(&self) -> &Destination {
            self.inner.destination()
        }
        fn selector(&self) -> Option<&str> {
            self.inner.selector()
        }
        async fn receive(&self) -> Result<Option<Message>> {
            if let Some(held) = self.held.lock().unwrap().take() {
                return Ok(Some(held));
            }
            let Some(message) = self.inner.receive().await? else {
                return Ok(None);
            };
            let n = self.seen.fetch_add(1, Ordering::Relaxed);
            match self.fault {
                Fault::Drop(k) if n == k => self.inner.receive().await,
                Fault::Duplicate(k) if n == k => {
                    *self.held.lock().unwrap() = Some(message.clone());
                    Ok(Some(message))
                }
                Fault::Swap(k) if n == k => {
                    let next = self.inner.receive().await?;
                    *self.held.lock().unwrap() = Some(message);
                    Ok(next)
                }
                Fault::Forge(k, producer, sequence) if n == k => {
                    *self.held.lock().unwrap() = Some(message);
                    let stamp = courier_bench::Stamp {
                        producer,
                        sequence,
                        sent_at_ns: 0,
                    };
                    let mut forged = Message::with_body(courier::Body::Bytes(stamp.payload(100)));
                    *courier::spi::header_mut(&mut forged) =
                        self.held.lock().unwrap().as_ref().unwrap().header().clone();
                    Ok(Some(forged))
                }
                Fault::Misaddress(k) if n == k => {
                    let mut moved = message;
                    courier::spi::header_mut(&mut moved).destination =
                        Some(courier::Destination::queue("elsewhere"));
                    Ok(Some(moved))
                }
                Fault::Corrupt(k) if n == k => {
                    let mut body = message.body_bytes().unwrap().to_vec();
                    body[courier_bench::Stamp::LEN + 1] ^= 0x01;
                    let mut damaged = Message::with_body(courier::Body::Bytes(body.into()));
                    *courier::spi::header_mut(&mut damaged) = message.header().clone();
                    Ok(Some(damaged))
                }
                _ => Ok(Some(message)),
            }
        }
        async fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
            self.inner.receive_timeout(timeout).await
        }
        async fn receive_no_wait(&self) -> Result<Option<Message>> {
            if let Some(held) = self.held.lock().unwrap().take() {
                return Ok(Some(held));
            }
            self.inner.receive_no_wait().await
        }
        async fn close(&self) -> Result<()> {
            self.inner.close().await
        }
    }
}

async fn run_faulty(fault: faulty::Fault) -> workload::Measurement {
    run_faulty_until(fault, Limit::Messages(2_000)).await
}

async fn run_faulty_until(fault: faulty::Fault, limit: Limit) -> workload::Measurement {
    let factory = faulty::Factory {
        inner: courier::broker::EmbeddedFactory::default(),
        fault,
    };
    let w = flow(
        "faulty",
        FlowSpec {
            stall_timeout: Duration::from_millis(300),
            limit,
            ..FlowSpec::new(Topology::Queue {
                producers: 1,
                consumers: 1,
            })
        },
    );
    workload::run(&factory, &w).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reports_a_lost_message() {
    let m = run_faulty(faulty::Fault::Drop(500)).await;
    assert!(!m.check.exactly_once());
    assert_eq!((m.check.missing, m.check.duplicates), (1, 0), "{}", m.check);
    assert!(m.stalled, "the group never got its last message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reports_a_repeated_message() {
    let m = run_faulty(faulty::Fault::Duplicate(500)).await;
    assert!(!m.check.exactly_once());
    assert_eq!((m.check.missing, m.check.duplicates), (0, 1), "{}", m.check);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reports_a_reordered_message() {
    let m = run_faulty(faulty::Fault::Swap(500)).await;
    assert!(m.check.exactly_once(), "{}", m.check);
    assert!(!m.check.in_order());
    assert_eq!(m.check.reordered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reports_damaged_headers_and_bodies_as_malformed() {
    for fault in [faulty::Fault::Misaddress(500), faulty::Fault::Corrupt(500)] {
        let m = run_faulty(fault).await;
        assert!(!m.check.passed(), "{fault:?}: {}", m.check);
        assert_eq!(
            (m.check.malformed, m.check.missing, m.check.duplicates),
            (1, 1, 0),
            "{fault:?}: {}",
            m.check
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reports_forged_stamps_as_unexpected() {
    for (producer, sequence) in [(u32::MAX, 0), (0, 1 << 40), (1, 0), (0, u64::MAX)] {
        for limit in [
            Limit::Messages(2_000),
            // Long enough to reach the forged 500th message on a loaded machine (100 ms
            // once sent fewer than 500 under CI-like load).
            Limit::Duration(Duration::from_secs(1)),
        ] {
            let m = run_faulty_until(faulty::Fault::Forge(500, producer, sequence), limit).await;
            let case = format!("producer {producer}, sequence {sequence}, {limit:?}");
            assert!(!m.check.exactly_once(), "{case}: {}", m.check);
            assert_eq!(
                (m.check.unexpected, m.check.missing, m.check.duplicates),
                (1, 0, 0),
                "{case}: {}",
                m.check
            );
            assert!(
                m.check
                    .examples
                    .contains(&workload::Violation::Unexpected { producer, sequence }),
                "{case}: {}",
                m.check
            );
        }
    }
}

/// A memory workload on a remote broker reads the broker's memory, not the client's: the
/// Courier server's resident memory through its statistics.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_of_a_courier_server_is_read_from_its_statistics() {
    use courier::broker::server::{Server, ServerConfig};
    use courier::broker::{Broker, BrokerConfig};
    use courier_bench::MemorySource;
    let server = Server::bind(
        "127.0.0.1:0",
        Broker::new(BrokerConfig::default()),
        ServerConfig::default(),
    )
    .await
    .unwrap();
    let url = format!("courier://{}", server.local_addr());
    let measured = workload::run_at(&url, &memory_workload(20_000))
        .await
        .unwrap();
    let figure = measured.memory.expect("a memory figure");
    assert_eq!(figure.source, MemorySource::ServerResident);
    assert!(measured.check.exactly_once());
    // 1 KiB bodies: the server holds at least half of each while the queue is full.
    assert!(figure.bytes_per_message() > 512.0, "{figure:?}");
    server.shutdown().await;
}

/// Redis's own accounting (`used_memory`) on a private server, so nothing else moves it.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_of_redis_is_its_used_memory() {
    use courier_bench::{MemorySource, RedisServer};
    let redis = RedisServer::start_fsync_always().await.unwrap();
    let measured = workload::run_at(&redis.url(), &memory_workload(2_000))
        .await
        .unwrap();
    let figure = measured.memory.expect("a memory figure");
    assert_eq!(figure.source, MemorySource::RedisUsedMemory);
    assert!(measured.check.exactly_once());
    assert!(figure.bytes_per_message() > 1024.0, "{figure:?}");
}

/// RabbitMQ's memory is not readable over AMQP: the workload says so instead of measuring
/// the client.
#[tokio::test]
async fn memory_of_rabbitmq_is_unsupported() {
    let e = workload::run_at(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        &memory_workload(10),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, courier::Error::Unsupported { .. }), "{e}");
}

fn memory_workload(depth: u64) -> Workload {
    Workload::new(
        "memory",
        "test",
        Scenario::Memory(MemorySpec {
            depth,
            message_size: 1024,
            delivery_mode: DeliveryMode::NonPersistent,
        }),
    )
}
