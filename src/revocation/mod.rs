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

use crate::storage::{revocations, Db, StorageError};

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

impl Revocations {
    pub async fn is_revoked(&self, jti: &str) -> Result<bool, RevocationError> {
        match self {
            Revocations::Database(db) => db_is_revoked(db, jti).await,
            Revocations::Redis(r) => r.is_revoked(jti).await,
        }
    }

    /// Revokes `jti` until `expires_at`. Returns only after the durable write.
    pub async fn revoke(&self, jti: &str, client_id: &str, expires_at: i64, now: i64) -> Result<(), RevocationError> {
        let db = match self {
            Revocations::Database(db) => db,
            Revocations::Redis(r) => r.db(),
        };
        let (j, c) = (jti.to_owned(), client_id.to_owned());
        db.run(move |conn| revocations::insert(conn, &j, &c, expires_at, now))
            .await?;
        match self {
            Revocations::Database(_) => Ok(()),
            Revocations::Redis(r) => r.propagate(jti, expires_at, now).await,
        }
    }

    /// Readiness of the fast path (always ready without Redis).
    pub async fn ping(&self) -> Result<(), RevocationError> {
        match self {
            Revocations::Database(_) => Ok(()),
            Revocations::Redis(r) => r.ping().await,
        }
    }
}

pub(crate) async fn db_is_revoked(db: &Db, jti: &str) -> Result<bool, RevocationError> {
    let j = jti.to_owned();
    Ok(db.run(move |c| revocations::is_revoked(c, &j)).await?)
}
