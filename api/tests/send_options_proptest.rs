//! Every duration a producer accepts saturates: a time to live or delivery delay too large to
//! represent means "never" (the far future), never a wrap into the past, and no duration
//! panics.

use courier_api::spi::{self, now_millis};
use courier_api::{Destination, Message, SendOptions};
use proptest::prelude::*;
use std::time::Duration;

fn stamped(ttl: Duration, delay: Duration) -> (u64, Message) {
    let options = SendOptions {
        time_to_live: ttl,
        delivery_delay: delay,
        ..SendOptions::default()
    };
    let mut m = Message::text("x");
    let now = spi::stamp(&mut m, &Destination::queue("q"), &options, None).expect("valid options");
    (now, m)
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..10_000_000_000_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..100_000_000).prop_map(Duration::from_nanos),
        Just(Duration::MAX),
        Just(Duration::from_secs(18_446_744_073_709_552)),
    ]
}

#[test]
fn a_huge_time_to_live_never_expires() {
    let before = now_millis();
    let (_, m) = stamped(Duration::from_secs(18_446_744_073_709_552), Duration::ZERO);
    assert!(
        m.expiration() > before + 1_000_000_000,
        "expiration {} must be far in the future",
        m.expiration()
    );
    let (_, m) = stamped(Duration::MAX, Duration::MAX);
    assert_eq!(m.expiration(), u64::MAX);
    assert_eq!(m.delivery_time(), u64::MAX);
}

#[test]
fn a_sub_millisecond_time_to_live_still_expires_after_the_send() {
    let (now, m) = stamped(Duration::from_nanos(1), Duration::ZERO);
    assert!(m.expiration() > now, "a TTL > 0 is never 'already expired'");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn durations_saturate(ttl in duration(), delay in duration()) {
        let (now, m) = stamped(ttl, delay);
        if ttl.is_zero() {
            prop_assert_eq!(m.expiration(), 0);
        } else {
            prop_assert!(m.expiration() > now);
            prop_assert!(m.expiration() as u128 >= (now as u128 + ttl.as_millis()).min(u64::MAX as u128));
        }
        prop_assert!(m.delivery_time() >= now);
        prop_assert!(m.delivery_time() as u128 >= (now as u128 + delay.as_millis()).min(u64::MAX as u128));
    }

    #[test]
    fn expiration_is_monotone_in_the_duration(a in duration(), b in duration(), now in any::<u64>()) {
        let (short, long) = if a <= b { (a, b) } else { (b, a) };
        let at = |ttl: Duration| spi::expiration_at(ttl, now);
        let due = |delay: Duration| spi::delivery_time_at(delay, now);
        if !short.is_zero() {
            prop_assert!(at(short) <= at(long));
            prop_assert!(at(short) >= now);
        }
        prop_assert!(due(short) <= due(long));
        prop_assert!(due(short) >= now);
    }
}
