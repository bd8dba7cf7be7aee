//! Load over TCP against a server in a child process (this test binary re-run as
//! `server_child`), so client and server each have their own descriptor limit and the
//! server's memory can be read from `/proc`:
//!
//! - many connections at once, each with a producer and a consumer exchanging messages;
//! - many idle connections, measuring the server's resident memory per connection;
//! - a consumer that stops reading its socket: the server holds no more for it than its
//!   credit (its memory does not follow the traffic) and the other consumers go on.
//!
//! Sizes are lean by default (a few seconds each: 300 busy connections × 3 messages, 2 000
//! idle connections, 64 MiB past a stalled consumer); `COURIER_LOAD=full` runs the issue's
//! sizes (1 000 busy connections × 100 messages, 10 000 idle connections, 512 MiB).

use courier_api::*;
use courier_broker::client::TcpFactory;
use courier_broker::protocol::frame::{Frame, FrameCodec, Kind};
use courier_broker::protocol::ops::{
    decode, encode, ConsumerKind, Hello, Reply, Request, Welcome, MAGIC,
};
use courier_broker::protocol::VERSIONS;
use courier_broker::server::{Server, ServerConfig};
use courier_broker::{Broker, BrokerConfig};
use futures::StreamExt;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Encoder;

/// The sizes rather than the lean defaults.
fn full() -> bool {
    std::env::var("COURIER_LOAD").is_ok_and(|v| v == "full")
}

/// The server in a child process; killed when dropped.
struct ServerChild {
    child: Child,
    addr: String,
}

impl ServerChild {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "server_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("COURIER_LOAD_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the server child died"
            );
            if let Some((_, addr)) = line.trim().split_once("listening on ") {
                break addr.to_owned();
            }
        };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        ServerChild { child, addr }
    }

    /// The child's resident memory, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kib * 1024
    }

    fn factory(&self) -> TcpFactory {
        TcpFactory::new(self.addr.clone())
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server child: serves an in-memory broker until its parent closes its stdin (or kills
/// it). Runs only when a test of this binary starts it.
#[test]
#[ignore = "the server child of this binary's load tests"]
fn server_child() {
    if std::env::var_os("COURIER_LOAD_CHILD").is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = ServerConfig {
            max_connections: 19_000,
            heartbeat: Duration::from_secs(60),
            ..ServerConfig::default()
        };
        let server = Server::bind("127.0.0.1:0", Broker::new(BrokerConfig::default()), config)
            .await
            .unwrap();
        println!("listening on {}", server.local_addr());
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .unwrap();
    });
    std::process::exit(0);
}

/// One connection's worth of work: a producer and a consumer on their own queue, `count`
/// messages through it, checked in order.
async fn exchange(factory: TcpFactory, n: usize, count: usize) {
    let connection = factory.create_connection().await.unwrap();
    connection.start().await.unwrap();
    let sending = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let receiving = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let queue = Destination::queue(format!("load.busy.{n}"));
    let consumer = receiving
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    let producer = sending.create_producer(Some(&queue)).await.unwrap();
    let produce = async {
        for i in 0..count {
            producer
                .send(&mut Message::text(format!("{n}:{i}")))
                .await
                .unwrap();
        }
    };
    let consume = async {
        for i in 0..count {
            let m = consumer
                .receive_timeout(Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("connection {n}: message {i} never came"));
            assert_eq!(m.body_text(), Some(format!("{n}:{i}").as_str()));
        }
    };
    tokio::join!(produce, consume);
    connection.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_each_with_a_producer_and_a_consumer() {
    let server = ServerChild::start();
    let (connections, count) = if full() { (1_000, 100) } else { (300, 3) };
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|n| tokio::spawn(exchange(server.factory(), n, count)))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    eprintln!(
        "{connections} connections × {count} messages each, at once: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cost_the_server_little_memory_each() {
    let server = ServerChild::start();
    let connections: usize = if full() { 10_000 } else { 2_000 };
    let factory = server.factory();
    let open = |n: usize| {
        let factory = factory.clone();
        futures::stream::iter(0..n)
            .map(move |_| {
                let factory = factory.clone();
                async move { factory.create_connection().await.unwrap() }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
    };
    // Warm up (runtime threads, allocator arenas), then measure what more connections cost.
    let warm = open(200).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss();
    let started = Instant::now();
    let idle = open(connections).await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss();
    let per = after.saturating_sub(before) / connections as u64;
    eprintln!(
        "{connections} idle connections opened in {took:?}; server RSS {} → {} MiB: {} KiB per connection",
        before >> 20,
        after >> 20,
        per >> 10
    );
    assert!(
        per < 64 * 1024,
        "an idle connection costs the server {per} bytes"
    );
    // All of them still work.
    for connection in idle.iter().step_by(connections / 10) {
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        session.close().await.unwrap();
    }
    drop(idle);
    drop(warm);
}

fn frame_bytes(frame: Frame) -> bytes::BytesMut {
    let mut out = bytes::BytesMut::new();
    FrameCodec::new(1 << 20).encode(frame, &mut out).unwrap();
    out
}

/// Reads one reply (skipping heartbeats).
async fn read_reply(stream: &mut TcpStream) -> (u64, Reply) {
    loop {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.unwrap();
        let mut rest = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut rest).await.unwrap();
        if rest[0] == Kind::Heartbeat as u8 {
            continue;
        }
        assert_eq!(rest[0], Kind::Reply as u8);
        let id = u64::from_be_bytes(rest[1..9].try_into().unwrap());
        return (id, decode(&rest[9..], "reply").unwrap());
    }
}

async fn raw_call(stream: &mut TcpStream, id: u64, request: &Request) -> Reply {
    let frame = frame_bytes(Frame::new(Kind::Request, id, encode(request)));
    stream.write_all(&frame).await.unwrap();
    let (got, reply) = read_reply(stream).await;
    assert_eq!(got, id);
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_holds_only_its_credit_and_stalls_no_one() {
    const CREDIT: u32 = 10;
    const SIZE: usize = 64 * 1024;
    let server = ServerChild::start();
    let total: usize = if full() { 8_192 } else { 1_024 };
    let queue = Destination::queue("load.stalled");

    // The stalled consumer: a raw socket that opens a stream of CREDIT and never reads.
    let mut stalled = TcpStream::connect(&server.addr).await.unwrap();
    let hello = Hello {
        magic: MAGIC,
        versions: VERSIONS.to_vec(),
        credentials: None,
        client_id: None,
        heartbeat_ms: 3_600_000,
    };
    stalled
        .write_all(&frame_bytes(Frame::new(Kind::Hello, 0, encode(&hello))))
        .await
        .unwrap();
    let mut len = [0u8; 4];
    stalled.read_exact(&mut len).await.unwrap();
    let mut rest = vec![0u8; u32::from_be_bytes(len) as usize];
    stalled.read_exact(&mut rest).await.unwrap();
    let welcome: Welcome = decode(&rest[9..], "welcome").unwrap();
    assert!(matches!(welcome, Welcome::Accepted { .. }));
    assert_eq!(
        raw_call(&mut stalled, 1, &Request::Start).await,
        Reply::Done
    );
    let Reply::Created(s) = raw_call(&mut stalled, 2, &Request::CreateSession(0)).await else {
        panic!("no session")
    };
    let create = Request::CreateConsumer {
        session: s,
        kind: ConsumerKind::Plain,
        destination: queue.clone(),
        name: None,
        selector: None,
        no_local: false,
        prefetch: Some(CREDIT),
    };
    let Reply::Created(c) = raw_call(&mut stalled, 3, &create).await else {
        panic!("no consumer")
    };
    stalled
        .write_all(&frame_bytes(Frame::new(
            Kind::Request,
            4,
            encode(&Request::Stream(c, CREDIT)),
        )))
        .await
        .unwrap();

    // A normal consumer on the same queue, and a producer pushing `total` × 64 KiB through.
    let factory = server.factory();
    let connection = factory.create_connection().await.unwrap();
    connection.start().await.unwrap();
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.rss();
    let body = bytes::Bytes::from(vec![7u8; SIZE]);
    let produce = async {
        for _ in 0..total {
            let mut m = Message::bytes(body.clone());
            producer.send(&mut m).await.unwrap();
        }
    };
    let consume = async {
        let mut got = 0usize;
        while got + CREDIT as usize <= total {
            match consumer
                .receive_timeout(Duration::from_secs(10))
                .await
                .unwrap()
            {
                Some(m) => {
                    assert_eq!(m.body_bytes().map(|b| b.len()), Some(SIZE));
                    got += 1;
                }
                None => break,
            }
        }
        got
    };
    let ((), got) = tokio::join!(produce, consume);
    let after = server.rss();
    let grown = after.saturating_sub(before);
    eprintln!(
        "{total} × 64 KiB past a stalled consumer: the other got {got}; server RSS {} → {} MiB",
        before >> 20,
        after >> 20
    );
    assert!(
        got + CREDIT as usize >= total,
        "the other consumer got {got} of {total}: the stalled one held more than its credit"
    );
    let through = (total * SIZE) as u64;
    assert!(
        grown < through / 4 + (16 << 20),
        "the server grew by {grown} bytes for {through} bytes through a queue with a stalled consumer"
    );
    connection.close().await.unwrap();
}
