//! Message properties (Jakarta Messaging 3.1 §3.5, Table 3-2): typed values survive the trip,
//! reads follow the conversion table, names are checked, and the `JMSX` properties behave.

use courier_api::*;

use crate::expect::assert_format_error;
use crate::Harness;

/// Sends `message` to a fresh queue and receives it back.
async fn round_trip(h: &dyn Harness, mut message: Message) -> Result<Message> {
    let conn = h.connect().await?;
    let session = conn.create_session(SessionMode::AutoAcknowledge).await?;
    let queue = Destination::queue(h.name("properties"));
    let consumer = session
        .create_consumer(&queue, ConsumerOptions::default())
        .await?;
    let producer = session.create_producer(Some(&queue)).await?;
    producer.send(&mut message).await?;
    let got = consumer
        .receive_timeout(h.wait())
        .await?
        .expect("the sent message within h.wait()");
    conn.close().await?;
    Ok(got)
}

/// A message with one property of every type, named after the type.
fn every_type() -> Result<Message> {
    let mut m = Message::text("props");
    m.set_property("bool_true", true)?;
    m.set_property("bool_false", false)?;
    m.set_property("byte", i8::MIN)?;
    m.set_property("short", i16::MAX)?;
    m.set_property("int", -123_456_i32)?;
    m.set_property("long", i64::MAX)?;
    m.set_property("float", 3.25_f32)?;
    m.set_property("double", -1.0e-300_f64)?;
    m.set_property("string", "ünïcödé ✓ 'q' \"dq\"")?;
    m.set_property("empty", "")?;
    Ok(m)
}

/// A property of every type arrives with the same type and value (§3.5.2, §3.5.4).
pub async fn every_property_type_round_trips_3_5_4(h: &dyn Harness) -> Result<()> {
    let sent = every_type()?;
    let got = round_trip(h, sent.clone()).await?;
    assert_eq!(
        got.properties(),
        sent.properties(),
        "the property set changed in transit"
    );
    assert_eq!(got.raw_property("byte"), Some(&Value::I8(i8::MIN)));
    assert_eq!(got.raw_property("short"), Some(&Value::I16(i16::MAX)));
    assert_eq!(got.raw_property("float"), Some(&Value::F32(3.25)));
    assert_eq!(got.property::<bool>("bool_true")?, Some(true));
    assert_eq!(got.property::<bool>("bool_false")?, Some(false));
    assert_eq!(got.property::<i8>("byte")?, Some(i8::MIN));
    assert_eq!(got.property::<i16>("short")?, Some(i16::MAX));
    assert_eq!(got.property::<i32>("int")?, Some(-123_456));
    assert_eq!(got.property::<i64>("long")?, Some(i64::MAX));
    assert_eq!(got.property::<f32>("float")?, Some(3.25));
    assert_eq!(got.property::<f64>("double")?, Some(-1.0e-300));
    assert_eq!(
        got.property::<String>("string")?.as_deref(),
        Some("ünïcödé ✓ 'q' \"dq\"")
    );
    assert_eq!(got.property::<String>("empty")?.as_deref(), Some(""));
    assert!(
        got.has_property("empty"),
        "an empty string is still a property"
    );
    Ok(())
}

/// Every conversion Table 3-2 allows works on a received message (§3.5.4).
pub async fn allowed_conversions_3_5_4(h: &dyn Harness) -> Result<()> {
    let got = round_trip(h, every_type()?).await?;
    assert_eq!(
        got.property::<String>("bool_true")?.as_deref(),
        Some("true")
    );
    assert_eq!(got.property::<i16>("byte")?, Some(-128));
    assert_eq!(got.property::<i32>("byte")?, Some(-128));
    assert_eq!(got.property::<i64>("byte")?, Some(-128));
    assert_eq!(got.property::<String>("byte")?.as_deref(), Some("-128"));
    assert_eq!(got.property::<i32>("short")?, Some(32_767));
    assert_eq!(got.property::<i64>("short")?, Some(32_767));
    assert_eq!(got.property::<String>("short")?.as_deref(), Some("32767"));
    assert_eq!(got.property::<i64>("int")?, Some(-123_456));
    assert_eq!(got.property::<String>("int")?.as_deref(), Some("-123456"));
    assert_eq!(
        got.property::<String>("long")?.as_deref(),
        Some("9223372036854775807")
    );
    assert_eq!(got.property::<f64>("float")?, Some(3.25));
    assert_eq!(got.property::<String>("float")?.as_deref(), Some("3.25"));
    let double = got.property::<String>("double")?.expect("double as string");
    assert_eq!(
        double.parse::<f64>().ok(),
        Some(-1.0e-300),
        "double as string {double:?} must read back as the same number"
    );
    Ok(())
}

/// A string property is read as any type by parsing it (§3.5.4).
pub async fn string_property_parses_to_any_type_3_5_4(h: &dyn Harness) -> Result<()> {
    let mut m = Message::new();
    m.set_property("small", "42")?;
    m.set_property("negative", "-7")?;
    m.set_property("big", "9000000000")?;
    m.set_property("real", "2.5")?;
    m.set_property("yes", "true")?;
    m.set_property("yes_upper", "TRUE")?;
    m.set_property("no", "false")?;
    let got = round_trip(h, m).await?;
    assert_eq!(got.property::<i8>("small")?, Some(42));
    assert_eq!(got.property::<i16>("small")?, Some(42));
    assert_eq!(got.property::<i32>("small")?, Some(42));
    assert_eq!(got.property::<i64>("small")?, Some(42));
    assert_eq!(got.property::<i8>("negative")?, Some(-7));
    assert_eq!(got.property::<i64>("big")?, Some(9_000_000_000));
    assert_eq!(got.property::<f32>("real")?, Some(2.5));
    assert_eq!(got.property::<f64>("real")?, Some(2.5));
    assert_eq!(got.property::<f64>("small")?, Some(42.0));
    assert_eq!(got.property::<bool>("yes")?, Some(true));
    assert_eq!(got.property::<bool>("yes_upper")?, Some(true));
    assert_eq!(got.property::<bool>("no")?, Some(false));
    Ok(())
}

/// A string that does not parse as the requested type is a format error (§3.5.4).
pub async fn bad_string_parse_is_format_error_3_5_4(h: &dyn Harness) -> Result<()> {
    let mut m = Message::new();
    m.set_property("word", "abc")?;
    m.set_property("too_big_for_byte", "300")?;
    m.set_property("too_big_for_int", "9000000000")?;
    m.set_property("fraction", "1.5")?;
    m.set_property("empty", "")?;
    let got = round_trip(h, m).await?;
    assert_format_error(got.property::<i32>("word"), "'abc' as int");
    assert_format_error(got.property::<i64>("word"), "'abc' as long");
    assert_format_error(got.property::<f64>("word"), "'abc' as double");
    assert_format_error(got.property::<i8>("too_big_for_byte"), "'300' as byte");
    assert_format_error(
        got.property::<i32>("too_big_for_int"),
        "'9000000000' as int",
    );
    assert_format_error(got.property::<i32>("fraction"), "'1.5' as int");
    assert_format_error(got.property::<i64>("empty"), "'' as long");
    assert_eq!(
        got.property::<String>("word")?.as_deref(),
        Some("abc"),
        "a failed read leaves the property intact"
    );
    Ok(())
}

/// Conversions Table 3-2 does not allow (narrowing, integer↔float, boolean↔number) are format
/// errors (§3.5.4).
pub async fn disallowed_conversions_are_format_errors_3_5_4(h: &dyn Harness) -> Result<()> {
    let got = round_trip(h, every_type()?).await?;
    assert_format_error(got.property::<i8>("bool_true"), "boolean as byte");
    assert_format_error(got.property::<i32>("bool_true"), "boolean as int");
    assert_format_error(got.property::<f64>("bool_true"), "boolean as double");
    assert_format_error(got.property::<bool>("byte"), "byte as boolean");
    assert_format_error(got.property::<f32>("byte"), "byte as float");
    assert_format_error(got.property::<i8>("short"), "short as byte");
    assert_format_error(got.property::<i16>("int"), "int as short");
    assert_format_error(got.property::<f64>("int"), "int as double");
    assert_format_error(got.property::<i32>("long"), "long as int");
    assert_format_error(got.property::<f64>("long"), "long as double");
    assert_format_error(got.property::<i32>("float"), "float as int");
    assert_format_error(got.property::<i64>("float"), "float as long");
    assert_format_error(got.property::<f32>("double"), "double as float");
    assert_format_error(got.property::<i64>("double"), "double as long");
    assert_format_error(got.property::<bool>("double"), "double as boolean");
    Ok(())
}

/// An absent property reads as `None` for every type, on a sent and a received message
/// (§3.5.8).
pub async fn absent_property_is_none_3_5_8(h: &dyn Harness) -> Result<()> {
    let mut m = Message::new();
    m.set_property("present", 1_i32)?;
    let got = round_trip(h, m).await?;
    assert_eq!(got.property::<bool>("absent")?, None);
    assert_eq!(got.property::<i8>("absent")?, None);
    assert_eq!(got.property::<i32>("absent")?, None);
    assert_eq!(got.property::<i64>("absent")?, None);
    assert_eq!(got.property::<f64>("absent")?, None);
    assert_eq!(got.property::<String>("absent")?, None);
    assert!(!got.has_property("absent"));
    assert_eq!(
        got.property::<i32>("Present")?,
        None,
        "names are case-sensitive"
    );
    assert_eq!(got.property::<i32>("present")?, Some(1));
    Ok(())
}

/// Property names are case-sensitive; setting a name again replaces its value, also with
/// another type (§3.5.1, §3.5.3).
pub async fn names_case_sensitive_and_last_value_wins_3_5_1(h: &dyn Harness) -> Result<()> {
    let mut m = Message::new();
    m.set_property("color", "red")?;
    m.set_property("Color", "blue")?;
    m.set_property("COLOR", 3_i32)?;
    m.set_property("size", 1_i32)?;
    m.set_property("size", "large")?;
    let got = round_trip(h, m).await?;
    assert_eq!(got.property::<String>("color")?.as_deref(), Some("red"));
    assert_eq!(got.property::<String>("Color")?.as_deref(), Some("blue"));
    assert_eq!(got.property::<i32>("COLOR")?, Some(3));
    assert_eq!(got.raw_property("size"), Some(&Value::from("large")));
    assert_eq!(got.properties().len(), 4);
    Ok(())
}

/// Invalid names are refused: empty, not an identifier, a selector keyword (any case), or the
/// reserved `JMS` prefix; char and bytes values are not property types (§3.5.1, §3.5.5).
pub async fn invalid_property_names_rejected_3_5_1(h: &dyn Harness) -> Result<()> {
    let mut m = Message::text("x");
    let bad_names = [
        "",
        "1abc",
        "a-b",
        "a b",
        "a.b",
        "'quoted'",
        "AND",
        "or",
        "Not",
        "null",
        "TRUE",
        "false",
        "between",
        "LIKE",
        "in",
        "Is",
        "escape",
        "JMSCustom",
        "JMSPriority",
        "JMSXDeliveryCount",
    ];
    for name in bad_names {
        match m.set_property(name, 1_i32) {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("property name {name:?}: expected InvalidArgument, got {other:?}"),
        }
    }
    for good in ["_x", "$y", "a1", "ünï", "Andy", "isbn", "JMX", "jmsLower"] {
        m.set_property(good, 1_i32)
            .unwrap_or_else(|e| panic!("property name {good:?} must be accepted: {e:?}"));
    }
    assert_format_error(m.set_property("c", 'c'), "a char property");
    assert_format_error(m.set_property("b", vec![1_u8]), "a bytes property");
    let got = round_trip(h, m).await?;
    let names: Vec<&str> = got.properties().keys().map(String::as_str).collect();
    let mut expected = vec!["_x", "$y", "a1", "ünï", "Andy", "isbn", "JMX", "jmsLower"];
    expected.sort_unstable();
    assert_eq!(names, expected, "only the accepted names travel");
    Ok(())
}

/// The `JMSXGroupID` and `JMSXGroupSeq` properties may be set by the client and arrive
/// (§3.5.9).
pub async fn jmsx_group_properties_allowed_3_5_9(h: &dyn Harness) -> Result<()> {
    let mut m = Message::text("grouped");
    m.set_property("JMSXGroupID", "group-A")?;
    m.set_property("JMSXGroupSeq", 3_i32)?;
    let got = round_trip(h, m).await?;
    assert_eq!(
        got.property::<String>("JMSXGroupID")?.as_deref(),
        Some("group-A")
    );
    assert_eq!(got.property::<i32>("JMSXGroupSeq")?, Some(3));
    Ok(())
}

/// `JMSXDeliveryCount` is readable as an int property (with its conversions) on a received
/// message and is 1 on the first delivery (§3.5.9).
pub async fn jmsx_delivery_count_is_a_property_3_5_9(h: &dyn Harness) -> Result<()> {
    let got = round_trip(h, Message::text("count me")).await?;
    assert_eq!(got.property::<i32>("JMSXDeliveryCount")?, Some(1));
    assert_eq!(got.property::<i64>("JMSXDeliveryCount")?, Some(1));
    assert_eq!(
        got.property::<String>("JMSXDeliveryCount")?.as_deref(),
        Some("1")
    );
    assert_format_error(
        got.property::<i16>("JMSXDeliveryCount"),
        "JMSXDeliveryCount (an int) as short",
    );
    assert_eq!(got.delivery_count(), 1);
    Ok(())
}

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! properties_cases {
    ($make:expr) => {
        $crate::cases!(
            $make,
            properties,
            [
                every_property_type_round_trips_3_5_4,
                allowed_conversions_3_5_4,
                string_property_parses_to_any_type_3_5_4,
                bad_string_parse_is_format_error_3_5_4,
                disallowed_conversions_are_format_errors_3_5_4,
                absent_property_is_none_3_5_8,
                names_case_sensitive_and_last_value_wins_3_5_1,
                invalid_property_names_rejected_3_5_1,
                jmsx_group_properties_allowed_3_5_9,
                jmsx_delivery_count_is_a_property_3_5_9,
            ]
        );
    };
}
