//! Message bodies stay out of Lua and out of the message hashes: a queue send's body
//! (`R:b:<id>`) is written by a plain `MSET` in the `MULTI` of its `commit`, and a take's
//! bodies are read by a `SORT … GET` in the `MULTI` of its `take_ids`. Each test runs its own `redis-server` (no persistence, a free port), so
//! it can watch every command (`MONITOR`) and flush the script cache.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use courier_api::{Connection, ConsumerOptions, Destination, Message, SessionMode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A `redis-server` of the test's own, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    async fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Server { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut self.raw().await)
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(url: &str) -> Box<dyn Connection> {
    let conn = courier_redis::connect(url)
        .await
        .unwrap()
        .create_connection()
        .await
        .unwrap();
    conn.start().await.unwrap();
    conn
}

/// Sends `bodies` (pipelined, then flushed) and receives them with a prefetching consumer.
async fn round_trip(conn: &dyn Connection, queue: &Destination, bodies: &[Vec<u8>]) {
    let session = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let producer = session.create_producer(Some(queue)).await.unwrap();
    let mut receipts = Vec::new();
    for body in bodies {
        receipts.push(
            producer
                .send_async(Message::bytes(body.clone()))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    for receipt in receipts {
        receipt.await.unwrap();
    }
    let consumer = session
        .create_consumer(
            queue,
            ConsumerOptions {
                prefetch: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for body in bodies {
        let m = consumer
            .receive_timeout(Duration::from_secs(5))
            .await
            .unwrap()
            .expect("a message");
        assert_eq!(m.body_bytes().unwrap(), &body[..]);
        assert_eq!(m.header().delivery_count, 1);
    }
    assert!(consumer.receive_no_wait().await.unwrap().is_none());
    session.close().await.unwrap();
}

/// Every body byte value, and a marker no other argument contains.
fn body(marker: &str) -> Vec<u8> {
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend_from_slice(marker.as_bytes());
    body
}

/// No command a script runs, and no script call, carries a queue message's body (before:
/// the send's `EVALSHA` had it as an argument and the script's `HSET` stored it); the
/// client's own `MSET` does.
#[tokio::test]
async fn queue_bodies_go_in_and_out_without_lua() {
    let server = Server::start().await;
    let conn = connect(&server.url()).await;
    let queue = Destination::queue("bodies");
    let marker = format!("marker-{}", uuid::Uuid::new_v4().simple());

    let mut monitor = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    monitor.write_all(b"MONITOR\r\n").await.unwrap();
    let mut lines = BufReader::new(monitor).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("+OK"));

    round_trip(conn.as_ref(), &queue, &[body(&marker), body(&marker)]).await;
    conn.close().await.unwrap();

    // The connection's close is the last thing: read until the server saw it.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), lines.next_line())
        .await
        .unwrap_or(Ok(None))
    {
        let done = line.contains("\"SORT\"");
        seen.push(line);
        if done {
            break;
        }
    }
    let carrying: Vec<&String> = seen.iter().filter(|l| l.contains(&marker)).collect();
    assert!(
        carrying.iter().any(|l| l.contains("\"MSET\"")),
        "the client stores the body: {seen:#?}"
    );
    for line in &carrying {
        assert!(
            !line.contains("lua]") && !line.contains("\"EVALSHA\""),
            "a body went through Lua: {line}"
        );
    }
    assert!(
        seen.iter().any(|l| l.contains("\"SORT\"")),
        "the take reads bodies with SORT: {seen:#?}"
    );
}

/// What a queue send stores: a body key, and a message hash with every field the scripts
/// read, small enough for Redis to keep as one listpack (with the 1 KiB body in it, it was
/// a hashtable: an allocation per field); what a take leaves: no `R:t`.
#[tokio::test]
async fn a_queue_send_stores_a_compact_hash_and_a_body_and_takes_leave_no_list() {
    let server = Server::start().await;
    let conn = connect(&server.url()).await;
    let queue = Destination::queue("layout");
    let session = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    let text = "x".repeat(1024);
    let mut m = Message::text(text.clone());
    m.set_property("color", "red").unwrap();
    producer.send(&mut m).await.unwrap();
    let hashes = server.keys("courier:{q:layout}:m:*").await;
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    let mut fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&hashes[0])
        .query_async(&mut server.raw().await)
        .await
        .unwrap();
    // The header values selectors see (`v:JMSMessageID`, …) are small too.
    fields.retain(|f| !f.starts_with("v:JMS"));
    fields.sort();
    assert_eq!(fields, ["c", "p", "s", "v:color", "x"]);
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&hashes[0])
        .query_async(&mut server.raw().await)
        .await
        .unwrap();
    assert_eq!(encoding, "listpack");
    let body = hashes[0].replace(":m:", ":b:");
    assert_eq!(server.keys(&body).await, vec![body]);
    let consumer = session
        .create_consumer(
            &queue,
            ConsumerOptions {
                prefetch: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got = consumer
        .receive_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got.unwrap().body_text(), Some(text.as_str()));
    assert!(server.keys("courier:{q:layout}:t").await.is_empty());
    session.close().await.unwrap();
    assert!(server.keys("courier:{q:layout}:m:*").await.is_empty());
    assert!(server.keys("courier:{q:layout}:b:*").await.is_empty());
    conn.close().await.unwrap();
}

/// A queue whose name has a `*` cannot be a `SORT` pattern: its takes read the bodies in the
/// script, in order all the same.
#[tokio::test]
async fn a_queue_named_with_a_star_round_trips() {
    let server = Server::start().await;
    let conn = connect(&server.url()).await;
    let bodies: Vec<Vec<u8>> = (0..7).map(|i| format!("m{i}").into_bytes()).collect();
    round_trip(conn.as_ref(), &Destination::queue("a*b->c"), &bodies).await;
    conn.close().await.unwrap();
}

/// A server that lost the script (`SCRIPT FLUSH`) answers `NOSCRIPT` inside the
/// transaction: the script is loaded again and the transaction repeated, nothing lost or
/// left behind.
#[tokio::test]
async fn a_flushed_script_cache_is_reloaded_inside_transactions() {
    let server = Server::start().await;
    let conn = connect(&server.url()).await;
    let queue = Destination::queue("flushed");
    round_trip(conn.as_ref(), &queue, &[b"warm".to_vec()]).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut server.raw().await)
        .await
        .unwrap();
    let bodies: Vec<Vec<u8>> = (0..5).map(|i| format!("after-{i}").into_bytes()).collect();
    round_trip(conn.as_ref(), &queue, &bodies).await;
    assert!(server.keys("courier:{q:flushed}:[mb]:*").await.is_empty());
    conn.close().await.unwrap();
}

/// A transacted commit refused (a received message went back before it) leaves none of its
/// sends stored: their bodies, written before the script in the same `MULTI`, are deleted
/// by it.
#[tokio::test]
async fn a_refused_commit_leaves_no_message_hash() {
    let server = Server::start().await;
    let conn = connect(&server.url()).await;
    let from = Destination::queue("from");
    let to = Destination::queue("to");
    let plain = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    plain
        .create_producer(Some(&from))
        .await
        .unwrap()
        .send(&mut Message::text("in"))
        .await
        .unwrap();
    let tx = conn.create_session(SessionMode::Transacted).await.unwrap();
    let consumer = tx
        .create_consumer(&from, ConsumerOptions::default())
        .await
        .unwrap();
    assert!(consumer
        .receive_timeout(Duration::from_secs(5))
        .await
        .unwrap()
        .is_some());
    tx.create_producer(Some(&to))
        .await
        .unwrap()
        .send(&mut Message::text("out"))
        .await
        .unwrap();
    // As if its lease had lapsed and another consumer took it: no longer held.
    for held in server.keys("courier:{q:from}:h:*").await {
        let _: () = redis::cmd("DEL")
            .arg(&held)
            .query_async(&mut server.raw().await)
            .await
            .unwrap();
    }
    assert!(tx.commit().await.is_err(), "the commit is refused");
    assert!(
        server.keys("courier:{q:to}:[mb]:*").await.is_empty(),
        "the refused send left its body or hash"
    );
    conn.close().await.unwrap();
}

/// A send that wakes a waiting consumer of its own connection publishes inside its
/// transaction; on a connection subscribed to that channel, Redis 7.0 puts the push inside
/// the `EXEC` reply, and every later reply was read as its predecessor's (the next call
/// failed with the push as its "reply"). Transactions go over a connection that subscribes
/// to nothing: the replies stay in step.
#[tokio::test]
async fn a_send_waking_a_consumer_of_its_own_connection_keeps_replies_in_step() {
    let server = Server::start().await;
    let conn = connect(&server.url()).await;
    let queue = Destination::queue("woken");
    let session = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    let waiting = tokio::spawn(async move {
        (
            consumer.receive_timeout(Duration::from_secs(5)).await,
            consumer,
        )
    });
    // The consumer finds nothing and waits (its take set the waiting flag).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    producer.send(&mut Message::text("wake")).await.unwrap();
    let (got, consumer) = waiting.await.unwrap();
    assert_eq!(got.unwrap().unwrap().body_text(), Some("wake"));
    for i in 0..3 {
        producer
            .send(&mut Message::text(format!("next-{i}")))
            .await
            .unwrap();
        let m = consumer
            .receive_timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(m.unwrap().body_text(), Some(format!("next-{i}").as_str()));
    }
    conn.close().await.unwrap();
}

/// Stores a message as the build before the bodies left the hashes did (its script's
/// `store` and `enqueue`): the next `R:seq` as id, the encoded message in the hash's `e`
/// field beside `p x c s`, no `R:b:<id>`, the id in `base`'s ready index.
async fn store_the_old_way(
    raw: &mut redis::aio::MultiplexedConnection,
    root: &str,
    base: &str,
    message: &Message,
) {
    let id: u64 = redis::cmd("INCR")
        .arg(format!("{root}:seq"))
        .query_async(raw)
        .await
        .unwrap();
    // Priority 4: (9 - 4) * STEP + id.
    let score = 5 * 10_000_000_000_000_u64 + id;
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{root}:m:{id}"))
        .arg("e")
        .arg(message.encode().to_vec())
        .arg("p")
        .arg("4")
        .arg("x")
        .arg("0")
        .arg("c")
        .arg("0")
        .arg("s")
        .arg(score)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{base}:r"))
        .arg(score)
        .arg(id)
        .ignore()
        .query_async(raw)
        .await
        .unwrap();
}

/// A backlog stored by the earlier build (bodies in the message hashes) is read after the
/// upgrade, in order among messages this build sends: by a prefetching take (its `SORT`
/// finds no body key for them, and their hashes' bodies are read), by a browser, and by a
/// durable subscriber of a topic.
#[tokio::test]
async fn messages_stored_with_the_body_in_the_hash_are_read() {
    let server = Server::start().await;
    let mut raw = server.raw().await;
    let factory = courier_redis::connect(&server.url()).await.unwrap();
    let conn = factory.create_connection().await.unwrap();
    conn.set_client_id("upgrade").await.unwrap();
    conn.start().await.unwrap();
    let session = conn
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();

    let queue = Destination::queue("backlog");
    let root = courier_redis::keys::root(&queue);
    let mut old = Message::text("old-1");
    old.set_property("k", "a").unwrap();
    store_the_old_way(&mut raw, &root, &root, &old).await;
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    producer.send(&mut Message::text("new-2")).await.unwrap();
    store_the_old_way(&mut raw, &root, &root, &Message::bytes(body("old-3"))).await;

    let browser = session.create_browser(&queue, None).await.unwrap();
    let seen = browser.collect_all().await.unwrap();
    browser.close().await.unwrap();
    assert_eq!(seen.len(), 3, "the browser sees the backlog");
    assert_eq!(seen[0].body_text(), Some("old-1"));
    assert_eq!(seen[1].body_text(), Some("new-2"));
    assert_eq!(seen[2].body_bytes().unwrap(), &body("old-3")[..]);

    let consumer = session
        .create_consumer(
            &queue,
            ConsumerOptions {
                prefetch: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            consumer
                .receive_timeout(Duration::from_secs(5))
                .await
                .unwrap()
                .expect("a message"),
        );
    }
    assert!(consumer.receive_no_wait().await.unwrap().is_none());
    consumer.close().await.unwrap();
    assert_eq!(got[0].body_text(), Some("old-1"));
    assert_eq!(
        got[0].property::<String>("k").unwrap().as_deref(),
        Some("a")
    );
    assert_eq!(got[0].header().delivery_count, 1);
    assert_eq!(got[1].body_text(), Some("new-2"));
    assert_eq!(got[2].body_bytes().unwrap(), &body("old-3")[..]);

    let topic = Destination::topic("backlog");
    let troot = courier_redis::keys::root(&topic);
    let subscriber = session
        .create_durable_consumer(&topic, "s", ConsumerOptions::default())
        .await
        .unwrap();
    subscriber.close().await.unwrap();
    let base = courier_redis::keys::subscription_base(&troot, "d:upgrade:s");
    store_the_old_way(&mut raw, &troot, &base, &Message::text("old-topic")).await;
    let subscriber = session
        .create_durable_consumer(&topic, "s", ConsumerOptions::default())
        .await
        .unwrap();
    let m = subscriber
        .receive_timeout(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the old topic message");
    assert_eq!(m.body_text(), Some("old-topic"));
    subscriber.close().await.unwrap();
    conn.close().await.unwrap();
    assert!(
        server.keys("courier:{q:backlog}:[mb]:*").await.is_empty(),
        "the old messages were acknowledged and deleted"
    );
}
