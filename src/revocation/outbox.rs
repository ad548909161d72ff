//! The revocation log as an outbox (STANDARDS rule 9): Redis is filled from
//! the database's log by any instance, and records in `{prefix}rev:applied` the
//! highest log number up to which it holds every mark. An instance trusts Redis
//! only as far as that number reaches the database's head.
//!
//! - Every instance reads the head every [`HEAD_POLL`] (one indexed row) and
//!   trusts a head read no older than [`HEAD_MAX_AGE`]; Redis's `applied` comes
//!   with each check, in the same round trip as the marks.
//! - A drainer writes the marks of log range (a, b] and raises `applied` to b
//!   in ONE script, only if `applied` was at least a: two drainers at once, or a
//!   Redis restarted (or restored from an older snapshot, or failed over to a
//!   replica that missed writes) in between, can never make `applied` vouch for
//!   a mark that is not there.
//! - A mark Redis refuses does not stop the others: the script writes every
//!   mark it is given and raises `applied` only to just before the first refusal;
//!   what failed stays in the log, and the next drain writes it again.
//! - Evictions (a `volatile-*` or `allkeys-*` policy) would drop marks under an
//!   `applied` that still vouches for them: every instance reads `evicted_keys`
//!   with `applied` every [`HEAD_POLL`], and a growth resets `applied`, so that
//!   every instance asks the database while Redis is refilled.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::RedisRevocations;
use crate::storage::revocation_log::{self, Entry, Logged};
use crate::tokens::CLOCK_SKEW_SECS;

/// How often each instance reads the log's head from the database.
pub const HEAD_POLL: Duration = Duration::from_millis(250);
/// A head read older than this is not trusted: the database answers instead.
/// This bounds how long another instance may report a revoked token active.
pub const HEAD_MAX_AGE: Duration = Duration::from_millis(750);
/// Log rows per script call.
const CHUNK: i64 = 1000;

/// What this instance knows of the log and of Redis, shared by its requests
/// and its background task.
pub(super) struct SyncState {
    started: Instant,
    /// The highest log number known to be committed: the database's head as
    /// last read, or what this instance committed itself since (so that, here,
    /// a revocation bites the moment it is committed).
    known_head: AtomicI64,
    /// When `known_head` was last read from the database (ms since `started`;
    /// `u64::MAX`: never).
    head_read_ms: AtomicU64,
    /// Redis's `evicted_keys` as last read (-1: unknown).
    evicted_keys: AtomicI64,
    /// Evictions were seen and `applied` has not been reset yet.
    evicted: AtomicBool,
    draining: AtomicBool,
}

impl SyncState {
    pub(super) fn new() -> SyncState {
        SyncState {
            started: Instant::now(),
            known_head: AtomicI64::new(0),
            head_read_ms: AtomicU64::new(u64::MAX),
            evicted_keys: AtomicI64::new(-1),
            evicted: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// True if Redis, having applied the log up to `applied`, holds every
    /// revocation this instance must honour.
    pub(super) fn trusts(&self, applied: i64) -> bool {
        let read = self.head_read_ms.load(Ordering::Acquire);
        let fresh = read != u64::MAX && self.now_ms().saturating_sub(read) <= HEAD_MAX_AGE.as_millis() as u64;
        fresh && !self.evicted.load(Ordering::Acquire) && applied >= self.known_head.load(Ordering::Acquire)
    }

    /// Called after this instance committed log entries up to `seq`.
    pub(super) fn committed(&self, seq: i64) {
        self.known_head.fetch_max(seq, Ordering::AcqRel);
    }
}

/// Writes marks and raises `applied` (KEYS[1]) from ARGV[1] to ARGV[2], only if
/// `applied` is at least ARGV[1] (a missing `applied` counts as 0, and is set). KEYS[2..]: the marks; per mark three ARGVs:
/// its log number, its kind ('t' token or grant, 'a' a kill switch of an agent,
/// user or client), its value (a TTL in ms, 0 for a mark already expired; or
/// "generation:time" for a kill switch,
/// written only over an older generation). Returns {applied, refused}.
const APPLY: &str = r#"
local raw = redis.call('GET', KEYS[1])
local cur = tonumber(raw or '0') or 0
local upto = tonumber(ARGV[2])
local refused = 0
local function failed(r) return type(r) == 'table' and r.err ~= nil end
for i = 2, #KEYS do
  local base = 3 + (i - 2) * 3
  local seq, kind, val = tonumber(ARGV[base]), ARGV[base + 1], ARGV[base + 2]
  local ok = true
  if kind == 'a' then
    local newgen = tonumber(string.match(val, '^(%d+):'))
    local old = redis.pcall('GET', KEYS[i])
    if failed(old) then
      ok = false
    else
      local oldgen = -1
      if old then oldgen = tonumber(string.match(old, '^(%d+):')) or 0 end
      if newgen and newgen > oldgen then ok = not failed(redis.pcall('SET', KEYS[i], val)) end
    end
  elseif tonumber(val) > 0 then
    ok = not failed(redis.pcall('SET', KEYS[i], '1', 'PX', val))
  end
  if not ok then
    refused = refused + 1
    if seq - 1 < upto then upto = seq - 1 end
  end
end
if cur >= tonumber(ARGV[1]) and (upto > cur or not raw) then
  redis.call('SET', KEYS[1], upto)
  cur = upto
end
return {cur, refused}
"#;

impl RedisRevocations {
    /// After a durable write: from now on this instance does not trust Redis
    /// below `logged`, and it tries once to write the marks itself (one round
    /// trip). If that fails, the log keeps them for the next drain, here or
    /// on any other instance.
    pub(super) async fn after_commit(&self, logged: &[Entry]) {
        let (Some(first), Some(last)) = (logged.first(), logged.last()) else {
            return;
        };
        self.sync.committed(last.seq);
        if let Err(e) = self.apply(first.seq - 1, last.seq, logged, self.timeout).await {
            tracing::warn!(error = %e, seq = last.seq, "revocation committed; Redis will get it from the log");
        }
    }

    /// Writes the marks of `entries` (the log between `from` and `to`) and
    /// raises `applied` to `to` if it was at least `from`. Returns the `applied`
    /// Redis reports after the call, and how many marks it refused.
    async fn apply(&self, from: i64, to: i64, entries: &[Entry], timeout: Duration) -> Result<(i64, i64), String> {
        let now = crate::clock::now();
        let mut pipe = redis::pipe();
        let cmd = pipe
            .cmd("EVAL")
            .arg(APPLY)
            .arg(entries.len() + 1)
            .arg(self.applied_key());
        for e in entries {
            cmd.arg(self.logged_key(&e.logged));
        }
        cmd.arg(from).arg(to);
        for e in entries {
            cmd.arg(e.seq);
            match &e.logged {
                Logged::Token { expires_at, .. } | Logged::Grant { expires_at, .. } => {
                    // A mark lives as long as the tokens it covers, and the clock skew.
                    let ttl_secs = expires_at.saturating_add(CLOCK_SKEW_SECS).saturating_sub(now);
                    cmd.arg("t").arg(ttl_secs.clamp(0, i64::MAX / 1000) * 1000);
                }
                Logged::Agent { kill_switch: k, .. } | Logged::Switch { kill_switch: k, .. } => {
                    cmd.arg("a").arg(format!("{}:{}", k.generation, k.before));
                }
            }
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(timeout, pipe.query_async::<((i64, i64),)>(&mut conn)).await {
            Ok(Ok((v,))) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("redis timed out".into()),
        }
    }

    /// Brings Redis up to the log's head: reads `applied`, then the log after
    /// it, chunk by chunk. Marks Redis refuses are retried by the next drain;
    /// the chunks after them are still written. Returns the `applied` reached.
    pub async fn drain(&self) -> Result<i64, String> {
        let mut pipe = redis::pipe();
        pipe.get(self.applied_key());
        let (applied,) = self.query::<(Option<i64>,)>(pipe).await?;
        let mut from = applied.unwrap_or(0);
        let mut reached = from;
        let mut refused = 0;
        loop {
            let (head, entries) = self
                .db
                .run(move |c| revocation_log::after(c, from, CHUNK))
                .await
                .map_err(|e| e.to_string())?;
            // A missing `applied` (an empty Redis) is set even when the log is
            // empty: until it is, instances ask the database.
            if head <= from && applied.is_some() {
                break;
            }
            let to = match entries.last() {
                Some(last) if entries.len() as i64 == CHUNK => last.seq,
                _ => head,
            };
            let (now_applied, n) = self.apply(from, to, &entries, self.timeout * 4).await?;
            if n == 0 && refused == 0 && now_applied < to {
                // `applied` was below `from`: Redis lost marks since it was read
                // (restarted, restored). Start again from what it has.
                return Err(format!("redis's applied went back to {now_applied} during the drain"));
            }
            reached = now_applied;
            refused += n;
            if to >= head {
                break;
            }
            from = to;
        }
        if refused > 0 {
            return Err(format!("redis refused {refused} mark(s); they stay in the log"));
        }
        Ok(reached)
    }

    /// One step of the background task every instance runs (every
    /// [`HEAD_POLL`]): reads the log's head (one query), and Redis's `applied`
    /// and eviction counter (one round trip); starts a drain when Redis is
    /// behind or unreachable (one at a time).
    pub async fn sync_tick(&self) {
        let started = self.sync.now_ms();
        match self.db.run(revocation_log::head).await {
            Ok(head) => {
                self.sync.known_head.fetch_max(head, Ordering::AcqRel);
                self.sync.head_read_ms.store(started, Ordering::Release);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the revocation log's head; checks use the database"),
        }
        let mut pipe = redis::pipe();
        pipe.get(self.applied_key()).cmd("INFO").arg("stats");
        let known = self.sync.known_head.load(Ordering::Acquire);
        if let Ok((applied, info)) = self.query::<(Option<i64>, String)>(pipe).await {
            if !self.evictions_seen(&info).await && applied.is_some_and(|a| a >= known) {
                return;
            }
        }
        if !self.sync.draining.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.drain().await {
                    tracing::warn!(error = %e, "redis is behind the revocation log; the database answers until it is not");
                }
                this.sync.draining.store(false, Ordering::Release);
            });
        }
    }

    /// A growing `evicted_keys` (in `info`, INFO stats) means marks may be gone
    /// under `applied`: it is reset (until then the `evicted` flag keeps this
    /// instance on the database), so that every instance asks the database
    /// while Redis is refilled. True while a reset is pending.
    async fn evictions_seen(&self, info: &str) -> bool {
        let Some(now) = info
            .lines()
            .find_map(|l| l.strip_prefix("evicted_keys:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
        else {
            return self.sync.evicted.load(Ordering::Acquire);
        };
        let before = self.sync.evicted_keys.swap(now, Ordering::AcqRel);
        if before >= 0 && now > before {
            tracing::warn!(
                evicted = now - before,
                "redis evicted keys; revocation marks may be lost, refilling"
            );
            self.sync.evicted.store(true, Ordering::Release);
        }
        if self.sync.evicted.load(Ordering::Acquire) {
            let mut pipe = redis::pipe();
            pipe.del(self.applied_key()).ignore();
            if self.query::<()>(pipe).await.is_ok() {
                self.sync.evicted.store(false, Ordering::Release);
            }
            return true;
        }
        false
    }

    /// At start: warns if Redis may evict marks (`maxmemory-policy` other than
    /// `noeviction`; CONFIG may be disabled on managed Redis, then only the
    /// eviction counter is watched), and reads the log's head.
    pub async fn start(&self) {
        let mut pipe = redis::pipe();
        pipe.cmd("CONFIG").arg("GET").arg("maxmemory-policy");
        match self.query::<(Vec<String>,)>(pipe).await {
            Ok((v,)) => match v.get(1).map(String::as_str) {
                Some("noeviction") => {}
                policy => tracing::warn!(
                    ?policy,
                    "redis may evict revocation marks (maxmemory-policy is not noeviction); \
                     evictions send revocation checks to the database while Redis is refilled"
                ),
            },
            Err(e) => tracing::info!(error = %e, "cannot read redis's maxmemory-policy; watching evicted_keys only"),
        }
        self.sync_tick().await;
    }
}
