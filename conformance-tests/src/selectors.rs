//! Message selectors (Jakarta Messaging 3.1 §3.8): every construct of the grammar, evaluated end
//! to end by the backend on queue consumers and on topic subscriptions.
//!
//! Most cases send labelled messages and check, for each selector, that a consumer with it gets
//! exactly the expected labels — on a queue (where the others must stay for a consumer without
//! selector) and on a topic (where the subscription never sees the others).
use courier_api::*;

use crate::waits::assert_quiet;
use crate::{gated, Harness};

/// A message to send, with the options of its send.
type Sent = (Message, SendOptions);

/// A message labelled `label` (its text body) with the given properties, sent with the default
/// options.
fn m(label: &str, props: &[(&str, Value)]) -> Sent {
    let mut message = Message::text(label);
    for (name, value) in props {
        message
            .set_property(name, value.clone())
            .expect("a valid test property");
    }
    (message, SendOptions::default())
}

fn label(message: &Message) -> String {
    message
        .body_text()
        .expect("selector test messages have a text label")
        .to_owned()
}

fn sorted<S: AsRef<str>>(labels: &[S]) -> Vec<String> {
    let mut out: Vec<String> = labels.iter().map(|s| s.as_ref().to_owned()).collect();
    out.sort();
    out
}

/// Receives `n` messages (each within [`Harness::wait`]) and returns their labels.
async fn receive_labels(
    h: &dyn Harness,
    consumer: &dyn Consumer,
    n: usize,
    what: &str,
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match consumer.receive_timeout(h.wait()).await? {
            Some(message) => out.push(label(&message)),
            None => panic!("{what}: expected {n} messages within h.wait(), got only {out:?}"),
        }
    }
    Ok(out)
}

/// Creates a queue consumer with `selector`. When the backend has no queue selectors, asserts
/// that the creation is `Unsupported` and returns `None`.
async fn queue_consumer(
    h: &dyn Harness,
    session: &dyn Session,
    queue: &Destination,
    selector: &str,
) -> Result<Option<Box<dyn Consumer>>> {
    let result = session
        .create_consumer(queue, ConsumerOptions::selector(selector))
        .await;
    if h.capabilities().queue_selectors {
        return result.map(Some);
    }
    match result {
        Err(e) if e.is_unsupported() => Ok(None),
        Err(e) => panic!("no queue selectors: {selector:?} should be Unsupported, got {e:?}"),
        Ok(_) => panic!("the backend says it has no queue selectors but accepted {selector:?}"),
    }
}

/// On a queue: a consumer with `selector` receives exactly `expected`; the other messages stay
/// on the queue for a consumer without selector (§3.8.1).
async fn check_queue(
    h: &dyn Harness,
    selector: &str,
    msgs: &[Sent],
    expected: &[&str],
) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("selectors"));
    let producer = session.create_producer(Some(&queue)).await?;
    let all: Vec<String> = msgs.iter().map(|(m, _)| label(m)).collect();
    for (message, options) in msgs {
        producer
            .send_with(None, &mut message.clone(), options)
            .await?;
    }
    let Some(consumer) = queue_consumer(h, session.as_ref(), &queue, selector).await? else {
        return conn.close().await;
    };
    let what = format!("queue consumer with selector {selector:?}");
    let got = receive_labels(h, consumer.as_ref(), expected.len(), &what).await?;
    assert_eq!(sorted(&got), sorted(expected), "{what}");
    assert_quiet(h, consumer.as_ref(), &what).await?;
    consumer.close().await?;

    let rest: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|l| !expected.contains(l))
        .collect();
    let plain = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let what = format!("consumer without selector after {selector:?}");
    let got = receive_labels(h, plain.as_ref(), rest.len(), &what).await?;
    assert_eq!(
        sorted(&got),
        sorted(&rest),
        "{what}: the non-matching messages must stay on the queue"
    );
    conn.close().await
}

/// On a topic: a subscription with `selector` receives exactly `expected` while one without
/// selector receives everything (§3.8.1).
async fn check_topic(
    h: &dyn Harness,
    selector: &str,
    msgs: &[Sent],
    expected: &[&str],
) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("selectors"));
    let selecting = session
        .create_consumer(&topic, ConsumerOptions::selector(selector))
        .await?;
    let plain = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    let all: Vec<String> = msgs.iter().map(|(m, _)| label(m)).collect();
    for (message, options) in msgs {
        producer
            .send_with(None, &mut message.clone(), options)
            .await?;
    }
    let what = format!("topic subscription with selector {selector:?}");
    let got = receive_labels(h, selecting.as_ref(), expected.len(), &what).await?;
    assert_eq!(sorted(&got), sorted(expected), "{what}");
    assert_quiet(h, selecting.as_ref(), &what).await?;
    let got = receive_labels(
        h,
        plain.as_ref(),
        all.len(),
        "topic subscription without selector",
    )
    .await?;
    assert_eq!(
        sorted(&got),
        sorted(&all),
        "the subscription without selector gets all"
    );
    conn.close().await
}

/// Checks `selector` on a queue and on a topic at the same time.
async fn check(h: &dyn Harness, selector: &str, msgs: &[Sent], expected: &[&str]) -> Result<()> {
    let (queue, topic) = tokio::join!(
        check_queue(h, selector, msgs, expected),
        check_topic(h, selector, msgs, expected)
    );
    queue?;
    topic
}

/// Asserts that creating a consumer with `selector` on `destination` is
/// [`Error::InvalidSelector`] naming the selector, at a position in `min_position..=len`.
async fn assert_invalid(
    session: &dyn Session,
    destination: &Destination,
    selector: &str,
    min_position: usize,
) {
    match session
        .create_consumer(destination, ConsumerOptions::selector(selector))
        .await
    {
        Err(Error::InvalidSelector {
            selector: text,
            position,
            ..
        }) => {
            assert_eq!(text, selector, "the error names the selector");
            assert!(
                min_position <= position && position <= selector.len(),
                "selector {selector:?}: error position {position} is not in {min_position}..={}",
                selector.len()
            );
        }
        Err(e) => panic!("selector {selector:?}: expected InvalidSelector, got {e:?}"),
        Ok(_) => panic!("selector {selector:?} on {destination} was accepted"),
    }
}

/// `=` compares strings (with `''` escaping a quote), exact numerics and booleans (§3.8.1.1).
pub async fn equals_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("red", &[("color", "red".into())]),
        m("blue", &[("color", "blue".into())]),
        m("quote", &[("color", "O'Brien".into())]),
        m("five", &[("n", 5_i32.into())]),
        m("six", &[("n", 6_i64.into())]),
        m("flag", &[("flag", true.into())]),
        m("none", &[]),
    ];
    check(h, "color = 'red'", &msgs, &["red"]).await?;
    check(h, "color = 'O''Brien'", &msgs, &["quote"]).await?;
    check(h, "n = 5", &msgs, &["five"]).await?;
    check(h, "flag = TRUE", &msgs, &["flag"]).await
}

/// `<>` selects differing values of the same type, never an absent property (§3.8.1.1).
pub async fn not_equal_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("red", &[("color", "red".into())]),
        m("blue", &[("color", "blue".into())]),
        m("five", &[("n", 5_i32.into())]),
        m("six", &[("n", 6_i64.into())]),
        m("on", &[("flag", true.into())]),
        m("off", &[("flag", false.into())]),
        m("none", &[]),
    ];
    check(h, "color <> 'red'", &msgs, &["blue"]).await?;
    check(h, "n <> 5", &msgs, &["six"]).await?;
    check(h, "flag <> FALSE", &msgs, &["on"]).await
}

/// `<`, `>`, `<=`, `>=` on numbers (§3.8.1.1).
pub async fn numeric_comparisons_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("one", &[("n", 1_i32.into())]),
        m("two", &[("n", 2_i16.into())]),
        m("three", &[("n", 3_i64.into())]),
        m("none", &[]),
    ];
    check(h, "n < 2", &msgs, &["one"]).await?;
    check(h, "n > 2", &msgs, &["three"]).await?;
    check(h, "n <= 2", &msgs, &["one", "two"]).await?;
    check(h, "n >= 2", &msgs, &["two", "three"]).await
}

/// Arithmetic `+ - * /` and unary minus with the usual precedence and numeric promotion; NULL
/// operands make the comparison unknown (§3.8.1.1).
pub async fn arithmetic_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("x", &[("a", 3_i32.into()), ("b", 2_i32.into())]),
        m("y", &[("a", 5_i64.into()), ("b", 5_i8.into())]),
        m("z", &[("a", 3_i32.into())]),
    ];
    check(h, "a + b = 5", &msgs, &["x"]).await?;
    check(h, "a - b = 1", &msgs, &["x"]).await?;
    check(h, "a * b = 25", &msgs, &["y"]).await?;
    check(h, "a / 2.0 = 1.5", &msgs, &["x", "z"]).await?;
    check(h, "-a = -3", &msgs, &["x", "z"]).await?;
    check(h, "a + b * 2 = 7", &msgs, &["x"]).await?;
    check(h, "(a + b) * 2 = 10", &msgs, &["x"]).await?;
    check(h, "a + b > 0", &msgs, &["x", "y"]).await
}

/// `AND`, `OR`, `NOT` with the precedence NOT > AND > OR (§3.8.1.1).
pub async fn and_or_not_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("p", &[("a", 1_i32.into()), ("b", 1_i32.into())]),
        m("q", &[("a", 1_i32.into()), ("b", 2_i32.into())]),
        m("r", &[("a", 2_i32.into()), ("b", 1_i32.into())]),
    ];
    check(h, "a = 1 AND b = 1", &msgs, &["p"]).await?;
    check(h, "a = 1 OR b = 1", &msgs, &["p", "q", "r"]).await?;
    check(h, "NOT a = 1", &msgs, &["r"]).await?;
    // AND binds tighter than OR: a = 1 OR (b = 1 AND a = 2).
    check(h, "a = 1 OR b = 1 AND a = 2", &msgs, &["p", "q", "r"]).await?;
    // NOT binds tighter than AND: (NOT a = 1) AND b = 1.
    check(h, "NOT a = 1 AND b = 1", &msgs, &["r"]).await
}

/// SQL three-valued logic with absent (NULL) properties: only TRUE selects; NOT UNKNOWN is
/// UNKNOWN; FALSE AND UNKNOWN is FALSE; TRUE OR UNKNOWN is TRUE (§3.8.1.2).
pub async fn three_valued_logic_with_null_3_8_1_2(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("b2", &[("b", 2_i32.into())]),
        m("b3", &[("b", 3_i32.into())]),
        m("a5", &[("a", 5_i32.into())]),
        m("a0", &[("a", 0_i32.into())]),
        m("none", &[]),
    ];
    check(h, "a > 1 OR b = 2", &msgs, &["b2", "a5"]).await?;
    check(h, "a > 1 AND b = 2", &msgs, &[]).await?;
    check(h, "NOT (a > 1)", &msgs, &["a0"]).await?;
    check(h, "NOT (a > 1 AND b = 2)", &msgs, &["b3", "a0"]).await?;
    check(h, "NOT (a > 1 OR b = 2)", &msgs, &[]).await?;
    check(h, "a = a", &msgs, &["a5", "a0"]).await
}

/// `BETWEEN` and `NOT BETWEEN` are inclusive, mix exact and approximate numbers, and never
/// select an absent property (§3.8.1.1).
pub async fn between_and_not_between_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("1", &[("n", 1_i32.into())]),
        m("2", &[("n", 2_i32.into())]),
        m("2.5", &[("n", 2.5_f64.into())]),
        m("3", &[("n", 3_i64.into())]),
        m("4", &[("n", 4_i8.into())]),
        m("5", &[("n", 5_i32.into())]),
        m("none", &[]),
    ];
    check(h, "n BETWEEN 2 AND 4", &msgs, &["2", "2.5", "3", "4"]).await?;
    check(h, "n NOT BETWEEN 2 AND 4", &msgs, &["1", "5"]).await?;
    check(h, "n BETWEEN 2.1 AND 2.9", &msgs, &["2.5"]).await
}

/// `IN` and `NOT IN` over string literals; an absent property is in neither (§3.8.1.1, §3.8.1.2).
pub async fn in_and_not_in_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("red", &[("color", "red".into())]),
        m("green", &[("color", "green".into())]),
        m("blue", &[("color", "blue".into())]),
        m("none", &[]),
    ];
    check(h, "color IN ('red', 'green')", &msgs, &["red", "green"]).await?;
    check(h, "color NOT IN ('red', 'green')", &msgs, &["blue"]).await?;
    check(h, "color IN ('blue')", &msgs, &["blue"]).await
}

/// `LIKE` with `%` (any run, also empty) and `_` (exactly one character), `NOT LIKE`; an absent
/// property matches neither (§3.8.1.1).
pub async fn like_wildcards_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("abc", &[("name", "abc".into())]),
        m("abd", &[("name", "abd".into())]),
        m("ab", &[("name", "ab".into())]),
        m("xabc", &[("name", "xabc".into())]),
        m("ac", &[("name", "ac".into())]),
        m("aXc", &[("name", "aXc".into())]),
        m("none", &[]),
    ];
    check(h, "name LIKE 'ab%'", &msgs, &["abc", "abd", "ab"]).await?;
    check(h, "name LIKE 'a_c'", &msgs, &["abc", "aXc"]).await?;
    check(h, "name LIKE '%c'", &msgs, &["abc", "xabc", "ac", "aXc"]).await?;
    check(h, "name LIKE 'abc'", &msgs, &["abc"]).await?;
    check(h, "name NOT LIKE 'ab%'", &msgs, &["xabc", "ac", "aXc"]).await
}

/// `LIKE … ESCAPE` makes `_` and `%` literal (§3.8.1.1).
pub async fn like_escape_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("a_1", &[("name", "a_1".into())]),
        m("ab1", &[("name", "ab1".into())]),
        m("a%", &[("name", "a%".into())]),
        m("ax", &[("name", "ax".into())]),
        m("100%", &[("name", "100%".into())]),
        m("1000", &[("name", "1000".into())]),
    ];
    check(h, "name LIKE 'a\\_%' ESCAPE '\\'", &msgs, &["a_1"]).await?;
    check(h, "name LIKE '100!%' ESCAPE '!'", &msgs, &["100%"]).await?;
    check(h, "name LIKE 'a!%' ESCAPE '!'", &msgs, &["a%"]).await
}

/// `IS NULL` selects absent properties, `IS NOT NULL` present ones of any type (§3.8.1.2).
pub async fn is_null_and_is_not_null_3_8_1_2(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("string", &[("x", "".into())]),
        m("int", &[("x", 0_i32.into())]),
        m("bool", &[("x", false.into())]),
        m("double", &[("x", 0.0_f64.into())]),
        m("other", &[("y", 1_i32.into())]),
        m("none", &[]),
    ];
    check(h, "x IS NULL", &msgs, &["other", "none"]).await?;
    check(
        h,
        "x IS NOT NULL",
        &msgs,
        &["string", "int", "bool", "double"],
    )
    .await
}

/// `JMSPriority` and `JMSDeliveryMode` (`'PERSISTENT'` / `'NON_PERSISTENT'`) can be selected
/// on (§3.8.1.1).
pub async fn header_priority_and_delivery_mode_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let high = SendOptions {
        priority: 7,
        ..SendOptions::default()
    };
    let probe = h.connect().await?;
    let session = probe.create_session(SessionMode::AutoAcknowledge).await?;
    let producer = session
        .create_producer(Some(&Destination::queue(h.name("prio-probe"))))
        .await?;
    let sent = producer
        .send_with(None, &mut Message::text("probe"), &high)
        .await;
    let caps = h.capabilities();
    if gated(caps.priority, "priority", sent)?.is_none() {
        return Ok(());
    }
    probe.close().await?;
    let low = SendOptions {
        priority: 2,
        ..SendOptions::default()
    };
    let non_persistent = SendOptions {
        delivery_mode: DeliveryMode::NonPersistent,
        ..SendOptions::default()
    };
    let msgs = [
        (Message::text("p7"), high),
        (Message::text("p2"), low),
        (Message::text("np"), non_persistent),
    ];
    check(h, "JMSPriority > 5", &msgs, &["p7"]).await?;
    check(h, "JMSPriority BETWEEN 0 AND 4", &msgs, &["p2", "np"]).await?;
    check(h, "JMSDeliveryMode = 'NON_PERSISTENT'", &msgs, &["np"]).await?;
    check(h, "JMSDeliveryMode = 'PERSISTENT'", &msgs, &["p7", "p2"]).await
}

/// `JMSType` and `JMSCorrelationID` can be selected on; unset they are NULL (§3.8.1.1).
pub async fn header_type_and_correlation_id_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let mut order = Message::text("order");
    order.set_message_type(Some("order"));
    let mut invoice = Message::text("invoice");
    invoice.set_message_type(Some("invoice"));
    let mut correlated = Message::text("correlated");
    correlated.set_correlation_id("c-1")?;
    let msgs = [
        (order, SendOptions::default()),
        (invoice, SendOptions::default()),
        (correlated, SendOptions::default()),
        m("none", &[]),
    ];
    check(h, "JMSType = 'order'", &msgs, &["order"]).await?;
    check(h, "JMSType IS NULL", &msgs, &["correlated", "none"]).await?;
    check(h, "JMSCorrelationID = 'c-1'", &msgs, &["correlated"]).await?;
    check(h, "JMSCorrelationID LIKE 'c-%'", &msgs, &["correlated"]).await
}

/// `JMSMessageID` and `JMSTimestamp` can be selected on: a disabled id is NULL, and a queue
/// consumer can pick one message by its id (§3.8.1.1).
pub async fn header_message_id_and_timestamp_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let no_id = SendOptions {
        disable_message_id: true,
        ..SendOptions::default()
    };
    let no_timestamp = SendOptions {
        disable_timestamp: true,
        ..SendOptions::default()
    };
    let msgs = [
        m("plain", &[]),
        (Message::text("no-id"), no_id),
        (Message::text("no-timestamp"), no_timestamp),
    ];
    check(
        h,
        "JMSMessageID LIKE 'ID:%'",
        &msgs,
        &["plain", "no-timestamp"],
    )
    .await?;
    check(h, "JMSMessageID IS NULL", &msgs, &["no-id"]).await?;
    check(h, "JMSTimestamp > 0", &msgs, &["plain", "no-id"]).await?;

    // Pick the second of three messages by its id.
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("selectors-id"));
    let producer = session.create_producer(Some(&queue)).await?;
    let mut ids = Vec::new();
    for text in ["first", "second", "third"] {
        let mut message = Message::text(text);
        producer.send(&mut message).await?;
        ids.push(message.message_id().expect("a message id").to_owned());
    }
    let selector = format!("JMSMessageID = '{}'", ids[1].replace('\'', "''"));
    if let Some(consumer) = queue_consumer(h, session.as_ref(), &queue, &selector).await? {
        let got = receive_labels(h, consumer.as_ref(), 1, &selector).await?;
        assert_eq!(got, ["second"]);
        assert_quiet(h, consumer.as_ref(), &selector).await?;
    }
    conn.close().await
}

/// No conversion happens in selectors: the string `'2'` is not greater than 1 nor equal to 2;
/// comparing unlike types is FALSE, so its negation is TRUE (§3.8.1.1).
pub async fn no_type_conversion_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("string", &[("n", "2".into())]),
        m("int", &[("n", 2_i32.into())]),
        m("bool", &[("n", true.into())]),
    ];
    check(h, "n > 1", &msgs, &["int"]).await?;
    check(h, "n = 2", &msgs, &["int"]).await?;
    check(h, "n = '2'", &msgs, &["string"]).await?;
    check(h, "n = TRUE", &msgs, &["bool"]).await?;
    check(h, "NOT (n = 2)", &msgs, &["string", "bool"]).await
}

/// Exact and approximate numerics compare with each other; approximate literals in the forms
/// `7E3`, `2.0` and `-95.7` (§3.8.1.1).
pub async fn exact_and_approximate_numerics_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let msgs = [
        m("int2", &[("x", 2_i32.into())]),
        m("double2", &[("x", 2.0_f64.into())]),
        m("float1.5", &[("x", 1.5_f32.into())]),
        m("long7000", &[("x", 7000_i64.into())]),
        m("double7000", &[("x", 7000.0_f64.into())]),
        m("neg", &[("x", (-95.7_f64).into())]),
    ];
    check(h, "x = 2", &msgs, &["int2", "double2"]).await?;
    check(h, "x = 2.0", &msgs, &["int2", "double2"]).await?;
    check(h, "x > 1.25 AND x < 1.75", &msgs, &["float1.5"]).await?;
    check(h, "x = 7E3", &msgs, &["long7000", "double7000"]).await?;
    check(h, "x = -95.7", &msgs, &["neg"]).await?;
    check(h, "x * 2 = 4.0", &msgs, &["int2", "double2"]).await
}

/// Keywords are case-insensitive; identifiers are case-sensitive (§3.8.1.1).
pub async fn keywords_case_insensitive_identifiers_case_sensitive_3_8_1_1(
    h: &dyn Harness,
) -> Result<()> {
    let msgs = [
        m(
            "lower",
            &[
                ("color", "red".into()),
                ("n", 2_i32.into()),
                ("name", "abc".into()),
            ],
        ),
        m("upper", &[("Color", "red".into())]),
        m("flag", &[("flag", true.into())]),
    ];
    check(
        h,
        "color = 'red' and n between 1 AnD 3 oR name like 'zz%' EsCaPe '!'",
        &msgs,
        &["lower"],
    )
    .await?;
    check(
        h,
        "name Is Not Null aNd color not In ('blue') AND nOt (n > 5)",
        &msgs,
        &["lower"],
    )
    .await?;
    check(h, "Color = 'red'", &msgs, &["upper"]).await?;
    check(h, "color iS nUlL AND flag = tRuE", &msgs, &["flag"]).await
}

/// On a queue, messages a consumer's selector does not match stay for other consumers: two
/// selecting consumers get their own messages in order, a plain one gets the rest (§3.8.1).
pub async fn queue_non_matching_stay_for_other_consumers_3_8_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("selectors-stay"));
    let Some(reds) = queue_consumer(h, session.as_ref(), &queue, "color = 'red'").await? else {
        return conn.close().await;
    };
    assert_eq!(reds.selector(), Some("color = 'red'"));
    let other = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let blues = other
        .create_consumer(&queue, ConsumerOptions::selector("color = 'blue'"))
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    for (text, color) in [
        ("red1", "red"),
        ("blue1", "blue"),
        ("green1", "green"),
        ("red2", "red"),
        ("blue2", "blue"),
    ] {
        let mut message = Message::text(text);
        message.set_property("color", color)?;
        producer.send(&mut message).await?;
    }
    assert_eq!(
        receive_labels(h, reds.as_ref(), 2, "reds").await?,
        ["red1", "red2"]
    );
    assert_eq!(
        receive_labels(h, blues.as_ref(), 2, "blues").await?,
        ["blue1", "blue2"]
    );
    assert_quiet(h, reds.as_ref(), "reds").await?;
    assert_quiet(h, blues.as_ref(), "blues").await?;
    let plain = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    assert_eq!(
        receive_labels(h, plain.as_ref(), 1, "plain").await?,
        ["green1"],
        "the message no selector matched stays on the queue"
    );
    assert_quiet(h, plain.as_ref(), "plain").await?;
    conn.close().await
}

/// A topic subscription with a selector never receives non-matching messages, while a
/// subscription without one gets them all, in order (§3.8.1).
pub async fn topic_subscription_never_gets_non_matching_3_8_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("selectors-topic"));
    let reds = session
        .create_consumer(&topic, ConsumerOptions::selector("color = 'red'"))
        .await?;
    let all = session
        .create_consumer(&topic, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    for (text, color) in [
        ("red1", "red"),
        ("blue1", "blue"),
        ("red2", "red"),
        ("blue2", "blue"),
    ] {
        let mut message = Message::text(text);
        message.set_property("color", color)?;
        producer.send(&mut message).await?;
    }
    assert_eq!(
        receive_labels(h, all.as_ref(), 4, "all").await?,
        ["red1", "blue1", "red2", "blue2"]
    );
    assert_eq!(
        receive_labels(h, reds.as_ref(), 2, "reds").await?,
        ["red1", "red2"]
    );
    assert_quiet(h, reds.as_ref(), "reds").await?;
    conn.close().await
}

/// An empty (or blank) selector selects every message, on queues whatever the backend's
/// selector support, and on topics (§3.8.1).
pub async fn empty_selector_selects_everything_3_8_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("selectors-empty"));
    let topic = Destination::topic(h.name("selectors-empty"));
    let from_queue = session
        .create_consumer(&queue, ConsumerOptions::selector(""))
        .await?;
    let from_topic = session
        .create_consumer(&topic, ConsumerOptions::selector("   "))
        .await?;
    let producer = session.create_producer(None).await?;
    for (i, text) in ["a", "b", "c"].into_iter().enumerate() {
        let mut message = Message::text(text);
        if i == 1 {
            message.set_property("color", "red")?;
        }
        producer.send_to(&queue, &mut message.clone()).await?;
        producer.send_to(&topic, &mut message).await?;
    }
    assert_eq!(
        receive_labels(h, from_queue.as_ref(), 3, "queue, empty selector").await?,
        ["a", "b", "c"]
    );
    assert_eq!(
        receive_labels(h, from_topic.as_ref(), 3, "topic, blank selector").await?,
        ["a", "b", "c"]
    );
    conn.close().await
}

/// A selector that does not parse is refused when the consumer is created, with
/// `InvalidSelector` naming a plausible position (§3.8.1.1).
pub async fn invalid_selector_rejected_at_creation_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("selectors-bad"));
    let queue = Destination::queue(h.name("selectors-bad"));
    // (selector, lowest plausible error position)
    let bad: [(&str, usize); 14] = [
        ("color = ", 6),
        ("color = 'red", 8),
        ("a = 1)", 5),
        ("(a = 1", 0),
        ("a == 1", 2),
        ("a = 1 AND", 6),
        ("AND a = 1", 0),
        ("n BETWEEN 1", 2),
        ("color IN ()", 6),
        ("color IN (1, 2)", 6),
        ("name LIKE 5", 5),
        ("name LIKE 'a' ESCAPE 'ab'", 14),
        ("a ! 1", 2),
        ("a = 'x' 'y'", 8),
    ];
    for (selector, min) in bad {
        assert_invalid(session.as_ref(), &topic, selector, min).await;
        if h.capabilities().queue_selectors {
            assert_invalid(session.as_ref(), &queue, selector, min).await;
        }
    }
    // The session is still usable after the refusals.
    let consumer = session
        .create_consumer(&topic, ConsumerOptions::selector("a = 1"))
        .await?;
    let producer = session.create_producer(Some(&topic)).await?;
    let mut message = Message::text("ok");
    message.set_property("a", 1_i32)?;
    producer.send(&mut message).await?;
    assert_eq!(
        receive_labels(h, consumer.as_ref(), 1, "after refusals").await?,
        ["ok"]
    );
    conn.close().await
}

/// Header fields a selector may not name (JMSDestination, JMSReplyTo, JMSExpiration,
/// JMSRedelivered, JMSDeliveryTime) make the selector invalid (§3.8.1.1).
pub async fn disallowed_header_identifiers_rejected_3_8_1_1(h: &dyn Harness) -> Result<()> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let topic = Destination::topic(h.name("selectors-headers"));
    let queue = Destination::queue(h.name("selectors-headers"));
    for selector in [
        "JMSDestination = 'queue://x'",
        "JMSReplyTo IS NULL",
        "JMSExpiration > 0",
        "JMSRedelivered = FALSE",
        "JMSDeliveryTime > 0",
        "color = 'red' AND JMSExpiration = 0",
    ] {
        assert_invalid(session.as_ref(), &topic, selector, 0).await;
        if h.capabilities().queue_selectors {
            assert_invalid(session.as_ref(), &queue, selector, 0).await;
        }
    }
    conn.close().await
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! selectors_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            selectors,
            [
                equals_3_8_1_1,
                not_equal_3_8_1_1,
                numeric_comparisons_3_8_1_1,
                arithmetic_3_8_1_1,
                and_or_not_3_8_1_1,
                three_valued_logic_with_null_3_8_1_2,
                between_and_not_between_3_8_1_1,
                in_and_not_in_3_8_1_1,
                like_wildcards_3_8_1_1,
                like_escape_3_8_1_1,
                is_null_and_is_not_null_3_8_1_2,
                header_priority_and_delivery_mode_3_8_1_1,
                header_type_and_correlation_id_3_8_1_1,
                header_message_id_and_timestamp_3_8_1_1,
                no_type_conversion_3_8_1_1,
                exact_and_approximate_numerics_3_8_1_1,
                keywords_case_insensitive_identifiers_case_sensitive_3_8_1_1,
                queue_non_matching_stay_for_other_consumers_3_8_1,
                topic_subscription_never_gets_non_matching_3_8_1,
                empty_selector_selects_everything_3_8_1,
                invalid_selector_rejected_at_creation_3_8_1_1,
                disallowed_header_identifiers_rejected_3_8_1_1,
            ]
        );
    };
}
