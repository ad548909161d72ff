//! The delegation chain (RFC 8693 §4.1): `act` nests, the outermost member is
//! the current actor, and only it counts for access decisions. Each exchange by
//! a new agent adds one level and can only narrow.

use serde_json::{json, Value};

/// Wraps `previous` (the subject token's `act`, if any) under a new current actor.
pub fn nest(agent: &str, previous: Option<&Value>) -> Value {
    match previous {
        Some(prev) => json!({ "sub": agent, "act": prev }),
        None => json!({ "sub": agent }),
    }
}

/// The agents of an `act` claim, current actor first.
pub fn members(act: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = act;
    while let Some(a) = cur {
        match a.get("sub").and_then(Value::as_str) {
            Some(s) => out.push(s.to_owned()),
            None => break,
        }
        cur = a.get("act");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_puts_the_new_actor_outermost() {
        let first = nest("planner", None);
        let second = nest("booker", Some(&first));
        assert_eq!(second, json!({ "sub": "booker", "act": { "sub": "planner" } }));
        assert_eq!(members(Some(&second)), vec!["booker", "planner"]);
        assert!(members(None).is_empty());
    }
}
