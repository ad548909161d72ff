//! Failed client authentications, limited per source address and in all
//! (RFC 6749 §2.3, §10.10; STANDARDS rule 11). Each failure that cost an
//! argon2id verification is counted in a one-minute window; once an address,
//! or the whole server, is over its limit, secrets are not verified any more
//! until the window ends. A secret whose verification is cached is checked
//! before these limits, so a client that authenticated recently is never
//! refused because of someone else's failures.
//!
//! In memory, per instance: with several instances, each enforces its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked in one window at most; beyond it only the global limit applies.
const MAX_SOURCES: usize = 100_000;

/// Why no more secrets are verified for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// This address failed too often.
    Source,
    /// The server as a whole sees too many failures.
    Global,
}

struct Window {
    started: Instant,
    per_source: HashMap<IpAddr, u32>,
    total: u32,
}

pub struct FailureLimits {
    per_source: u32,
    global: u32,
    window: Mutex<Window>,
}

impl FailureLimits {
    pub fn new(per_source: u32, global: u32) -> FailureLimits {
        FailureLimits {
            per_source: per_source.max(1),
            global: global.max(1),
            window: Mutex::new(Window {
                started: Instant::now(),
                per_source: HashMap::new(),
                total: 0,
            }),
        }
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Window> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.started.elapsed() >= WINDOW {
            w.started = Instant::now();
            w.per_source.clear();
            w.total = 0;
        }
        w
    }

    /// May a secret from `source` be verified now?
    pub fn check(&self, source: Option<IpAddr>) -> Result<(), Limited> {
        let w = self.current();
        if source.is_some_and(|s| w.per_source.get(&s).is_some_and(|n| *n >= self.per_source)) {
            return Err(Limited::Source);
        }
        if w.total >= self.global {
            return Err(Limited::Global);
        }
        Ok(())
    }

    /// Counts one failed authentication from `source`.
    pub fn record_failure(&self, source: Option<IpAddr>) {
        let mut w = self.current();
        w.total = w.total.saturating_add(1);
        if let Some(s) = source {
            if w.per_source.len() < MAX_SOURCES || w.per_source.contains_key(&s) {
                let n = w.per_source.entry(s).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_limit_is_refused_and_others_are_not_until_the_global_limit() {
        let limits = FailureLimits::new(2, 5);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().expect("ip"),
            "192.0.2.2".parse().expect("ip"),
            "192.0.2.3".parse().expect("ip"),
        );
        limits.record_failure(Some(a));
        assert_eq!(limits.check(Some(a)), Ok(()));
        limits.record_failure(Some(a));
        assert_eq!(limits.check(Some(a)), Err(Limited::Source));
        assert_eq!(limits.check(Some(b)), Ok(()));
        limits.record_failure(Some(b));
        limits.record_failure(Some(c));
        limits.record_failure(None);
        assert_eq!(limits.check(Some(b)), Err(Limited::Global));
        assert_eq!(limits.check(None), Err(Limited::Global));
    }
}
