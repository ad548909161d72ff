//! Durable record of revoked access tokens (RFC 7009), by `jti`. Each
//! revocation is logged (see [`super::revocation_log`]) in the same transaction.

use diesel::prelude::*;

use super::revocation_log::{self, Entry, Logged};
use super::schema::{refresh_tokens, revoked_tokens};
use super::{DbConnection, StorageError};

/// Revokes `jti` until `expires_at`, and logs it, in one transaction.
pub fn revoke(
    conn: &mut DbConnection,
    jti: &str,
    client_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<Vec<Entry>, StorageError> {
    conn.transaction(|conn| {
        insert(conn, jti, client_id, expires_at, now)?;
        revocation_log::append(
            conn,
            vec![Logged::Token {
                jti: jti.to_owned(),
                expires_at,
            }],
            now,
        )
    })
}

/// Revokes every refresh token of the family and the access tokens they were
/// issued with (until `access_until`), and logs them, in one transaction.
pub fn revoke_family(
    conn: &mut DbConnection,
    family: &str,
    access_until: i64,
    now: i64,
) -> Result<Vec<Entry>, StorageError> {
    conn.transaction(|conn| {
        let jtis = revoke_family_unlogged(conn, family, access_until, now)?;
        revocation_log::append(conn, tokens_until(jtis, access_until), now)
    })
}

/// [`revoke_family`] without the log entry: for a caller that logs more in the
/// same transaction (the head row is taken once, last, so writers never deadlock on it).
pub(super) fn revoke_family_unlogged(
    conn: &mut DbConnection,
    family: &str,
    access_until: i64,
    now: i64,
) -> Result<Vec<String>, StorageError> {
    diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family)))
        .set(refresh_tokens::revoked.eq(true))
        .execute(conn)?;
    let jtis: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family))
        .select(refresh_tokens::access_jti)
        .load(conn)?;
    for j in &jtis {
        insert(conn, j, "refresh-family", access_until, now)?;
    }
    Ok(jtis)
}

pub(super) fn tokens_until(jtis: Vec<String>, expires_at: i64) -> Vec<Logged> {
    jtis.into_iter().map(|jti| Logged::Token { jti, expires_at }).collect()
}

/// Records a revocation (not logged: see [`revoke`]). Revoking twice is not an error.
pub(super) fn insert(
    conn: &mut DbConnection,
    jti: &str,
    client_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StorageError> {
    // In its own savepoint: on PostgreSQL a refused insert would abort the
    // enclosing transaction.
    let res = conn.transaction(|conn| {
        diesel::insert_into(revoked_tokens::table)
            .values((
                revoked_tokens::jti.eq(jti),
                revoked_tokens::client_id.eq(client_id),
                revoked_tokens::expires_at.eq(expires_at),
                revoked_tokens::revoked_at.eq(now),
            ))
            .execute(conn)
    });
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
