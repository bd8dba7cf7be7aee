//! A Courier server under hostile peers: silent sockets, too many connections, oversized,
//! malformed and out-of-order frames, and arbitrary bytes before and after authentication.
//! Each must cost the server only that one connection; everyone else goes on being served.

use bytes::{BufMut, BytesMut};
use courier_api::*;
use courier_broker::client::TcpFactory;
use courier_broker::protocol::frame::{Frame, FrameCodec, Kind};
use courier_broker::protocol::ops::{decode, encode, Hello, Welcome, MAGIC};
use courier_broker::protocol::VERSIONS;
use courier_broker::server::{Server, ServerConfig};
use courier_broker::{Broker, BrokerConfig};
use proptest::prelude::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Encoder;

async fn server(config: ServerConfig) -> Server {
    Server::bind("127.0.0.1:0", Broker::new(BrokerConfig::default()), config)
        .await
        .unwrap()
}

/// Reads until the server closes the socket; panics if it stays open past `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    seen
}

/// A normal client still gets a message through.
async fn still_serves(server: &Server) {
    let factory = TcpFactory::new(server.local_addr().to_string());
    let connection = factory.create_connection().await.unwrap();
    connection.start().await.unwrap();
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let queue = Destination::queue("alive");
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    session
        .create_producer(Some(&queue))
        .await
        .unwrap()
        .send(&mut Message::text("ok"))
        .await
        .unwrap();
    let got = consumer.receive_timeout(Duration::from_secs(5)).await;
    assert_eq!(got.unwrap().unwrap().body_text(), Some("ok"));
    connection.close().await.unwrap();
}

fn frame_bytes(frame: Frame) -> BytesMut {
    let mut out = BytesMut::new();
    FrameCodec::new(1 << 20).encode(frame, &mut out).unwrap();
    out
}

fn hello() -> BytesMut {
    frame_bytes(Frame::new(
        Kind::Hello,
        0,
        encode(&Hello {
            magic: MAGIC,
            versions: VERSIONS.to_vec(),
            credentials: None,
            client_id: None,
            heartbeat_ms: 0,
        }),
    ))
}

/// A raw socket past the handshake.
async fn authenticated(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(&hello()).await.unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut rest = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut rest).await.unwrap();
    assert_eq!(rest[0], Kind::Welcome as u8);
    let welcome: Welcome = decode(&rest[9..], "welcome").unwrap();
    assert!(matches!(welcome, Welcome::Accepted { .. }), "{welcome:?}");
    stream
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_handshake_timeout() {
    let server = server(ServerConfig {
        handshake_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    // Half a frame, then nothing: still no handshake.
    silent.write_all(&[0, 0, 0, 50, 1]).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(3)).await;
    still_serves(&server).await;
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_and_room_comes_back() {
    let server = server(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let factory = TcpFactory::new(server.local_addr().to_string());
    let a = factory.create_connection().await.unwrap();
    let b = factory.create_connection().await.unwrap();
    let third = factory.create_connection().await;
    assert!(third.is_err(), "a third connection must be refused");
    a.start().await.unwrap();
    b.close().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while server.connections() > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let again = factory.create_connection().await.unwrap();
    again.close().await.unwrap();
    a.close().await.unwrap();
}

#[tokio::test]
async fn an_oversized_frame_before_the_handshake_is_refused() {
    let server = server(ServerConfig::default()).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1])
        .await
        .unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(3)).await;
    assert!(answer.len() > 13, "a refusal before the close");
    let refusal: Welcome = decode(&answer[13..], "welcome").unwrap();
    match refusal {
        Welcome::Refused(e) => assert!(matches!(Error::from(e), Error::Protocol(_))),
        other => panic!("{other:?}"),
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn oversized_and_out_of_order_frames_after_the_handshake_close_that_connection() {
    let server = server(ServerConfig::default()).await;
    let mut big = authenticated(&server).await;
    let mut frame = BytesMut::new();
    frame.put_u32(u32::MAX);
    frame.put_u8(Kind::Request as u8);
    big.write_all(&frame).await.unwrap();
    let answer = closed_within(&mut big, Duration::from_secs(3)).await;
    assert_eq!(answer.get(4), Some(&(Kind::Error as u8)), "an error frame");

    let mut again = authenticated(&server).await;
    again.write_all(&hello()).await.unwrap();
    let answer = closed_within(&mut again, Duration::from_secs(3)).await;
    assert_eq!(answer.get(4), Some(&(Kind::Error as u8)), "an error frame");

    let mut garbled = authenticated(&server).await;
    garbled
        .write_all(&frame_bytes(Frame::new(Kind::Request, 1, vec![0xee; 40])))
        .await
        .unwrap();
    closed_within(&mut garbled, Duration::from_secs(3)).await;
    still_serves(&server).await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_is_dropped_after_three_heartbeats() {
    let server = server(ServerConfig {
        heartbeat: Duration::from_millis(100),
        ..ServerConfig::default()
    })
    .await;
    let mut quiet = authenticated(&server).await;
    // Read (heartbeats arrive) but never write: the server gives up on us.
    closed_within(&mut quiet, Duration::from_secs(3)).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Arbitrary bytes, before or after authentication, cost only their own connection.
    #[test]
    fn arbitrary_bytes_never_hurt_the_server(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        after_auth in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = server(ServerConfig {
                handshake_timeout: Duration::from_millis(300),
                heartbeat: Duration::from_millis(200),
                ..ServerConfig::default()
            })
            .await;
            let mut stream = if after_auth {
                authenticated(&server).await
            } else {
                TcpStream::connect(server.local_addr()).await.unwrap()
            };
            let _ = stream.write_all(&bytes).await;
            still_serves(&server).await;
            drop(stream);
        });
    }
}

/// Sends `request` on a raw authenticated socket and reads its reply.
async fn raw_call(
    stream: &mut TcpStream,
    id: u64,
    request: &courier_broker::protocol::ops::Request,
) -> courier_broker::protocol::ops::Reply {
    stream
        .write_all(&frame_bytes(Frame::new(Kind::Request, id, encode(request))))
        .await
        .unwrap();
    loop {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.unwrap();
        let mut rest = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut rest).await.unwrap();
        if rest[0] == Kind::Heartbeat as u8 {
            continue;
        }
        assert_eq!(rest[0], Kind::Reply as u8);
        assert_eq!(u64::from_be_bytes(rest[1..9].try_into().unwrap()), id);
        return decode(&rest[9..], "reply").unwrap();
    }
}

/// Reads the next reply on a raw socket (heartbeats skipped): its id and the reply.
async fn raw_reply(stream: &mut TcpStream) -> (u64, courier_broker::protocol::ops::Reply) {
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

/// Protocol 2's `Consumed` acknowledges the stream deliveries it names and grants the stream
/// a credit for each, in one request: the stream goes on, and when the client dies only what
/// it did not consume comes back.
#[tokio::test]
async fn consumed_acknowledges_stream_deliveries_and_grants_their_credit() {
    use courier_broker::protocol::ops::{ConsumerKind, Reply, Request};
    let server = server(ServerConfig::default()).await;
    let factory = TcpFactory::new(server.local_addr().to_string());
    let queue = Destination::queue("consumed");
    let other = factory.create_connection().await.unwrap();
    let session = other
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    for body in ["a", "b", "c", "d"] {
        producer.send(&mut Message::text(body)).await.unwrap();
    }

    let mut raw = authenticated(&server).await;
    assert_eq!(raw_call(&mut raw, 1, &Request::Start).await, Reply::Done);
    let Reply::Created(s) = raw_call(&mut raw, 2, &Request::CreateSession(0)).await else {
        panic!("no session")
    };
    let create = Request::CreateConsumer {
        session: s,
        kind: ConsumerKind::Plain,
        destination: queue.clone(),
        name: None,
        selector: None,
        no_local: false,
        prefetch: None,
    };
    let Reply::Created(c) = raw_call(&mut raw, 3, &create).await else {
        panic!("no consumer")
    };
    let send = |request: &Request| frame_bytes(Frame::new(Kind::Request, 10, encode(request)));
    raw.write_all(&send(&Request::Stream(c, 2))).await.unwrap();
    let mut handles = Vec::new();
    for want in ["a", "b"] {
        let (id, reply) = raw_reply(&mut raw).await;
        assert_eq!(id, 10);
        let Reply::Delivery(Some((handle, delivered))) = reply else {
            panic!("no delivery: {reply:?}")
        };
        assert_eq!(delivered.into_message().body_text(), Some(want));
        handles.push(handle);
    }
    raw.write_all(&send(&Request::Consumed(c, handles)))
        .await
        .unwrap();
    for want in ["c", "d"] {
        let (id, reply) = raw_reply(&mut raw).await;
        assert_eq!(id, 10);
        let Reply::Delivery(Some((_, delivered))) = reply else {
            panic!("no delivery after Consumed: {reply:?}")
        };
        assert_eq!(delivered.into_message().body_text(), Some(want));
    }
    drop(raw);

    other.start().await.unwrap();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default().with_prefetch(Some(0)))
        .await
        .unwrap();
    for want in ["c", "d"] {
        let m = consumer
            .receive_timeout(Duration::from_secs(5))
            .await
            .unwrap()
            .expect("not consumed, so given back");
        assert_eq!(m.body_text(), Some(want));
        assert!(m.redelivered());
    }
    let none = consumer
        .receive_timeout(Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_none(), "a consumed delivery came back: {none:?}");
    other.close().await.unwrap();
}

/// A client that dies holding unacknowledged messages (its socket closes without a word,
/// as when its process is killed) gives them back: the next consumer gets them, flagged
/// redelivered.
#[tokio::test]
async fn a_dead_clients_unacknowledged_messages_go_to_others_redelivered() {
    use courier_broker::protocol::ops::{ConsumerKind, Reply, Request, Wait};
    let server = server(ServerConfig::default()).await;
    let factory = TcpFactory::new(server.local_addr().to_string());
    let queue = Destination::queue("work");
    let other = factory.create_connection().await.unwrap();
    let session = other
        .create_session(SessionMode::ClientAcknowledge)
        .await
        .unwrap();
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    for body in ["a", "b"] {
        producer.send(&mut Message::text(body)).await.unwrap();
    }

    let mut doomed = authenticated(&server).await;
    assert_eq!(raw_call(&mut doomed, 1, &Request::Start).await, Reply::Done);
    let Reply::Created(s) = raw_call(&mut doomed, 2, &Request::CreateSession(1)).await else {
        panic!("no session")
    };
    let create = Request::CreateConsumer {
        session: s,
        kind: ConsumerKind::Plain,
        destination: queue.clone(),
        name: None,
        selector: None,
        no_local: false,
        prefetch: None,
    };
    let Reply::Created(c) = raw_call(&mut doomed, 3, &create).await else {
        panic!("no consumer")
    };
    for id in [4, 5] {
        let got = raw_call(&mut doomed, id, &Request::Receive(c, Wait::NoWait)).await;
        assert!(matches!(got, Reply::Message(Some(_))), "{got:?}");
    }
    drop(doomed);

    other.start().await.unwrap();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    for body in ["a", "b"] {
        let m = consumer
            .receive_timeout(Duration::from_secs(5))
            .await
            .unwrap()
            .expect("given back");
        assert_eq!(m.body_text(), Some(body));
        assert!(m.redelivered());
        assert_eq!(m.header().delivery_count, 2);
    }
    session.acknowledge().await.unwrap();
    other.close().await.unwrap();
}

/// A peer that sends requests without ever reading the replies is throttled — the server
/// stops reading its socket once its bounded queues are full, rather than buffering replies
/// without bound — and every other client is served meanwhile.
#[tokio::test]
async fn a_peer_that_never_reads_is_throttled_and_stalls_no_one() {
    use courier_broker::protocol::ops::{Reply, Request};
    let server = server(ServerConfig::default()).await;
    let mut greedy = authenticated(&server).await;
    let Reply::Created(s) = raw_call(&mut greedy, 1, &Request::CreateSession(0)).await else {
        panic!("no session")
    };
    let one = frame_bytes(Frame::new(Kind::Request, 2, encode(&Request::Sync(s))));
    let chunk: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * 10_000)
        .collect();
    let writing = tokio::spawn(async move {
        // 2 000 000 requests (about 30 MB) whose replies are never read.
        for _ in 0..200 {
            if greedy.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_serves(&server).await;
    assert!(
        !writing.is_finished(),
        "the server must stop reading a peer that does not read its replies"
    );
    writing.abort();
}

/// A consumer with a prefetch streams: messages arrive in order, exactly once; what it holds
/// ahead is given back — to the next consumer, flagged redelivered — when it closes, and to
/// itself on recover; and it never holds more than its prefetch.
#[tokio::test]
async fn a_prefetching_consumer_streams_in_order_and_gives_back_what_it_holds() {
    let server = server(ServerConfig::default()).await;
    let url = format!("courier://{}/?prefetch=10", server.local_addr());
    let factory = TcpFactory::from_url(&url).unwrap();
    let connection = factory.create_connection().await.unwrap();
    connection.start().await.unwrap();
    let session = connection
        .create_session(SessionMode::AutoAcknowledge)
        .await
        .unwrap();
    let queue = Destination::queue("stream");
    let producer = session.create_producer(Some(&queue)).await.unwrap();
    for i in 0..1000 {
        let receipt = producer.send_async(Message::text(i.to_string())).await;
        drop(receipt.unwrap());
    }
    producer.flush().await.unwrap();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await
        .unwrap();
    for i in 0..990 {
        let m = consumer.receive().await.unwrap().unwrap();
        assert_eq!(m.body_text(), Some(i.to_string().as_str()));
        assert!(!m.redelivered());
    }
    // Ten left, all held ahead by the consumer (its prefetch): recover gives them back and
    // they come again, redelivered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    session.recover().await.unwrap();
    let again = consumer.receive().await.unwrap().unwrap();
    assert_eq!(again.body_text(), Some("990"));
    assert!(again.redelivered());
    consumer.close().await.unwrap();
    let other = session
        .create_consumer(&queue, ConsumerOptions::default().with_prefetch(Some(0)))
        .await
        .unwrap();
    for i in 991..1000 {
        let m = other
            .receive_no_wait()
            .await
            .unwrap()
            .expect("given back on close");
        assert_eq!(m.body_text(), Some(i.to_string().as_str()));
        assert!(m.redelivered());
    }
    assert!(other.receive_no_wait().await.unwrap().is_none());
    connection.close().await.unwrap();
}
