//! The durable embedded broker (`embedded:/dir`) killed with SIGKILL: a child process (this
//! test binary, re-run as `durable_child`) sends persistent messages from two producers with
//! pipelined sends and consumes another queue with acknowledgements, printing what was
//! confirmed; the parent kills it at a random moment, reopens the journal and browses: every
//! confirmed send is there, in each producer's order, and nothing else but sends that were
//! attempted.

use courier_api::*;
use courier_broker::storage::{open_broker, JournalOptions};
use courier_broker::BrokerConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn out(line: String) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "@{line}");
    let _ = o.flush();
}

#[tokio::test]
#[ignore = "the child process of `confirmed_sends_survive_sigkill_of_the_broker`"]
async fn durable_child() {
    let Ok(dir) = std::env::var("COURIER_DURABLE_DIR") else {
        return;
    };
    let cycle: u64 = std::env::var("COURIER_DURABLE_CYCLE")
        .unwrap()
        .parse()
        .unwrap();
    let factory = courier_broker::connect(&format!("embedded:{dir}"))
        .await
        .unwrap();
    assert!(factory.capabilities().durable_storage);
    let connection = factory.create_connection().await.unwrap();
    connection.start().await.unwrap();
    // A consumer acknowledging what earlier runs left on "work".
    let session = connection
        .create_session(SessionMode::ClientAcknowledge)
        .await
        .unwrap();
    let work = Destination::queue("work");
    let consumer = session
        .create_consumer(&work, ConsumerOptions::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for p in 0..2u64 {
        let session = connection
            .create_session(SessionMode::AutoAcknowledge)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let producer = session.create_producer(None).await.unwrap();
            let queue = Destination::queue(format!("p{p}"));
            let work = Destination::queue("work");
            for seq in 1u64.. {
                let body = format!("{cycle}-{p}-{seq}");
                out(format!("A {body}"));
                producer
                    .send_to(&queue, &mut Message::text(body.clone()))
                    .await
                    .unwrap();
                out(format!("C {body}"));
                producer
                    .send_to(&work, &mut Message::text(body))
                    .await
                    .unwrap();
            }
        }));
    }
    loop {
        if let Some(m) = consumer
            .receive_timeout(Duration::from_millis(50))
            .await
            .unwrap()
        {
            drop(m);
            session.acknowledge().await.unwrap();
        }
    }
}

#[test]
fn confirmed_sends_survive_sigkill_of_the_broker() {
    let cycles: u64 = std::env::var("COURIER_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut attempted = BTreeSet::new();
    let mut confirmed = BTreeSet::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for cycle in 1..=cycles {
        let mut child = Command::new(&exe)
            .args(["--exact", "durable_child", "--ignored", "--nocapture"])
            .env("COURIER_DURABLE_DIR", dir.path())
            .env("COURIER_DURABLE_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(|l| l.ok())
                .collect::<Vec<String>>()
        });
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(300 + (seed * cycle * 7919) % 500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut confirmed_now = 0;
        for line in reader.join().unwrap() {
            let Some(at) = line.find('@') else { continue };
            let mut parts = line[at + 1..].split(' ');
            match (parts.next(), parts.next()) {
                (Some("A"), Some(body)) => {
                    attempted.insert(body.to_owned());
                }
                (Some("C"), Some(body)) => {
                    confirmed.insert(body.to_owned());
                    confirmed_now += 1;
                }
                _ => {}
            }
        }
        assert!(
            confirmed_now > 0,
            "cycle {cycle}: nothing confirmed in {:?}",
            started.elapsed()
        );

        // Reopen the journal here and browse what the broker recovered.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (broker, store, report) = open_broker(
                dir.path(),
                BrokerConfig::default(),
                JournalOptions::default(),
            )
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
            assert!(report.skipped.is_empty(), "cycle {cycle}: {report:?}");
            let factory = courier_broker::EmbeddedFactory::from_broker(broker);
            let connection = factory.create_connection().await.unwrap();
            let session = connection
                .create_session(SessionMode::AutoAcknowledge)
                .await
                .unwrap();
            let mut present = BTreeSet::new();
            for p in 0..2 {
                let browser = session
                    .create_browser(&Destination::queue(format!("p{p}")), None)
                    .await
                    .unwrap();
                let mut last: BTreeMap<u64, u64> = BTreeMap::new();
                while let Some(m) = browser.next().await.unwrap() {
                    let body = m.body_text().unwrap().to_owned();
                    assert!(
                        attempted.contains(&body),
                        "cycle {cycle}: {body} never sent"
                    );
                    let parts: Vec<u64> = body.split('-').map(|x| x.parse().unwrap()).collect();
                    let prev = last.insert(parts[0], parts[2]).unwrap_or(0);
                    assert!(parts[2] > prev, "cycle {cycle}: {body} out of order");
                    present.insert(body);
                }
            }
            for body in &confirmed {
                assert!(
                    present.contains(body),
                    "cycle {cycle}: confirmed {body} lost"
                );
            }
            connection.close().await.unwrap();
            store.journal().close();
        });
    }
}
