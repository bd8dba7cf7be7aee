//! The equality index of a queue is filled in chunks (a deep queue's backfill in one script
//! call held Redis, and every client of it, for seconds), and a selector take does not trust
//! an index still being filled.

use redis::Value;

use crate::args::{self, Args};

async fn run(connection: &mut redis::aio::MultiplexedConnection, root: &str, args: Args) -> Value {
    let script = redis::Script::new(&crate::connection::SCRIPT);
    let mut invocation = script.prepare_invoke();
    invocation.key(root);
    for arg in args.0 {
        invocation.arg(arg);
    }
    invocation
        .invoke_async::<Value>(connection)
        .await
        .expect("the script runs")
}

/// Sends ten messages to `root`, `key` = 'hit' on the 7th and 9th, 'miss' on the others.
async fn fill(connection: &mut redis::aio::MultiplexedConnection, root: &str) {
    let mut a = Args::op("commit")
        .add(0)
        .add("test-conn")
        .add("test-conn")
        .add(1)
        .add("")
        .add(10);
    for i in 0..10 {
        let key = if i == 6 || i == 8 { "shit" } else { "smiss" };
        a.push(root);
        a.push("q");
        a = a.bytes(format!("m{i}").as_bytes());
        a.push(4);
        a.push(0);
        a.push(0);
        a.push(2);
        a.push("v:key");
        a.push(key);
    }
    a.push(0);
    run(connection, root, a).await;
}

async fn take_hit(connection: &mut redis::aio::MultiplexedConnection, root: &str) -> Vec<Value> {
    let source = courier_api::Selector::parse("key = 'hit'")
        .unwrap()
        .to_lua();
    let reply = run(
        connection,
        root,
        Args::op("take_matching")
            .add(root)
            .add("test-conn")
            .add(0)
            .add(5000)
            .add(0)
            .add("")
            .add(source)
            .add("-inf")
            .add(0)
            .add("key")
            .add("shit"),
    )
    .await;
    args::array(reply).expect("a take reply")
}

#[tokio::test]
async fn a_backfill_goes_in_chunks_and_takes_wait_for_it() {
    let url = std::env::var("COURIER_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string());
    let client = redis::Client::open(url).unwrap();
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("the machine's Redis at 127.0.0.1:6379");
    let root = format!(
        "courier:{{q:index-chunks-{}}}",
        uuid::Uuid::new_v4().simple()
    );
    fill(&mut connection, &root).await;

    let index = || Args::op("index").add(&root).add("key").add(4);
    let first = run(&mut connection, &root, index()).await;
    assert_eq!(args::int(&first).unwrap(), 0, "4 of 10 indexed: more to do");
    // Half filled: the index has not reached the 7th message; the take scans instead.
    let taken = take_hit(&mut connection, &root).await;
    assert_eq!(args::int(&taken[0]).unwrap(), 1, "a match: {taken:?}");
    assert_eq!(
        args::bytes(&taken[2]).unwrap(),
        b"m6",
        "the first hit, found by the scan"
    );
    let second = run(&mut connection, &root, index()).await;
    assert_eq!(args::int(&second).unwrap(), 0, "8 of 10 indexed");
    let third = run(&mut connection, &root, index()).await;
    assert_eq!(args::int(&third).unwrap(), 1, "all indexed");
    let taken = take_hit(&mut connection, &root).await;
    assert_eq!(
        args::bytes(&taken[2]).unwrap(),
        b"m8",
        "the next hit, through the index"
    );
    let again = run(&mut connection, &root, index()).await;
    assert_eq!(
        args::int(&again).unwrap(),
        1,
        "a complete index stays complete"
    );

    run(
        &mut connection,
        &root,
        Args::op("abandon").add("test-conn").add(0).add(""),
    )
    .await;
    let deleted = run(&mut connection, &root, Args::op("delete").add("test-conn")).await;
    assert_eq!(
        args::array(deleted)
            .unwrap()
            .first()
            .map(|v| args::int(v).unwrap()),
        Some(1)
    );
    let mut named: Vec<String> = ["r", "ix", "ixp", "xk", "seq", "x:key:shit", "x:key:smiss"]
        .iter()
        .map(|k| format!("{root}:{k}"))
        .collect();
    named.extend((1..=10).map(|id| format!("{root}:m:{id}")));
    named.extend((1..=10).map(|id| format!("{root}:b:{id}")));
    let left: i64 = redis::cmd("EXISTS")
        .arg(&named)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(left, 0, "the deletion leaves none of {named:?}");
}
