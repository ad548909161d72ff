//! Durable record of revoked access tokens (RFC 7009), by `jti`.

use diesel::prelude::*;

use super::schema::revoked_tokens;
use super::{DbConnection, StorageError};

/// Records a revocation. Revoking twice is not an error.
pub fn insert(
    conn: &mut DbConnection,
    jti: &str,
    client_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StorageError> {
    let res = diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::client_id.eq(client_id),
            revoked_tokens::expires_at.eq(expires_at),
            revoked_tokens::revoked_at.eq(now),
        ))
        .execute(conn);
    match res.map_err(StorageError::from) {
        Ok(_) | Err(StorageError::Duplicate) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> Result<bool, StorageError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(revoked_tokens::table.find(jti))).get_result(conn)?)
}

/// Revocations whose tokens are still alive at `now`: what Redis must carry.
pub fn live(conn: &mut DbConnection, now: i64) -> Result<Vec<(String, i64)>, StorageError> {
    Ok(revoked_tokens::table
        .filter(revoked_tokens::expires_at.gt(now))
        .select((revoked_tokens::jti, revoked_tokens::expires_at))
        .load(conn)?)
}

pub fn delete_expired(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(before))).execute(conn)?)
}
