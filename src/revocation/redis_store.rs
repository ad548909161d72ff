//! Redis as the shared fast path for revocation checks. Keys are namespaced by
//! the configured prefix and by object type: `{prefix}rev:jti:{jti}` and
//! `{prefix}rev:gid:{grant}` (one per revoked token or grant, expiring with
//! what it covers), `{prefix}rev:agent:{agent}`, `{prefix}rev:user:{sub}` and
//! `{prefix}rev:client:{client_id}` ("generation:time", a kill switch) and `{prefix}rev:applied` (the log number up to which Redis
//! holds every mark; see [`super::outbox`]). Redis is written only from the
//! revocation log, and read only when `applied` reaches the log's head.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::outbox::SyncState;
use super::{db_any_revoked, RevocationError, TokenRef};
use crate::storage::agents;
use crate::storage::kill_switches::Kind;
use crate::storage::revocation_log::Logged;
use crate::storage::Db;

#[derive(Clone)]
pub struct RedisRevocations {
    pub(super) db: Db,
    pub(super) conn: ConnectionManager,
    prefix: String,
    pub(super) timeout: Duration,
    pub(super) sync: Arc<SyncState>,
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
            sync: Arc::new(SyncState::new()),
        })
    }

    pub(super) fn db(&self) -> &Db {
        &self.db
    }

    fn token_key(&self, jti: &str) -> String {
        format!("{}rev:jti:{jti}", self.prefix)
    }

    fn grant_key(&self, grant_id: &str) -> String {
        format!("{}rev:gid:{grant_id}", self.prefix)
    }

    fn agent_key(&self, agent_id: &str) -> String {
        format!("{}rev:agent:{agent_id}", self.prefix)
    }

    fn switch_key(&self, kind: Kind, subject: &str) -> String {
        format!("{}rev:{}:{subject}", self.prefix, kind.as_str())
    }

    pub(super) fn applied_key(&self) -> String {
        format!("{}rev:applied", self.prefix)
    }

    pub(super) fn logged_key(&self, logged: &Logged) -> String {
        match logged {
            Logged::Token { jti, .. } => self.token_key(jti),
            Logged::Grant { grant_id, .. } => self.grant_key(grant_id),
            Logged::Agent { agent_id, .. } => self.agent_key(agent_id),
            Logged::Switch { kind, subject, .. } => self.switch_key(*kind, subject),
        }
    }

    /// Runs one command or pipeline under the timeout; any failure is `Err`.
    pub(super) async fn query<T: redis::FromRedisValue>(&self, pipe: redis::Pipeline) -> Result<T, String> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, pipe.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("redis timed out".into()),
        }
    }

    /// True if any of the tokens is revoked, in one round trip: `applied`,
    /// EXISTS over the token and grant marks, and MGET of the kill-switch times
    /// of the agents, the user and the client (each compared with its own token's `iat`). Both lists start with a key
    /// that is never set, so neither is ever empty. Redis answers only if it has
    /// applied the log up to the head this instance knows; otherwise (behind,
    /// restarted, restored, evicting, slow or down) the database answers, while
    /// the background drain refills Redis.
    pub async fn any_revoked(&self, ts: &[TokenRef]) -> Result<bool, RevocationError> {
        let mut marks = vec![self.token_key("")];
        let mut agent_keys = vec![self.agent_key("")];
        let mut issued_at = vec![i64::MAX];
        for t in ts {
            marks.extend(t.jtis.iter().map(|j| self.token_key(j)));
            marks.extend(t.grant_id.iter().map(|g| self.grant_key(g)));
            for a in &t.agents {
                agent_keys.push(self.agent_key(a));
                issued_at.push(t.iat);
            }
            for (kind, subject) in t.switches() {
                agent_keys.push(self.switch_key(kind, subject));
                issued_at.push(t.iat);
            }
        }
        // MULTI/EXEC: the marks are read as of `applied`, never across a flush,
        // a restart or a drain in between.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .get(self.applied_key())
            .cmd("EXISTS")
            .arg(&marks)
            .cmd("MGET")
            .arg(&agent_keys);
        match self.query::<(Option<i64>, i64, Vec<Option<String>>)>(pipe).await {
            Ok((Some(applied), revoked, killed)) if self.sync.trusts(applied) => Ok(revoked > 0
                || killed
                    .iter()
                    .zip(&issued_at)
                    .any(|(value, iat)| value.as_deref().is_some_and(|v| kill_switch_time(v) >= *iat))),
            Ok(_) => {
                metrics::counter!("deputy_revocation_checks_from_database_total", "why" => "behind").increment(1);
                db_any_revoked(&self.db, ts).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable for a revocation check; asking the database");
                metrics::counter!("deputy_revocation_checks_from_database_total", "why" => "unavailable").increment(1);
                db_any_revoked(&self.db, ts).await
            }
        }
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

/// The kill-switch time in a Redis value ("generation:time"); a value that
/// cannot be read counts as suspended (fail closed).
fn kill_switch_time(value: &str) -> i64 {
    let time = value.split_once(':').map_or(value, |(_, t)| t);
    time.parse().unwrap_or(agents::SUSPENDED)
}
