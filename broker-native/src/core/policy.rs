//! Choosing a destination's policy: name patterns with `*` and `#` words, most specific
//! match wins (see [`crate::PolicyRule`]).

use crate::config::{BrokerConfig, DestinationPolicy};

/// How specific a matching pattern is; greater wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Specificity {
    exact: bool,
    literal_words: usize,
    fewer_hashes: std::cmp::Reverse<usize>,
}

/// The specificity of `pattern` if it matches `name`.
fn matches(pattern: &str, name: &str) -> Option<Specificity> {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let name: Vec<&str> = name.split('.').collect();
    words_specificity(&pattern, &name)
}

/// [`matches`] on names already split into words, for callers that match one name against
/// many patterns (access rules).
pub(crate) fn words_specificity<P: AsRef<str>>(
    pattern: &[P],
    name: &[&str],
) -> Option<Specificity> {
    words_match(pattern, name).then(|| {
        let hashes = pattern.iter().filter(|w| w.as_ref() == "#").count();
        let stars = pattern.iter().filter(|w| w.as_ref() == "*").count();
        Specificity {
            exact: hashes == 0 && stars == 0,
            literal_words: pattern.len() - hashes - stars,
            fewer_hashes: std::cmp::Reverse(hashes),
        }
    })
}

/// Word-by-word match; `#` matches zero or more words. Iterative, with one backtrack point
/// per `#`, so long names and many `#` cost at most pattern × name steps, without recursion.
fn words_match<P: AsRef<str>>(pattern: &[P], name: &[&str]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p).map(AsRef::as_ref) {
            Some("#") => {
                backtrack = Some((p, n));
                p += 1;
            }
            Some(w) if w == "*" || w == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match backtrack {
                // Let the last `#` swallow one more word.
                Some((bp, bn)) => {
                    backtrack = Some((bp, bn + 1));
                    p = bp + 1;
                    n = bn + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|w| w.as_ref() == "#")
}

/// The policy of the destination named `name`.
pub(crate) fn policy_for<'a>(config: &'a BrokerConfig, name: &str) -> &'a DestinationPolicy {
    let mut best: Option<(Specificity, &DestinationPolicy)> = None;
    for rule in &config.destination_policies {
        if let Some(spec) = matches(&rule.pattern, name) {
            if best.as_ref().is_none_or(|(b, _)| spec > *b) {
                best = Some((spec, &rule.policy));
            }
        }
    }
    best.map_or(&config.default_policy, |(_, policy)| policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeadLetter, PolicyRule, WhenFull};

    #[test]
    fn wildcards() {
        assert!(matches("a.b", "a.b").is_some());
        assert!(matches("a.b", "a.c").is_none());
        assert!(matches("a.*", "a.b").is_some());
        assert!(matches("a.*", "a").is_none());
        assert!(matches("a.*", "a.b.c").is_none());
        assert!(matches("a.#", "a").is_some());
        assert!(matches("a.#", "a.b.c").is_some());
        assert!(matches("#", "anything.at.all").is_some());
        assert!(matches("a.#.z", "a.z").is_some());
        assert!(matches("a.#.z", "a.b.c.z").is_some());
        assert!(matches("a.#.z", "a.b.c.y").is_none());
        assert!(matches("#.x.#.y", "q.x.r.x.s.y").is_some());
        assert!(matches("space.#", "spaces.x").is_none());
    }

    #[test]
    fn many_hashes_on_a_long_name_stay_cheap() {
        let pattern = vec!["#"; 2000].join(".") + ".z";
        let name = vec!["a"; 2000].join(".");
        assert!(matches(&pattern, &name).is_none());
    }

    #[test]
    fn most_specific_wins() {
        let policy = |depth| DestinationPolicy {
            max_depth: Some(depth),
            ..DestinationPolicy::default()
        };
        let config = BrokerConfig {
            destination_policies: vec![
                PolicyRule::new("#", policy(1)),
                PolicyRule::new("orders.#", policy(2)),
                PolicyRule::new("orders.*", policy(3)),
                PolicyRule::new("orders.eu", policy(4)),
                PolicyRule::new("orders.*.paris", policy(5)),
            ],
            ..BrokerConfig::default()
        };
        let depth = |name| policy_for(&config, name).max_depth;
        assert_eq!(depth("other"), Some(1));
        assert_eq!(depth("orders"), Some(2));
        assert_eq!(depth("orders.us"), Some(3));
        assert_eq!(depth("orders.eu"), Some(4));
        assert_eq!(depth("orders.eu.paris"), Some(5));
        assert_eq!(depth("orders.eu.rome"), Some(2));
    }

    #[test]
    fn default_config_keeps_space_entries_out_of_the_dlq() {
        let config = BrokerConfig::default();
        let space = policy_for(&config, "space.jobs.app::Task");
        assert_eq!(space.dead_letter, DeadLetter::Never);
        assert_eq!(space.when_full, WhenFull::Block);
        assert_eq!(
            policy_for(&config, "orders").dead_letter,
            DeadLetter::Broker
        );
    }
}
