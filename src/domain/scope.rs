//! RFC 6749 §3.3 scope: a set of space-delimited, case-sensitive tokens.

use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a `scope` parameter. Each token is `1*( %x21 / %x23-5B / %x5D-7E )`;
    /// a single space separates tokens, so doubled or edge spaces are refused.
    pub fn parse(s: &str) -> Result<Scope, String> {
        let mut set = BTreeSet::new();
        if s.is_empty() {
            return Ok(Scope(set));
        }
        for token in s.split(' ') {
            if token.is_empty() {
                return Err("scope tokens are separated by single spaces".into());
            }
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(format!(
                    "scope token '{token}' has a character RFC 6749 section 3.3 does not allow"
                ));
            }
            if token.len() > 128 {
                return Err("a scope token is longer than 128 characters".into());
            }
            set.insert(token.to_owned());
        }
        if set.len() > 64 {
            return Err("more than 64 scope tokens".into());
        }
        Ok(Scope(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parses_and_prints_sorted_unique_tokens() {
        let s = Scope::parse("write read read").expect("valid");
        assert_eq!(s.to_string(), "read write");
    }

    #[test]
    fn scope_refuses_bad_separators_and_characters() {
        for bad in [" read", "read ", "a  b", "a\"b", "a\\b", "tab\there", "é"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn scope_subset_and_intersection() {
        let all = Scope::parse("a b c").expect("valid");
        let some = Scope::parse("a c").expect("valid");
        assert!(some.is_subset(&all));
        assert!(!all.is_subset(&some));
        assert_eq!(all.intersection(&Scope::parse("c d").expect("valid")).to_string(), "c");
    }
}
