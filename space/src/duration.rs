//! Durations users hand the space — leases, waits, transaction timeouts — and the arithmetic
//! on them: anything from a century up is "for ever", and nothing overflows an `Instant` or
//! a `SystemTime`, whatever the duration (`Duration::MAX` is [`crate::FOREVER`]).

use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Durations at or beyond a century are for ever: leases never expire, waits never end.
pub(crate) const FOREVER_FROM: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Whether `duration` means for ever.
pub(crate) fn is_forever(duration: Duration) -> bool {
    duration >= FOREVER_FROM
}

/// The instant `timeout` from now; `None` for a timeout that never ends.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    if is_forever(timeout) {
        return None;
    }
    Instant::now().checked_add(timeout)
}

/// When an entry written now with time to live `ttl` expires; `None` for zero (never).
pub(crate) fn expiration(ttl: Duration) -> Option<SystemTime> {
    if ttl.is_zero() {
        return None;
    }
    SystemTime::now().checked_add(ttl)
}

/// What is left of the lease of a message expiring at `expiration_ms` (ms since the
/// epoch, 0 for never): zero for never (or a century and more), `None` when it has expired.
pub(crate) fn time_left(expiration_ms: u64) -> Option<Duration> {
    if expiration_ms == 0 {
        return Some(Duration::ZERO);
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let at = Duration::from_millis(expiration_ms);
    let left = at.checked_sub(now).filter(|left| !left.is_zero())?;
    Some(if is_forever(left) {
        Duration::ZERO
    } else {
        left.max(Duration::from_millis(1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (any::<u64>(), 0..1_000_000_000_u32).prop_map(|(s, n)| Duration::new(s, n)),
            (0..10_000_000_000_u64).prop_map(Duration::from_millis),
            Just(Duration::MAX),
            Just(FOREVER_FROM),
            Just(FOREVER_FROM - Duration::from_nanos(1)),
            Just(Duration::ZERO),
        ]
    }

    #[test]
    fn time_left_of_a_lease() {
        assert_eq!(time_left(0), Some(Duration::ZERO));
        assert_eq!(time_left(1), None, "long expired");
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let ms = in_a_minute
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = time_left(ms).unwrap();
        assert!(left > Duration::from_secs(50) && left <= Duration::from_secs(60));
        assert_eq!(time_left(u64::MAX), Some(Duration::ZERO), "for ever");
    }

    proptest! {
        #[test]
        fn deadlines_never_overflow_and_huge_is_forever(timeout in any_duration()) {
            let before = Instant::now();
            let deadline = deadline_after(timeout);
            if is_forever(timeout) {
                prop_assert!(deadline.is_none());
            } else {
                let deadline = deadline.expect("a finite timeout has a deadline");
                prop_assert!(deadline >= before + timeout);
            }
        }

        #[test]
        fn leases_and_waits_never_overflow_and_huge_is_forever(
            duration in any_duration(),
            limit in any_duration(),
        ) {
            use crate::lane::Wait;
            match crate::space::lease_ttl(duration) {
                Err(_) => prop_assert!(duration.is_zero()),
                Ok(ttl) if is_forever(duration) => prop_assert_eq!(ttl, Duration::ZERO),
                Ok(ttl) => {
                    prop_assert!(ttl >= Duration::from_millis(1));
                    prop_assert!(!is_forever(ttl));
                    prop_assert!(expiration(ttl).is_some());
                }
            }
            let wait = Wait::from_timeout(duration);
            prop_assert_eq!(wait == Wait::Forever, is_forever(duration));
            match wait.at_most(limit) {
                Wait::For(d) => prop_assert!(d <= limit && !d.is_zero()),
                Wait::No => prop_assert!(duration.is_zero() || limit.is_zero()),
                Wait::Forever => prop_assert!(false, "a limit ends every wait"),
            }
        }

        #[test]
        fn expirations_never_overflow(ttl in any_duration()) {
            let at = expiration(ttl);
            if ttl.is_zero() {
                prop_assert!(at.is_none());
            } else if !is_forever(ttl) {
                prop_assert!(at.is_some());
            }
        }
    }
}
