//! Token revocation (RFC 7009) that no Redis fault can lose.
//!
//! The database is the record: every revocation, consent withdrawal and
//! kill-switch change is committed there, with a numbered row in the
//! revocation log, in one transaction, before anyone is told it happened.
//! Redis, when configured, is the fast path every instance reads, filled from
//! that log by an outbox any instance drains ([`outbox`]), and trusted only as
//! far as the log number it has applied reaches the database's head. Whatever
//! fails, a revoked token never looks active:
//! - Redis unreachable or slow (past `redis_timeout_ms`): the database answers;
//! - Redis behind the log (a write it missed, a restart, a restore from an older
//!   snapshot, a failover to a replica that missed writes, evictions): the
//!   database answers while any instance refills Redis from the log;
//! - on the instance that committed a revocation, at once; on the others, within
//!   [`outbox::HEAD_MAX_AGE`] (they read the log's head every [`outbox::HEAD_POLL`]);
//! - the database unreachable too: the check fails and callers answer 503.
//!
//! Nothing waits in one process's memory: a revocation made by the CLI, or by
//! an instance that died before Redis heard of it, is in the log.

mod identities;
mod outbox;
mod redis_store;
pub mod request;

pub use identities::IdentityChange;
pub use outbox::{HEAD_MAX_AGE, HEAD_POLL};
pub use redis_store::RedisRevocations;

use crate::domain::AgentStatus;
use crate::storage::agents::StatusChange;
use crate::storage::kill_switches::{self, Kind};
use crate::storage::revocation_log::Entry;
use crate::storage::{agents, grants, interactions, revocations, Db, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The database could not be read or written (nothing was revoked).
    #[error("revocation state unavailable: {0}")]
    Unavailable(String),
}

impl From<StorageError> for RevocationError {
    fn from(e: StorageError) -> Self {
        RevocationError::Unavailable(e.to_string())
    }
}

/// The two real backends: the database alone (embedded default), or the
/// database with Redis in front.
pub enum Revocations {
    Database(Db),
    Redis(RedisRevocations),
}

/// What decides whether a token still stands: its own `jti` and those of the
/// tokens it was exchanged from, its grant, every agent in its `act` chain, its
/// user (`sub`) and its client (`client_id`): a kill switch of an agent, a user
/// or a client revokes what was issued at or before its time.
#[derive(Debug, Clone, Default)]
pub struct TokenRef {
    pub jtis: Vec<String>,
    pub grant_id: Option<String>,
    pub agents: Vec<String>,
    /// The token's `sub`: a user's kill switch is looked up under it.
    pub subject: Option<String>,
    /// The token's `client_id`: a client's kill switch is looked up under it.
    pub client_id: Option<String>,
    pub iat: i64,
}

impl TokenRef {
    /// The agents a token names: every actor of its `act` chain, and the agent
    /// its `may_act` says may act with it (a user's token held by that agent's
    /// client, or by an application the agent works with).
    pub fn of(c: &crate::tokens::access::AccessClaims) -> TokenRef {
        let mut jtis = c.anc.clone().unwrap_or_default();
        jtis.push(c.jti.clone());
        let mut agents = c.actors();
        if let Some(a) = c.may_act.as_ref().and_then(|m| m.get("sub")).and_then(|s| s.as_str()) {
            if !agents.iter().any(|x| x == a) {
                agents.push(a.to_owned());
            }
        }
        TokenRef {
            jtis,
            grant_id: c.grant_id.clone(),
            agents,
            subject: Some(c.sub.clone()),
            client_id: Some(c.client_id.clone()),
            iat: c.iat,
        }
    }
}

impl TokenRef {
    /// The user and client kill switches that bear on the token.
    pub(crate) fn switches(&self) -> impl Iterator<Item = (Kind, &str)> {
        let user = self.subject.as_deref().map(|s| (Kind::User, s));
        let client = self.client_id.as_deref().map(|c| (Kind::Client, c));
        user.into_iter().chain(client)
    }
}

impl Revocations {
    /// True if the token, an ancestor, its grant or an agent of its chain is revoked.
    pub async fn is_revoked(&self, t: &TokenRef) -> Result<bool, RevocationError> {
        self.any_revoked(std::slice::from_ref(t)).await
    }

    /// True if any of the tokens is revoked: one round trip for several (the
    /// subject, the actor and the new chain of an exchange).
    pub async fn any_revoked(&self, tokens: &[TokenRef]) -> Result<bool, RevocationError> {
        match self {
            Revocations::Database(db) => db_any_revoked(db, tokens).await,
            Revocations::Redis(r) => r.any_revoked(tokens).await,
        }
    }

    /// The kill switch: suspends the agent, which revokes every token naming it
    /// anywhere in its chain and refuses new ones until it is resumed. Returns
    /// false if there is no such agent.
    pub async fn suspend_agent(&self, agent_id: &str, now: i64) -> Result<bool, RevocationError> {
        self.set_agent_status(agent_id, AgentStatus::Suspended, now).await
    }

    /// Resumes a suspended agent: it may act again, but what was issued before
    /// stays revoked. Returns false if there is no such agent.
    pub async fn resume_agent(&self, agent_id: &str, now: i64) -> Result<bool, RevocationError> {
        self.set_agent_status(agent_id, AgentStatus::Active, now).await
    }

    async fn set_agent_status(&self, agent_id: &str, status: AgentStatus, now: i64) -> Result<bool, RevocationError> {
        let a = agent_id.to_owned();
        match self.db().run(move |c| agents::set_status(c, &a, status, now)).await? {
            StatusChange::UnknownAgent => Ok(false),
            StatusChange::Unchanged => Ok(true),
            StatusChange::KillSwitch(_, logged) => {
                self.propagate(&logged).await;
                Ok(true)
            }
        }
    }

    pub(crate) fn db(&self) -> &Db {
        match self {
            Revocations::Database(db) => db,
            Revocations::Redis(r) => r.db(),
        }
    }

    /// Withdraws a consent grant: every token carrying its id turns inactive.
    /// `until` is when the last such token expires. Returns false if it was not
    /// active. Done once durable: Redis hears of it from the log.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64, until: i64) -> Result<bool, RevocationError> {
        let g = grant_id.to_owned();
        let (was_active, logged) = self.db().run(move |c| grants::revoke(c, &g, now, until)).await?;
        self.propagate(&logged).await;
        Ok(was_active)
    }

    /// Revokes a refresh-token family and the access tokens issued with it.
    pub async fn revoke_family(&self, family: &str, now: i64, access_until: i64) -> Result<(), RevocationError> {
        let f = family.to_owned();
        let logged = self
            .db()
            .run(move |c| revocations::revoke_family(c, &f, access_until, now))
            .await?;
        self.propagate(&logged).await;
        Ok(())
    }

    /// RFC 6749 §4.1.2: a code used twice revokes what it issued (its access
    /// token, its refresh-token family), in the database whatever Redis does;
    /// a redemption of it still in flight hands out nothing.
    pub async fn revoke_replayed_code(
        &self,
        code_hash: &str,
        now: i64,
        access_until: i64,
    ) -> Result<(), RevocationError> {
        let h = code_hash.to_owned();
        let logged = self
            .db()
            .run(move |c| interactions::revoke_replayed_code(c, &h, access_until, now))
            .await?;
        self.propagate(&logged).await;
        Ok(())
    }

    /// RFC 7009 for a refresh token: revokes its family (and the access tokens it
    /// issued) if it belongs to `client_id`. `Ok(None)` if the token is unknown;
    /// otherwise its stored row and whether it was revoked (false: another client's).
    pub async fn revoke_refresh_token(
        &self,
        token: &str,
        client_id: &str,
        now: i64,
        access_until: i64,
    ) -> Result<Option<(bool, interactions::RefreshRow)>, RevocationError> {
        let hash = crate::authorize::hash_code(token);
        let row = self.db().run(move |c| interactions::get_refresh(c, &hash)).await?;
        match row {
            None => Ok(None),
            Some(r) if r.client_id != client_id => Ok(Some((false, r))),
            Some(r) => {
                self.revoke_family(&r.family_id, now, access_until).await?;
                Ok(Some((true, r)))
            }
        }
    }

    /// The stored state of a refresh token, for introspection.
    pub async fn lookup_refresh(&self, token: &str) -> Result<Option<interactions::RefreshRow>, RevocationError> {
        let hash = crate::authorize::hash_code(token);
        Ok(self.db().run(move |c| interactions::get_refresh(c, &hash)).await?)
    }

    /// After a durable write: Redis is told at once if it can be (one try);
    /// otherwise the log keeps the entries for the next drain, on any instance.
    pub(crate) async fn propagate(&self, logged: &[Entry]) {
        if let Revocations::Redis(r) = self {
            r.after_commit(logged).await;
        }
    }

    /// Revokes `jti` until `expires_at`. Returns once the revocation is durable.
    pub async fn revoke(&self, jti: &str, client_id: &str, expires_at: i64, now: i64) -> Result<(), RevocationError> {
        let (j, c) = (jti.to_owned(), client_id.to_owned());
        let logged = self
            .db()
            .run(move |conn| revocations::revoke(conn, &j, &c, expires_at, now))
            .await?;
        self.propagate(&logged).await;
        Ok(())
    }

    /// Readiness of the fast path (always ready without Redis).
    pub async fn ping(&self) -> Result<(), RevocationError> {
        match self {
            Revocations::Database(_) => Ok(()),
            Revocations::Redis(r) => r.ping().await,
        }
    }
}

pub(crate) async fn db_any_revoked(db: &Db, tokens: &[TokenRef]) -> Result<bool, RevocationError> {
    let ts = tokens.to_vec();
    Ok(db
        .run(move |c| {
            for t in &ts {
                if revoked_in_db(c, t)? {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await?)
}

/// One lookup per mark, each a fixed statement (so SQLite keeps it prepared).
fn revoked_in_db(c: &mut crate::storage::DbConnection, t: &TokenRef) -> Result<bool, StorageError> {
    for jti in &t.jtis {
        if revocations::is_revoked(c, jti)? {
            return Ok(true);
        }
    }
    if let Some(g) = &t.grant_id {
        if grants::is_revoked(c, g)? {
            return Ok(true);
        }
    }
    for agent in &t.agents {
        if agents::revoked_before_one(c, agent)?.is_some_and(|before| before >= t.iat) {
            return Ok(true);
        }
    }
    for (kind, subject) in t.switches() {
        if kill_switches::revoked_before_one(c, kind, subject)?.is_some_and(|before| before >= t.iat) {
            return Ok(true);
        }
    }
    Ok(false)
}
