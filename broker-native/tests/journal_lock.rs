//! One process per journal directory: a child process (this test binary, re-run as
//! `lock_holder`) opens the journal and waits; while it lives, opening the directory here is
//! refused with a typed error naming the directory, through the journal and through
//! `embedded:/dir` alike. Once the child is SIGKILLed the kernel releases its lock and the
//! directory opens again. Within a process, closing or dropping a journal releases it.

use courier_api::Error;
use courier_broker::storage::{Journal, JournalError, JournalOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
#[ignore = "the child process of `a_second_process_is_refused_until_the_first_dies`"]
fn lock_holder() {
    let Ok(dir) = std::env::var("COURIER_LOCK_DIR") else {
        return;
    };
    let (_journal, _) = Journal::open(&dir, JournalOptions::default()).unwrap();
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "@open");
    let _ = o.flush();
    drop(o);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn assert_locked(
    result: Result<(Journal, courier_broker::storage::Recovered), JournalError>,
    dir: &Path,
) {
    match result {
        Err(JournalError::Locked { dir: locked }) => assert_eq!(locked, dir),
        Err(other) => panic!("expected JournalError::Locked, got {other:?}"),
        Ok(_) => panic!("a second journal opened a directory another one holds"),
    }
}

#[test]
fn a_second_process_is_refused_until_the_first_dies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_holder", "--ignored", "--nocapture"])
        .env("COURIER_LOCK_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let opened = BufReader::new(stdout)
        .lines()
        .map_while(|l| l.ok())
        .any(|l| l.contains("@open"));
    if !opened {
        let _ = child.kill();
        panic!("the child did not open the journal");
    }

    assert_locked(Journal::open(&dir, JournalOptions::default()), &dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("embedded:{}", dir.display());
    let refused = runtime.block_on(courier_broker::connect(&url));
    match refused {
        Err(e @ Error::IllegalState(_)) => assert!(
            e.to_string().contains(&dir.display().to_string()),
            "the error names the directory: {e}"
        ),
        Err(other) => panic!("expected IllegalState naming the directory, got {other:?}"),
        Ok(_) => panic!(
            "embedded:{} opened while another process holds it",
            dir.display()
        ),
    }

    child.kill().unwrap(); // SIGKILL: the kernel drops the lock with the process
    child.wait().unwrap();
    let (journal, _) = Journal::open(&dir, JournalOptions::default())
        .expect("the directory opens once its holder died");
    journal.close();
}

#[test]
fn closing_or_dropping_a_journal_releases_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (first, _) = Journal::open(dir, JournalOptions::default()).unwrap();
    assert_locked(Journal::open(dir, JournalOptions::default()), dir);
    first.close();
    let (second, _) = Journal::open(dir, JournalOptions::default()).expect("released by close");
    assert_locked(Journal::open(dir, JournalOptions::default()), dir);
    drop(second);
    let (third, _) = Journal::open(dir, JournalOptions::default()).expect("released by drop");
    drop(third);
}
