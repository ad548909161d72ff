//! Redis as the shared fast path for revocations. Keys are namespaced by the
//! configured prefix and by object type: `{prefix}rev:jti:{jti}` (one per
//! revoked token, expiring with it) and `{prefix}rev:loaded` (present once
//! Redis holds every live revocation of the database).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{db_any_revoked, Mark, RevocationError, TokenRef};
use crate::storage::{agents, grants, revocations, Db};
use crate::tokens::CLOCK_SKEW_SECS;

pub struct RedisRevocations {
    db: Db,
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// Token and grant marks written to the database but not (yet) to Redis:
    /// (key, when the tokens it covers expire). Agents' kill switches are not
    /// queued: [`Self::reconcile_agents`] copies them all, periodically.
    pending: Arc<Mutex<Vec<(String, i64)>>>,
    /// Set while this instance rebuilds, so a burst of checks spawns one rebuild.
    rebuilding: Arc<AtomicBool>,
}

impl RedisRevocations {
    /// Creates the store without connecting: the server starts even when Redis
    /// is down, and falls back to the database until it comes up.
    pub fn new(url: &str, prefix: &str, timeout: Duration, db: Db) -> anyhow::Result<RedisRevocations> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid redis_url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("cannot set up redis: {e}"))?;
        Ok(RedisRevocations {
            db,
            conn,
            prefix: prefix.to_owned(),
            timeout,
            pending: Arc::default(),
            rebuilding: Arc::default(),
        })
    }

    pub(super) fn db(&self) -> &Db {
        &self.db
    }

    fn mark_key(&self, mark: Mark<'_>) -> String {
        match mark {
            Mark::Token(jti) => format!("{}rev:jti:{jti}", self.prefix),
            Mark::Grant(gid) => format!("{}rev:gid:{gid}", self.prefix),
            Mark::Agent(aid) => format!("{}rev:agent:{aid}", self.prefix),
        }
    }

    fn loaded_key(&self) -> String {
        format!("{}rev:loaded", self.prefix)
    }

    /// Runs one command or pipeline under the timeout; any failure is `Err`.
    async fn query<T: redis::FromRedisValue>(&self, pipe: redis::Pipeline) -> Result<T, String> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, pipe.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("redis timed out".into()),
        }
    }

    /// True if any of the tokens is revoked, in one round trip: EXISTS over the
    /// token and grant marks, MGET of the agents' kill-switch times (each compared
    /// with its own token's `iat`), and the marker that Redis holds the full set.
    /// Both lists start with a key that is never set, so neither is ever empty.
    pub async fn any_revoked(&self, ts: &[TokenRef]) -> Result<bool, RevocationError> {
        let mut marks = vec![self.mark_key(Mark::Token(""))];
        let mut agent_keys = vec![self.mark_key(Mark::Agent(""))];
        let mut issued_at = vec![i64::MAX];
        for t in ts {
            marks.extend(t.jtis.iter().map(|j| self.mark_key(Mark::Token(j))));
            marks.extend(t.grant_id.iter().map(|g| self.mark_key(Mark::Grant(g))));
            for a in &t.agents {
                agent_keys.push(self.mark_key(Mark::Agent(a)));
                issued_at.push(t.iat);
            }
        }
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS")
            .arg(&marks)
            .cmd("MGET")
            .arg(&agent_keys)
            .exists(self.loaded_key());
        match self.query::<(i64, Vec<Option<String>>, bool)>(pipe).await {
            Ok((revoked, killed, true)) => Ok(revoked > 0
                || killed
                    .iter()
                    .zip(&issued_at)
                    .any(|(value, iat)| value.as_deref().is_some_and(|v| kill_switch_time(v) >= *iat))),
            Ok((_, _, false)) => {
                // Redis is up but does not hold the full set (restarted empty): the
                // database answers, and Redis is rebuilt in the background.
                self.spawn_rebuild();
                db_any_revoked(&self.db, ts).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable for a revocation check; asking the database");
                db_any_revoked(&self.db, ts).await
            }
        }
    }

    fn set_pipe(&self, key: &str, expires_at: i64, now: i64) -> redis::Pipeline {
        let ttl_ms = ((expires_at - now).max(0) + CLOCK_SKEW_SECS) as u64 * 1000;
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(key).arg(1).arg("PX").arg(ttl_ms).ignore();
        pipe
    }

    /// Writes an agent's kill switch after the durable write. On failure the
    /// caller answers 503; every instance's periodic copy ([`Self::reconcile_agents`])
    /// lands it within `keys.refresh_interval_secs`.
    pub(super) async fn propagate_agent(&self, agent_id: &str, k: agents::KillSwitch) -> Result<(), RevocationError> {
        self.query::<()>(kill_switches_pipe(&self.prefix, &[(agent_id.to_owned(), k)]))
            .await
            .map_err(RevocationError::NotPropagated)
    }

    /// Writes a token or grant mark to Redis after the durable write; `expires_at`
    /// is when the tokens it covers expire. On failure the caller answers 503 and
    /// [`Self::flush_pending`] pushes it again in the background.
    pub(super) async fn propagate(&self, mark: Mark<'_>, expires_at: i64, now: i64) -> Result<(), RevocationError> {
        let key = self.mark_key(mark);
        match self.query::<()>(self.set_pipe(&key, expires_at, now)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Ok(mut p) = self.pending.lock() {
                    p.push((key, expires_at));
                }
                Err(RevocationError::NotPropagated(e))
            }
        }
    }

    /// Pushes pending marks to Redis; called periodically by the server.
    pub async fn flush_pending(&self, now: i64) {
        let batch: Vec<(String, i64)> = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        let mut failed = Vec::new();
        for (key, exp) in batch {
            if exp <= now {
                continue;
            }
            if self.query::<()>(self.set_pipe(&key, exp, now)).await.is_err() {
                failed.push((key, exp));
            }
        }
        if !failed.is_empty() {
            if let Ok(mut p) = self.pending.lock() {
                p.extend(failed);
            }
        }
    }

    /// Copies every agent's kill switch from the database to Redis (a small
    /// table: one query, one script); called periodically by the server, so a
    /// suspension or resume whose Redis write failed (or was made by a CLI that
    /// could not reach Redis) lands within one period. Generations keep a copy
    /// made from an older read from overwriting a newer change.
    pub async fn reconcile_agents(&self) -> Result<(), String> {
        let all = self.db.run(agents::all_revocations).await.map_err(|e| e.to_string())?;
        if all.is_empty() {
            return Ok(());
        }
        self.query::<()>(kill_switches_pipe(&self.prefix, &all)).await
    }

    fn spawn_rebuild(&self) {
        if self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let (db, mut conn, prefix, timeout) = (self.db.clone(), self.conn.clone(), self.prefix.clone(), self.timeout);
        let flag = self.rebuilding.clone();
        tokio::spawn(async move {
            if let Err(e) = rebuild(&db, &mut conn, &prefix, timeout).await {
                tracing::warn!(error = %e, "rebuilding redis revocations failed; will retry on next check");
            }
            flag.store(false, Ordering::Release);
        });
    }

    /// Loads every live revocation from the database into Redis, then sets the
    /// marker. Returns without work if Redis already holds the set or another
    /// instance is rebuilding.
    pub async fn rebuild_now(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        rebuild(&self.db, &mut conn, &self.prefix, self.timeout).await
    }

    pub async fn ping(&self) -> Result<(), RevocationError> {
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        self.query::<(String,)>(pipe)
            .await
            .map(|_| ())
            .map_err(RevocationError::Unavailable)
    }
}

/// Sets the "complete" marker only if our rebuild lock is still there: had Redis
/// restarted since the lock was taken, the lock would be gone, and the marker
/// must not vouch for marks that were lost with the restart.
const SET_MARKER_IF_LOCK_HELD: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], '1')
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// Sets agents' kill switches, each only if its generation is newer than the
/// one Redis holds (KEYS: the agents' marks; ARGV: "generation:time" values).
/// Every writer (a suspend or resume, the periodic copy, a rebuild) goes
/// through it, so an older read can never overwrite a newer change.
const SET_KILL_SWITCHES: &str = r#"
for i, key in ipairs(KEYS) do
  local new = ARGV[i]
  local newgen = tonumber(string.match(new, '^(%d+):'))
  local cur = redis.call('GET', key)
  local curgen = -1
  if cur then curgen = tonumber(string.match(cur, '^(%d+):')) or 0 end
  if newgen and newgen > curgen then redis.call('SET', key, new) end
end
return 1
"#;

/// One script call writing agents' kill switches, see [`SET_KILL_SWITCHES`].
fn kill_switches_pipe(prefix: &str, all: &[(String, agents::KillSwitch)]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    let cmd = pipe.cmd("EVAL").arg(SET_KILL_SWITCHES).arg(all.len());
    for (agent, _) in all {
        cmd.arg(format!("{prefix}rev:agent:{agent}"));
    }
    for (_, k) in all {
        cmd.arg(format!("{}:{}", k.generation, k.before));
    }
    cmd.ignore();
    pipe
}

/// The kill-switch time in a Redis value ("generation:time"); a value that
/// cannot be read counts as suspended (fail closed).
fn kill_switch_time(value: &str) -> i64 {
    let time = value.split_once(':').map_or(value, |(_, t)| t);
    time.parse().unwrap_or(agents::SUSPENDED)
}

async fn rebuild(db: &Db, conn: &mut ConnectionManager, prefix: &str, timeout: Duration) -> Result<(), String> {
    let lock = format!("{prefix}rev:rebuilding");
    let loaded = format!("{prefix}rev:loaded");
    let token = crate::tokens::random_id();
    let step = |p: redis::Pipeline, mut c: ConnectionManager| async move {
        match tokio::time::timeout(timeout * 4, p.query_async::<redis::Value>(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("redis timed out".to_owned()),
        }
    };
    let mut pipe = redis::pipe();
    pipe.exists(&loaded)
        .cmd("SET")
        .arg(&lock)
        .arg(&token)
        .arg("NX")
        .arg("EX")
        .arg(60);
    let v = step(pipe, conn.clone()).await?;
    let (is_loaded, got_lock): (bool, Option<String>) =
        redis::FromRedisValue::from_redis_value(v).map_err(|e| e.to_string())?;
    if is_loaded || got_lock.is_none() {
        return Ok(());
    }
    // The snapshot is read after the lock is taken: revocations committed later
    // are written to Redis by their own revoke call.
    let now = crate::clock::now();
    let (tokens, revoked_grants, killed_agents) = db
        .run(move |c| {
            Ok((
                revocations::live(c, now)?,
                grants::live_revoked(c, now)?,
                agents::all_revocations(c)?,
            ))
        })
        .await
        .map_err(|e| e.to_string())?;
    if !killed_agents.is_empty() {
        step(kill_switches_pipe(prefix, &killed_agents), conn.clone()).await?;
    }
    let live: Vec<(String, i64)> = tokens
        .into_iter()
        .map(|(j, e)| (format!("{prefix}rev:jti:{j}"), e))
        .chain(
            revoked_grants
                .into_iter()
                .map(|(g, e)| (format!("{prefix}rev:gid:{g}"), e)),
        )
        .collect();
    let count = live.len();
    for chunk in live.chunks(1000) {
        let mut pipe = redis::pipe();
        for (key, exp) in chunk {
            let ttl_ms = ((exp - now).max(0) + CLOCK_SKEW_SECS) as u64 * 1000;
            pipe.cmd("SET").arg(key).arg(1).arg("PX").arg(ttl_ms).ignore();
        }
        step(pipe, conn.clone()).await?;
    }
    let mut pipe = redis::pipe();
    pipe.cmd("EVAL")
        .arg(SET_MARKER_IF_LOCK_HELD)
        .arg(2)
        .arg(&lock)
        .arg(&loaded)
        .arg(&token);
    let v = step(pipe, conn.clone()).await?;
    let (set,): (i64,) = redis::FromRedisValue::from_redis_value(v).map_err(|e| e.to_string())?;
    if set != 1 {
        return Err("redis lost the rebuild lock (restarted?); the marker was not set".into());
    }
    tracing::info!(count, "redis revocations rebuilt from the database");
    Ok(())
}
