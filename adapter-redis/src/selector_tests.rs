//! The selector compiled to Lua and run in the machine's Redis agrees with the api's evaluator
//! on generated selectors and messages: TRUE, FALSE and UNKNOWN alike. A case Lua cannot
//! decide (64-bit arithmetic beyond 2^53) is left to the api's evaluator by the take script,
//! so it is counted, not compared.

use courier_api::{Message, Selector};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::fields::selector_fields;

const NAMES: &[&str] = &["a", "b", "c", "s", "t"];

fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (-20_i64..20).prop_map(|n| n.to_string()),
        Just("9223372036854775807".to_string()),
        Just("9007199254740993".to_string()),
        Just("4611686018427387904".to_string()),
        (-1000.0_f64..1000.0).prop_map(|d| format!("{d:?}")),
        Just("1e308".to_string()),
        Just("0.5".to_string()),
        Just("0x1F".to_string()),
        Just("017".to_string()),
    ]
}

fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("'x'".to_string()),
        Just("'ab'".to_string()),
        Just("''".to_string()),
        Just("'é_%'".to_string()),
        Just("'it''s'".to_string()),
    ]
}

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(NAMES).prop_map(str::to_string),
        Just("JMSPriority".to_string()),
        Just("JMSType".to_string()),
        Just("JMSXDeliveryCount".to_string()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        ident(),
        number_literal(),
        string_literal(),
        Just("TRUE".to_string()),
        Just("FALSE".to_string()),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                proptest::sample::select(&["+", "-", "*", "/"][..]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.prop_map(|a| format!("+{a}")),
        ]
    })
}

fn condition() -> impl Strategy<Value = String> {
    let cmp = proptest::sample::select(&["=", "<>", "<", "<=", ">", ">="][..]);
    let leaf = prop_oneof![
        (value(), cmp, value()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (value(), value(), value(), any::<bool>()).prop_map(|(v, lo, hi, not)| format!(
            "{v} {}BETWEEN {lo} AND {hi}",
            if not { "NOT " } else { "" }
        )),
        (ident(), any::<bool>()).prop_map(|(i, not)| format!(
            "{i} {}IN ('x', 'ab', 'é')",
            if not { "NOT " } else { "" }
        )),
        (
            ident(),
            proptest::sample::select(
                &["'a%'", "'_b'", "'%'", "'x!_%' ESCAPE '!'", "'é_'", "''"][..]
            ),
            any::<bool>()
        )
            .prop_map(|(i, p, not)| format!("{i} {}LIKE {p}", if not { "NOT " } else { "" })),
        (value(), any::<bool>())
            .prop_map(|(v, not)| format!("{v} IS {}NULL", if not { "NOT " } else { "" })),
        ident(),
        (
            ident(),
            number_literal(),
            number_literal(),
            string_literal()
        )
            .prop_map(|(i, a, b, c)| format!("({i} = {a} OR {i} = {b} OR {i} = {c})")),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) OR ({b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

fn property() -> impl Strategy<Value = courier_api::Value> {
    use courier_api::Value;
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-20_i32..20).prop_map(Value::I32),
        any::<i64>().prop_map(Value::I64),
        Just(Value::I64(i64::MIN)),
        Just(Value::I64(9_007_199_254_740_993)),
        (-1000.0_f32..1000.0).prop_map(Value::F32),
        any::<f64>().prop_map(Value::F64),
        Just(Value::F64(f64::NAN)),
        Just(Value::F64(f64::INFINITY)),
        Just(Value::F64(0.5)),
        proptest::sample::select(&["x", "ab", "", "é", "éb", "x_y", "aé"][..])
            .prop_map(|s| Value::String(s.into())),
        (-3_i8..3).prop_map(Value::I8),
    ]
}

fn message() -> impl Strategy<Value = (Message, u32)> {
    (
        proptest::collection::vec(
            (
                proptest::sample::select(NAMES),
                proptest::option::of(property()),
            ),
            0..5,
        ),
        0_u8..10,
        proptest::option::of(proptest::sample::select(&["x", "ab"][..])),
        0_u32..3,
    )
        .prop_map(|(props, priority, kind, count)| {
            let mut m = Message::text("body");
            for (name, value) in props {
                if let Some(value) = value {
                    m.set_property(name, value).expect("a valid property");
                }
            }
            m.set_message_type(kind);
            courier_api::spi::header_mut(&mut m).priority = priority;
            (m, count)
        })
}

/// Runs the compiled selector in Redis on the message's stored fields.
fn lua_evaluate(
    runtime: &tokio::runtime::Runtime,
    connection: &mut redis::aio::MultiplexedConnection,
    script: &redis::Script,
    selector: &Selector,
    message: &Message,
    count: u32,
) -> i64 {
    let mut invocation = script.prepare_invoke();
    invocation
        .key("courier:{test}")
        .arg("evaluate")
        .arg(selector.to_lua())
        .arg(count)
        .arg("p")
        .arg(message.priority());
    for field in selector_fields(message) {
        invocation.arg(field);
    }
    runtime
        .block_on(invocation.invoke_async::<i64>(connection))
        .unwrap_or_else(|e| panic!("{:?} failed in Lua: {e}", selector.text()))
}

#[test]
fn lua_selectors_agree_with_the_api_evaluator() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = std::env::var("COURIER_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string());
    let client = redis::Client::open(url).unwrap();
    let connection = runtime
        .block_on(client.get_multiplexed_async_connection())
        .expect("the machine's Redis at 127.0.0.1:6379");
    let connection = std::cell::RefCell::new(connection);
    let script = redis::Script::new(&crate::connection::SCRIPT);
    let mut runner = TestRunner::new(Config {
        cases: 4000,
        ..Config::default()
    });
    let compared = std::cell::Cell::new(0_u32);
    let outcomes = std::cell::RefCell::new([0_u32; 3]);
    let undecided = std::cell::Cell::new(0_u32);
    runner
        .run(&(condition(), message()), |(text, (message, count))| {
            let Ok(selector) = Selector::parse(&text) else {
                return Ok(());
            };
            let mut delivered = message.clone();
            courier_api::spi::header_mut(&mut delivered).delivery_count = count;
            let expected = selector.evaluate(&delivered);
            let got = lua_evaluate(
                &runtime,
                &mut connection.borrow_mut(),
                &script,
                &selector,
                &message,
                count,
            );
            if got == 2 {
                undecided.set(undecided.get() + 1);
                return Ok(());
            }
            compared.set(compared.get() + 1);
            let got = match got {
                1 => Some(true),
                0 => Some(false),
                _ => None,
            };
            outcomes.borrow_mut()[match got {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            }] += 1;
            prop_assert_eq!(got, expected, "{} on {:?}", text, delivered.properties());
            Ok(())
        })
        .unwrap();
    let (compared, undecided) = (compared.get(), undecided.get());
    let outcomes = outcomes.into_inner();
    eprintln!("compared {compared} (true, false, unknown: {outcomes:?}), undecided {undecided}");
    assert!(
        outcomes.iter().all(|n| *n > 50),
        "each outcome is exercised: {outcomes:?}"
    );
    assert!(compared > 1000, "too few selectors compared: {compared}");
    assert!(
        undecided < compared / 4,
        "{undecided} undecided of {compared}"
    );
}

/// Selector text cannot break out of its Lua strings: every byte is escaped.
#[test]
fn hostile_literals_stay_literals() {
    let selector = Selector::parse("s = 'x\"]] .. os.exit() .. [[\\'").unwrap();
    let lua = selector.to_lua();
    assert!(!lua.contains("os.exit"), "{lua}");
    assert!(lua.contains("\\034"), "{lua}");
}
