//! Failed client authentications, limited per source address and in all
//! (RFC 6749 §2.3, §10.10; STANDARDS rule 11). Each failure that cost an
//! argon2id verification is counted in a one-minute window; once an address,
//! or the whole server, is over its limit, secrets are not verified any more
//! until the window ends. A secret whose verification is cached is checked
//! before these limits, so a client that authenticated recently is never
//! refused because of someone else's failures.
//!
//! Counted in memory, and, when Redis is configured, also in Redis (per
//! minute, under the deployment's key prefix; a check adds this minute's count
//! to the last one's, so a window never resets just after a burst), so that
//! all instances enforce one budget: an address cannot multiply its guesses by
//! the number of instances. If Redis does not answer within its timeout, each
//! instance's own counts decide.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

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
    shared: Option<Shared>,
}

/// The counts shared through Redis.
struct Shared {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl Shared {
    /// The keys of a minute (`ago` minutes back): the address's count and the total.
    fn keys(&self, source: Option<IpAddr>, ago: i64) -> (String, String) {
        let minute = crate::clock::now().div_euclid(60) - ago;
        let ip = source.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into());
        (
            format!("{}authfail:{minute}:ip:{ip}", self.prefix),
            format!("{}authfail:{minute}:all", self.prefix),
        )
    }

    async fn query<T: redis::FromRedisValue>(&self, pipe: redis::Pipeline) -> Option<T> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, pipe.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis: failed-authentication counts unavailable");
                None
            }
            Err(_) => None,
        }
    }
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
            shared: None,
        }
    }

    /// Also counts in Redis at `url`, under `prefix` (no connection is made yet).
    pub fn shared_through_redis(mut self, url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid redis_url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("cannot set up redis: {e}"))?;
        self.shared = Some(Shared {
            conn,
            prefix: prefix.to_owned(),
            timeout,
        });
        Ok(self)
    }

    /// [`Self::check`], with the counts all instances share when Redis answers.
    pub async fn check_shared(&self, source: Option<IpAddr>) -> Result<(), Limited> {
        self.check(source)?;
        let Some(shared) = &self.shared else { return Ok(()) };
        let ((ip_now, all_now), (ip_before, all_before)) = (shared.keys(source, 0), shared.keys(source, 1));
        let mut pipe = redis::pipe();
        pipe.get(&ip_now).get(&ip_before).get(&all_now).get(&all_before);
        type Counts = (Option<u32>, Option<u32>, Option<u32>, Option<u32>);
        let Some((a, b, c, d)) = shared.query::<Counts>(pipe).await else {
            return Ok(());
        };
        let sum = |x: Option<u32>, y: Option<u32>| x.unwrap_or(0).saturating_add(y.unwrap_or(0));
        if source.is_some() && sum(a, b) >= self.per_source {
            return Err(Limited::Source);
        }
        if sum(c, d) >= self.global {
            return Err(Limited::Global);
        }
        Ok(())
    }

    /// [`Self::record_failure`], also counted in Redis when it answers.
    pub async fn record_failure_shared(&self, source: Option<IpAddr>) {
        self.record_failure(source);
        let Some(shared) = &self.shared else { return };
        let (ip_key, all_key) = shared.keys(source, 0);
        let mut pipe = redis::pipe();
        pipe.incr(&ip_key, 1)
            .ignore()
            .expire(&ip_key, 120)
            .ignore()
            .incr(&all_key, 1)
            .ignore()
            .expire(&all_key, 120)
            .ignore();
        let _ = shared.query::<()>(pipe).await;
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
