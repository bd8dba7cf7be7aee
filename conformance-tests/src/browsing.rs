//! Queue browsers (Jakarta Messaging 3.1 §5.9): look at a queue's messages, in the order a
//! consumer would get them, without consuming; honour selectors, expiry and delivery delay.
use std::time::Duration;

use courier_api::spi::now_millis;
use courier_api::*;

use crate::{gated, Harness};

/// Creates a browser. When the backend has no browsers (or, for a selector, no queue
/// selectors), asserts that the creation is `Unsupported` and returns `None`.
async fn browser(
    h: &dyn Harness,
    session: &dyn Session,
    queue: &Destination,
    selector: Option<&str>,
) -> Result<Option<Box<dyn Browser>>> {
    let result = session.create_browser(queue, selector).await;
    let caps = h.capabilities();
    let missing = if !caps.browse {
        Some("browsers")
    } else if selector.is_some_and(|s| !s.trim().is_empty()) && !caps.queue_selectors {
        Some("queue selectors")
    } else {
        None
    };
    let Some(missing) = missing else {
        return result.map(Some);
    };
    match result {
        Err(e) => assert!(
            e.is_unsupported(),
            "no {missing}: create_browser must be Unsupported, got {e:?}"
        ),
        Ok(_) => panic!("the backend says it has no {missing} but created a browser"),
    }
    Ok(None)
}

fn texts(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m.body_text().expect("a text message"))
        .collect()
}

/// Sends text messages with a `color` property to `queue`.
async fn send_colored(producer: &dyn Producer, items: &[(&str, &str)]) -> Result<()> {
    for (text, color) in items {
        let mut m = Message::text(*text);
        m.set_property("color", *color)?;
        producer.send(&mut m).await?;
    }
    Ok(())
}

/// Receives `n` messages and returns their texts.
async fn receive_texts(h: &dyn Harness, consumer: &dyn Consumer, n: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = consumer
            .receive_timeout(h.wait())
            .await?
            .unwrap_or_else(|| panic!("expected {n} messages, got only {out:?}"));
        out.push(m.body_text().expect("a text message").to_owned());
    }
    Ok(out)
}

/// A browser shows the queue's messages in order without removing them: a second browser sees
/// them again and a consumer still receives them all afterwards (§5.9).
pub async fn browse_in_order_without_consuming_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse"));
    let producer = session.create_producer(Some(&queue)).await?;
    let items = ["m1", "m2", "m3", "m4", "m5"];
    for text in items {
        producer.send(&mut Message::text(text)).await?;
    }
    let Some(first) = browser(h, session.as_ref(), &queue, None).await? else {
        return conn.close().await;
    };
    assert_eq!(first.queue(), &queue);
    assert_eq!(first.selector(), None);
    let seen = first.collect_all().await?;
    assert_eq!(texts(&seen), items, "first browse");
    assert!(
        first.next().await?.is_none(),
        "an exhausted browser stays at the end"
    );
    first.close().await?;

    let second = browser(h, session.as_ref(), &queue, None)
        .await?
        .expect("a second browser");
    assert_eq!(texts(&second.collect_all().await?), items, "second browse");

    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    assert_eq!(
        receive_texts(h, consumer.as_ref(), items.len()).await?,
        items,
        "browsing must not consume"
    );
    assert!(consumer.receive_timeout(h.quiet()).await?.is_none());
    consumer.close().await?;
    let after = browser(h, session.as_ref(), &queue, None)
        .await?
        .expect("a third browser");
    assert!(
        after.collect_all().await?.is_empty(),
        "consumed messages are gone from the browse"
    );
    conn.close().await
}

/// A browser with a selector shows only the matching messages, in order, and consumes
/// nothing (§5.9, §3.8).
pub async fn browse_with_selector_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse-selector"));
    let producer = session.create_producer(Some(&queue)).await?;
    let items = [
        ("r1", "red"),
        ("b1", "blue"),
        ("r2", "red"),
        ("b2", "blue"),
        ("r3", "red"),
    ];
    send_colored(producer.as_ref(), &items).await?;
    let selector = "color = 'red'";
    let Some(reds) = browser(h, session.as_ref(), &queue, Some(selector)).await? else {
        return conn.close().await;
    };
    assert_eq!(reds.selector(), Some(selector));
    assert_eq!(texts(&reds.collect_all().await?), ["r1", "r2", "r3"]);
    let none = browser(h, session.as_ref(), &queue, Some("color = 'green'"))
        .await?
        .expect("a browser");
    assert!(none.collect_all().await?.is_empty(), "nothing is green");
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    assert_eq!(
        receive_texts(h, consumer.as_ref(), 5).await?,
        ["r1", "b1", "r2", "b2", "r3"],
        "browsing with a selector consumes nothing"
    );
    conn.close().await
}

/// Browsing an empty queue shows nothing (§5.9).
pub async fn browse_empty_queue_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse-empty"));
    let Some(b) = browser(h, session.as_ref(), &queue, None).await? else {
        return conn.close().await;
    };
    assert!(
        b.next().await?.is_none(),
        "an empty queue browses as nothing"
    );
    assert!(b.collect_all().await?.is_empty());
    b.close().await?;
    b.close().await?; // closing twice is fine
    conn.close().await
}

/// After a consumer took the first messages, a browser shows just the rest, in order (§5.9).
pub async fn browse_after_partial_consume_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse-partial"));
    let producer = session.create_producer(Some(&queue)).await?;
    for text in ["m1", "m2", "m3", "m4", "m5"] {
        producer.send(&mut Message::text(text)).await?;
    }
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    assert_eq!(receive_texts(h, consumer.as_ref(), 2).await?, ["m1", "m2"]);
    consumer.close().await?;
    let Some(b) = browser(h, session.as_ref(), &queue, None).await? else {
        return conn.close().await;
    };
    assert_eq!(texts(&b.collect_all().await?), ["m3", "m4", "m5"]);
    conn.close().await
}

/// A browser enumerates messages of mixed priorities in the order a consumer then receives
/// them (§5.9, §3.4.10).
pub async fn browse_order_is_receive_order_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse-priority"));
    let producer = session.create_producer(Some(&queue)).await?;
    let priorities = [1_u8, 8, 4, 8, 0, 4, 9, 1];
    for (i, priority) in priorities.into_iter().enumerate() {
        let options = SendOptions {
            priority,
            ..SendOptions::default()
        };
        let sent = producer
            .send_with(None, &mut Message::text(format!("m{i}")), &options)
            .await;
        if i == 0 {
            let caps = h.capabilities();
            if gated(caps.priority, "priority", sent)?.is_none() {
                return Ok(());
            }
        } else {
            sent?;
        }
    }
    let Some(b) = browser(h, session.as_ref(), &queue, None).await? else {
        return conn.close().await;
    };
    let browsed: Vec<String> = texts(&b.collect_all().await?)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let received = receive_texts(h, consumer.as_ref(), priorities.len()).await?;
    assert_eq!(browsed, received, "browse order must be the receive order");
    conn.close().await
}

/// A browser does not show a message whose time to live has passed (§5.9, §7.8).
pub async fn browse_skips_expired_messages_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse-expired"));
    let producer = session.create_producer(Some(&queue)).await?;
    let short = SendOptions {
        time_to_live: Duration::from_millis(100),
        ..SendOptions::default()
    };
    let sent = producer
        .send_with(None, &mut Message::text("expires"), &short)
        .await;
    let caps = h.capabilities();
    if gated(caps.expiry, "expiry", sent)?.is_none() {
        return Ok(());
    }
    producer.send(&mut Message::text("lives")).await?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let Some(b) = browser(h, session.as_ref(), &queue, None).await? else {
        return conn.close().await;
    };
    assert_eq!(
        texts(&b.collect_all().await?),
        ["lives"],
        "an expired message must not be browsed"
    );
    conn.close().await
}

/// A browser does not show a delayed message before its delivery time, and shows it after
/// (§5.9, §7.9).
pub async fn browse_skips_messages_before_delivery_time_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse-delayed"));
    let producer = session.create_producer(Some(&queue)).await?;
    let delayed = SendOptions {
        delivery_delay: Duration::from_millis(600),
        ..SendOptions::default()
    };
    let mut message = Message::text("delayed");
    let sent = producer.send_with(None, &mut message, &delayed).await;
    if !h.capabilities().delivery_delay {
        match sent {
            Err(e) => assert!(e.is_unsupported(), "expected Unsupported, got {e:?}"),
            Ok(()) => panic!("the backend says it has no delivery delay but accepted one"),
        }
        return conn.close().await;
    }
    sent?;
    producer.send(&mut Message::text("now")).await?;
    let Some(b) = browser(h, session.as_ref(), &queue, None).await? else {
        return conn.close().await;
    };
    assert_eq!(
        texts(&b.collect_all().await?),
        ["now"],
        "a message before its delivery time must not be browsed"
    );
    // Wait until the delivery time has passed, then browse again.
    let wait = message
        .delivery_time()
        .saturating_sub(now_millis())
        .saturating_add(100);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let again = browser(h, session.as_ref(), &queue, None)
        .await?
        .expect("a browser");
    let mut seen = texts(&again.collect_all().await?)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    seen.sort();
    assert_eq!(
        seen,
        ["delayed", "now"],
        "after its delivery time it is browsed"
    );
    conn.close().await
}

/// A browser does not show messages sent in a transaction that is not committed yet, and shows
/// them after the commit (§5.9, §6.2.8).
pub async fn browse_skips_uncommitted_sends_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let made = conn.create_session(SessionMode::Transacted).await;
    let caps = h.capabilities();
    let Some(transacted) = gated(caps.transactions, "transactions", made)? else {
        return Ok(());
    };
    let queue = Destination::queue(h.name("browse-tx"));
    let producer = transacted.create_producer(Some(&queue)).await?;
    producer.send(&mut Message::text("pending")).await?;
    let Some(b) = browser(h, session.as_ref(), &queue, None).await? else {
        return conn.close().await;
    };
    assert!(
        b.collect_all().await?.is_empty(),
        "an uncommitted send must not be browsed"
    );
    transacted.commit().await?;
    let after = browser(h, session.as_ref(), &queue, None)
        .await?
        .expect("a browser");
    assert_eq!(texts(&after.collect_all().await?), ["pending"]);
    conn.close().await
}

/// A browser selector that does not parse is refused at creation with `InvalidSelector`
/// (§5.9, §3.8.1.1).
pub async fn browser_invalid_selector_rejected_5_9(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("browse-bad"));
    let selector = "color = 'red' AND";
    let caps = h.capabilities();
    let result = session.create_browser(&queue, Some(selector)).await;
    if !caps.browse || !caps.queue_selectors {
        match result {
            Err(e) => assert!(e.is_unsupported(), "expected Unsupported, got {e:?}"),
            Ok(_) => panic!("a browser with a selector on a backend without that feature"),
        }
        return conn.close().await;
    }
    match result {
        Err(Error::InvalidSelector {
            selector: text,
            position,
            ..
        }) => {
            assert_eq!(text, selector);
            assert!(
                (14..=selector.len()).contains(&position),
                "position {position} should point at or after the dangling AND"
            );
        }
        Err(e) => panic!("expected InvalidSelector, got {e:?}"),
        Ok(_) => panic!("a browser with an invalid selector was created"),
    }
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! browsing_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            browsing,
            [
                browse_in_order_without_consuming_5_9,
                browse_with_selector_5_9,
                browse_empty_queue_5_9,
                browse_after_partial_consume_5_9,
                browse_order_is_receive_order_5_9,
                browse_skips_expired_messages_5_9,
                browse_skips_messages_before_delivery_time_5_9,
                browse_skips_uncommitted_sends_5_9,
                browser_invalid_selector_rejected_5_9,
            ]
        );
    };
}
