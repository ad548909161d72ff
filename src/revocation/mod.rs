//! Token revocation (RFC 7009) that holds across instances and failures.
//!
//! The database is the record: a revocation is committed there before anyone is
//! told it happened. Redis, when configured, is the fast path every instance
//! reads. Whatever fails, a revoked token never looks active:
//! - Redis unreachable or slow (past `redis_timeout_ms`): the check falls back to the database;
//! - Redis restarted empty: a marker key is missing, so checks go to the database
//!   while one instance rebuilds Redis from it;
//! - Redis write failed after the durable write: the revoke answers 503 (never a
//!   false 200) and a background task keeps pushing the mark until it lands;
//! - the database unreachable too: the check fails and callers answer 503.

mod redis_store;
pub mod request;

pub use redis_store::RedisRevocations;

use crate::domain::AgentStatus;
use crate::storage::agents::StatusChange;
use crate::storage::{agents, grants, interactions, revocations, Db, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("revocation state unavailable: {0}")]
    Unavailable(String),
    /// Written durably, but not yet visible to instances reading Redis.
    #[error("revocation recorded but not yet propagated: {0}")]
    NotPropagated(String),
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
/// tokens it was exchanged from, its grant, and every agent in its `act` chain
/// (an agent's kill switch revokes what was issued at or before it).
#[derive(Debug, Clone, Default)]
pub struct TokenRef {
    pub jtis: Vec<String>,
    pub grant_id: Option<String>,
    pub agents: Vec<String>,
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
            iat: c.iat,
        }
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
            StatusChange::KillSwitch(k) => {
                if let Revocations::Redis(r) = self {
                    r.propagate_agent(agent_id, k).await?;
                }
                Ok(true)
            }
        }
    }

    fn db(&self) -> &Db {
        match self {
            Revocations::Database(db) => db,
            Revocations::Redis(r) => r.db(),
        }
    }

    /// Withdraws a consent grant: every token carrying its id turns inactive.
    /// `until` is when the last such token expires. Returns false if it was not active.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64, until: i64) -> Result<bool, RevocationError> {
        let g = grant_id.to_owned();
        let was_active = self.db().run(move |c| grants::revoke(c, &g, now, until)).await?;
        self.propagate(Mark::Grant(grant_id), until, now).await?;
        Ok(was_active)
    }

    /// Revokes a refresh-token family and the access tokens issued with it.
    pub async fn revoke_family(&self, family: &str, now: i64, access_until: i64) -> Result<(), RevocationError> {
        let f = family.to_owned();
        let jtis = self
            .db()
            .run(move |c| {
                let jtis = interactions::revoke_family(c, &f)?;
                for j in &jtis {
                    revocations::insert(c, j, "refresh-family", access_until, now)?;
                }
                Ok(jtis)
            })
            .await?;
        for j in &jtis {
            self.propagate(Mark::Token(j), access_until, now).await?;
        }
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

    async fn propagate(&self, mark: Mark<'_>, until: i64, now: i64) -> Result<(), RevocationError> {
        match self {
            Revocations::Database(_) => Ok(()),
            Revocations::Redis(r) => r.propagate(mark, until, now).await,
        }
    }

    /// Revokes `jti` until `expires_at`. Returns only after the durable write.
    pub async fn revoke(&self, jti: &str, client_id: &str, expires_at: i64, now: i64) -> Result<(), RevocationError> {
        let (j, c) = (jti.to_owned(), client_id.to_owned());
        self.db()
            .run(move |conn| revocations::insert(conn, &j, &c, expires_at, now))
            .await?;
        self.propagate(Mark::Token(jti), expires_at, now).await
    }

    /// Readiness of the fast path (always ready without Redis).
    pub async fn ping(&self) -> Result<(), RevocationError> {
        match self {
            Revocations::Database(_) => Ok(()),
            Revocations::Redis(r) => r.ping().await,
        }
    }
}

/// What a Redis mark stands for.
#[derive(Debug, Clone, Copy)]
pub enum Mark<'a> {
    Token(&'a str),
    Grant(&'a str),
    /// Value: "generation:time", the kill-switch time ([`agents::SUSPENDED`] while
    /// suspended); kept without expiry.
    Agent(&'a str),
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
    Ok(false)
}
