//! Operations in flight when a connection is lost (the `InDoubt` half of the contract in
//! `courier_api::connection`): every pending send, commit and acknowledge resolves — never
//! hangs — with `Ok`, a clean failure (`ConnectionLost`, or `TransactionRolledBack` for a
//! commit) or [`Error::InDoubt`] for its own operation, and what each outcome promises holds
//! on a new connection:
//!
//! - a send that resolved `Ok` is delivered, exactly once; a send that failed cleanly is not
//!   delivered; an in-doubt send is delivered at most once;
//! - a commit that returned `Ok` is whole (every send delivered, every receive consumed); one
//!   that failed cleanly left nothing (its receives come back); an in-doubt one is all or
//!   nothing;
//! - an acknowledge that returned `Ok` consumed its messages; one that failed cleanly left
//!   them all for redelivery; an in-doubt one left each either consumed or redelivered, none
//!   twice.
//!
//! The in-process (embedded) backend is never in doubt: every operation takes effect inside
//! the call, or is undone when the loss cancels it, before the call returns, so it answers
//! only `Ok` or a clean failure and these cases check that contract; a network backend whose
//! requests can be cut off after the broker acted answers `InDoubt` and is checked by the
//! same cases. A harness that cannot sever connections answers `Unsupported` and the cases
//! end early.

use courier_api::*;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::connection_loss::sever;
use crate::expect::outcome;
use crate::Harness;

/// How an operation cut by a loss ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// It took effect.
    Done,
    /// It did not take effect.
    Clean,
    /// It may or may not have taken effect.
    InDoubt,
}

/// Sorts the outcome of `operation`; panics on an error the contract does not allow.
fn ended<T>(result: &Result<T>, operation: InDoubtOperation, what: &str) -> Ended {
    match result {
        Ok(_) => Ended::Done,
        Err(Error::ConnectionLost { .. }) => Ended::Clean,
        Err(Error::TransactionRolledBack(_)) if operation == InDoubtOperation::Commit => {
            Ended::Clean
        }
        Err(Error::InDoubt { operation: op, .. }) => {
            assert_eq!(*op, operation, "{what}: InDoubt names the wrong operation");
            Ended::InDoubt
        }
        Err(_) => panic!(
            "{what} cut off by a loss: expected Ok, ConnectionLost or InDoubt, got {}",
            outcome(result)
        ),
    }
}

/// `future`, which must resolve within [`Harness::wait`] (an operation pending at a loss
/// never hangs).
async fn bounded<F: Future>(h: &dyn Harness, future: F, what: &str) -> F::Output {
    tokio::time::timeout(h.wait(), future)
        .await
        .unwrap_or_else(|_| panic!("{what} still pending {:?} after the loss", h.wait()))
}

/// Every message on `queue`, by body, with how often it arrived and whether it came flagged
/// redelivered, read on a new connection until nothing more comes within [`Harness::quiet`].
async fn drain(h: &dyn Harness, queue: &Destination) -> Result<HashMap<String, (usize, bool)>> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let consumer = session
        .create_consumer(queue, ConsumerOptions::default())
        .await?;
    let mut seen: HashMap<String, (usize, bool)> = HashMap::new();
    while let Some(m) = consumer.receive_timeout(h.quiet()).await? {
        let entry = seen
            .entry(m.body_text().unwrap_or_default().to_owned())
            .or_default();
        entry.0 += 1;
        entry.1 |= m.redelivered();
    }
    conn.close().await?;
    Ok(seen)
}

/// Pipelined sends in flight at a loss: each receipt (or the `send_async` call that found the
/// connection gone) resolves, and after reconnecting the `Ok` sends are delivered exactly
/// once, the clean failures not at all, the in-doubt ones at most once.
pub async fn pipelined_sends_cut_by_a_loss_resolve_truthfully(h: &dyn Harness) -> Result<()> {
    // Sends before the loss (some still unconfirmed when it lands), then more once the loss
    // has happened: those can never be `Done`, so the case cannot pass without cutting
    // something off, however fast the backend confirms.
    const SEVER_AFTER: usize = 200;
    const AFTER_LOSS: usize = 64;
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("doubt-send"));
    let producer = session.create_producer(Some(&queue)).await?;
    let made = AtomicUsize::new(0);
    let lost = std::sync::atomic::AtomicBool::new(false);
    let sending = async {
        let mut receipts = Vec::new();
        for i in 0..SEVER_AFTER + AFTER_LOSS {
            while i >= SEVER_AFTER && !lost.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
            let body = format!("s{i}");
            if i == 0 {
                // Confirmed before anything else: the loss always finds one send done.
                let sent = producer.send(&mut Message::text(body.as_str())).await;
                let stop = sent.is_err();
                receipts.push((body, sent.map(|()| None)));
                if stop {
                    break;
                }
                made.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            match producer.send_async(Message::text(body.as_str())).await {
                Ok(receipt) => receipts.push((body, Ok(Some(receipt)))),
                Err(e) => {
                    receipts.push((body, Err(e)));
                    break;
                }
            }
            made.fetch_add(1, Ordering::SeqCst);
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        receipts
    };
    let severing = async {
        while made.load(Ordering::SeqCst) < SEVER_AFTER {
            tokio::task::yield_now().await;
        }
        let severed = sever(h).await;
        lost.store(true, Ordering::SeqCst);
        severed
    };
    let (receipts, severed) = tokio::join!(sending, severing);
    if !severed? {
        return Ok(());
    }
    let mut ends = Vec::new();
    for (body, receipt) in receipts {
        let result = match receipt {
            Ok(Some(receipt)) => bounded(h, receipt, "a pipelined send's receipt")
                .await
                .map(drop),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        ends.push((
            body,
            ended(&result, InDoubtOperation::Send, "a pipelined send"),
        ));
    }
    let seen = drain(h, &queue).await?;
    for (body, end) in &ends {
        let times = seen.get(body).map_or(0, |(n, _)| *n);
        match end {
            Ended::Done => assert_eq!(times, 1, "{body}: sent Ok, delivered {times} times"),
            Ended::Clean => assert_eq!(times, 0, "{body}: failed cleanly, delivered {times} times"),
            Ended::InDoubt => assert!(times <= 1, "{body}: in doubt, delivered {times} times"),
        }
    }
    let known: std::collections::HashSet<&str> = ends.iter().map(|(b, _)| b.as_str()).collect();
    let strays: Vec<&String> = seen
        .keys()
        .filter(|b| !known.contains(b.as_str()))
        .collect();
    assert!(strays.is_empty(), "delivered but never sent: {strays:?}");
    assert!(
        ends.iter().any(|(_, e)| *e == Ended::Done),
        "the sends before the loss succeeded"
    );
    assert!(
        ends.iter().any(|(_, e)| *e != Ended::Done),
        "the loss came after all {} sends: nothing was cut off",
        ends.len()
    );
    Ok(())
}

/// A transacted commit in flight at a loss resolves; its transaction is whole either way:
/// `Ok` delivered every send and consumed the receive, a clean failure delivered nothing and
/// gives the receive back, an in-doubt one did all or nothing.
pub async fn commit_cut_by_a_loss_is_all_or_nothing(h: &dyn Harness) -> Result<()> {
    if !h.capabilities().transactions {
        return Ok(());
    }
    const SENDS: usize = 200;
    let setup = h.connect().await?;
    let inbox = Destination::queue(h.name("doubt-tx-in"));
    let outbox = Destination::queue(h.name("doubt-tx-out"));
    crate::expect::send_texts(setup.as_ref(), &inbox, &["request"]).await?;
    setup.close().await?;

    let conn = h.connect().await?;
    let tx = conn.create_session(SessionMode::Transacted).await?;
    let consumer = tx
        .create_consumer(&inbox, ConsumerOptions::default())
        .await?;
    let request = consumer.receive_timeout(h.wait()).await?;
    assert_eq!(
        request
            .and_then(|m| m.body_text().map(str::to_owned))
            .as_deref(),
        Some("request")
    );
    let producer = tx.create_producer(Some(&outbox)).await?;
    for i in 0..SENDS {
        producer.send(&mut Message::text(format!("t{i}"))).await?;
    }
    let severing = async {
        tokio::task::yield_now().await;
        sever(h).await
    };
    let (committed, severed) = tokio::join!(bounded(h, tx.commit(), "a commit"), severing);
    if !severed? {
        committed?;
        return Ok(());
    }
    let end = ended(&committed, InDoubtOperation::Commit, "a commit");
    let out = drain(h, &outbox).await?;
    let delivered = out.len();
    assert!(
        out.values().all(|(n, _)| *n == 1),
        "a committed send arrived twice: {out:?}"
    );
    assert!(
        delivered == 0 || delivered == SENDS,
        "a commit cut by a loss delivered {delivered} of its {SENDS} sends: {end:?}"
    );
    let back = drain(h, &inbox).await?;
    let redelivered = back.get("request").map_or(0, |(n, _)| *n);
    match end {
        Ended::Done => {
            assert_eq!(delivered, SENDS, "an Ok commit delivers every send");
            assert_eq!(redelivered, 0, "an Ok commit consumed its receive");
        }
        Ended::Clean => {
            assert_eq!(delivered, 0, "a cleanly failed commit delivers nothing");
            assert_eq!(
                redelivered, 1,
                "a cleanly failed commit gives its receive back"
            );
        }
        Ended::InDoubt => assert_eq!(
            redelivered == 0,
            delivered == SENDS,
            "an in-doubt commit is all or nothing: {delivered} sends, receive back {redelivered}"
        ),
    }
    Ok(())
}

/// A client-ack `acknowledge` in flight at a loss resolves: `Ok` consumed every message,
/// a clean failure leaves every one for redelivery, an in-doubt one leaves each consumed or
/// redelivered once.
pub async fn acknowledge_cut_by_a_loss_resolves_truthfully(h: &dyn Harness) -> Result<()> {
    const MESSAGES: usize = 20;
    let queue = Destination::queue(h.name("doubt-ack"));
    let bodies: Vec<String> = (0..MESSAGES).map(|i| format!("a{i}")).collect();
    let setup = h.connect().await?;
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    crate::expect::send_texts(setup.as_ref(), &queue, &refs).await?;
    setup.close().await?;

    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::ClientAcknowledge).await?;
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    for body in &bodies {
        let got = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("{body} was sent above"));
        assert_eq!(got.body_text(), Some(body.as_str()));
    }
    let severing = async {
        tokio::task::yield_now().await;
        sever(h).await
    };
    let (acked, severed) = tokio::join!(
        bounded(h, session.acknowledge(), "an acknowledge"),
        severing
    );
    if !severed? {
        acked?;
        return Ok(());
    }
    let end = ended(&acked, InDoubtOperation::Acknowledge, "an acknowledge");
    let back = drain(h, &queue).await?;
    assert!(
        back.values()
            .all(|(n, redelivered)| *n == 1 && *redelivered),
        "each message comes back at most once, flagged redelivered: {back:?}"
    );
    assert!(
        back.keys().all(|b| bodies.contains(b)),
        "only the received messages come back: {back:?}"
    );
    match end {
        Ended::Done => assert!(
            back.is_empty(),
            "acknowledged Ok, yet redelivered: {back:?}"
        ),
        Ended::Clean => assert_eq!(
            back.len(),
            MESSAGES,
            "a cleanly failed acknowledge leaves every message for redelivery"
        ),
        Ended::InDoubt => {}
    }
    Ok(())
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! in_doubt_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            in_doubt,
            [
                pipelined_sends_cut_by_a_loss_resolve_truthfully,
                commit_cut_by_a_loss_is_all_or_nothing,
                acknowledge_cut_by_a_loss_resolves_truthfully,
            ]
        );
    };
}
