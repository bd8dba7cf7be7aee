//! Selector consumers reading equality indexes get exactly what the api's evaluator selects,
//! numbers compared across types, against the machine's Redis.

use courier_api::{ConsumerOptions, Destination, Message, SessionMode, Value};
use std::time::Duration;

fn url() -> String {
    std::env::var("COURIER_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

#[tokio::test]
async fn indexed_equalities_compare_numbers_across_types() -> courier_api::Result<()> {
    let factory = courier_redis::connect(&url()).await?;
    let conn = factory.create_connection().await?;
    conn.start().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(format!("index-test-{}", uuid::Uuid::new_v4().simple()));
    let producer = session.create_producer(Some(&queue)).await?;
    // Some sent before the selector consumer exists (indexed by the backfill), some after.
    let values = [
        Value::I32(5),
        Value::String("5".into()),
        Value::F64(5.0),
        Value::F64(-0.0),
        Value::I64(6),
        Value::F32(5.0),
        Value::I8(0),
    ];
    let send = |i: usize| {
        let mut m = Message::text(format!("{i}"));
        m.set_property("n", values[i].clone()).unwrap();
        m
    };
    for i in 0..3 {
        producer.send(&mut send(i)).await?;
    }
    let five = session
        .create_consumer(&queue, ConsumerOptions::selector("n = 5 AND n IS NOT NULL"))
        .await?;
    let zero = session
        .create_consumer(&queue, ConsumerOptions::selector("n = 0"))
        .await?;
    for i in 3..values.len() {
        producer.send(&mut send(i)).await?;
    }
    let mut got = Vec::new();
    while let Some(m) = five.receive_timeout(Duration::from_millis(300)).await? {
        got.push(m.body_text().unwrap().to_string());
    }
    assert_eq!(got, ["0", "2", "5"], "the numbers equal to 5, in order");
    let mut got = Vec::new();
    while let Some(m) = zero.receive_timeout(Duration::from_millis(300)).await? {
        got.push(m.body_text().unwrap().to_string());
    }
    assert_eq!(
        got,
        ["3", "6"],
        "-0.0 and 0 equal 0 (the index keeps -0 as 0)"
    );
    let rest = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let mut left = Vec::new();
    while let Some(m) = rest.receive_timeout(Duration::from_millis(300)).await? {
        left.push(m.body_text().unwrap().to_string());
    }
    assert_eq!(left, ["1", "4"]);
    conn.close().await?;
    let client = redis::Client::open(url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}*", queue.name()))
        .query_async(&mut c)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    Ok(())
}

#[tokio::test]
async fn an_indexed_selector_sees_messages_moved_back() -> courier_api::Result<()> {
    let factory = courier_redis::connect(&url()).await?;
    let conn = factory.create_connection().await?;
    conn.start().await?;
    let queue = Destination::queue(format!("index-back-{}", uuid::Uuid::new_v4().simple()));
    let client_ack = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let selective = client_ack
        .create_consumer(&queue, ConsumerOptions::selector("k = 'a'"))
        .await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session.create_producer(Some(&queue)).await?;
    let mut m = Message::text("one");
    m.set_property("k", "a")?;
    producer.send(&mut m).await?;
    let first = selective
        .receive_timeout(Duration::from_secs(5))
        .await?
        .unwrap();
    assert!(!first.redelivered());
    client_ack.recover().await?;
    let again = selective
        .receive_timeout(Duration::from_secs(5))
        .await?
        .expect("a recovered message is indexed again");
    assert!(again.redelivered());
    client_ack.acknowledge().await?;
    assert!(selective.receive_no_wait().await?.is_none());
    conn.close().await?;
    let client = redis::Client::open(url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}*", queue.name()))
        .query_async(&mut c)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    Ok(())
}
