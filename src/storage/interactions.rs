//! Pending authorization requests (the browser flow's state), authorization
//! codes and refresh tokens. Codes and refresh tokens are stored as SHA-256
//! hashes and consumed with one conditional UPDATE, so two parallel uses on two
//! instances get one success between them.

use diesel::prelude::*;

use super::schema::{auth_requests, authorization_codes, refresh_tokens};
use super::{DbConnection, StorageError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_requests)]
pub struct AuthRequestRow {
    pub request_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub resource: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub user_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub completed: bool,
    /// The registered agent the client asked may act with the user's tokens.
    pub requested_actor: Option<String>,
    /// RFC 9396 details the client asked for, validated (JSON).
    pub authorization_details: Option<String>,
}

pub fn insert_request(conn: &mut DbConnection, r: &AuthRequestRow) -> Result<(), StorageError> {
    diesel::insert_into(auth_requests::table).values(r).execute(conn)?;
    Ok(())
}

pub fn get_request(conn: &mut DbConnection, id: &str) -> Result<Option<AuthRequestRow>, StorageError> {
    Ok(auth_requests::table
        .find(id)
        .select(AuthRequestRow::as_select())
        .first(conn)
        .optional()?)
}

/// Binds the request to the first user who signs in for it; true if it is (now) theirs.
pub fn bind_request_user(conn: &mut DbConnection, id: &str, user_id: &str) -> Result<bool, StorageError> {
    diesel::update(auth_requests::table.find(id).filter(auth_requests::user_id.is_null()))
        .set(auth_requests::user_id.eq(user_id))
        .execute(conn)?;
    let owner: Option<Option<String>> = auth_requests::table
        .find(id)
        .select(auth_requests::user_id)
        .first(conn)
        .optional()?;
    Ok(owner.flatten().as_deref() == Some(user_id))
}

/// Completes a request once: false if it was already completed (a replayed form).
pub fn complete_request(conn: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    Ok(
        diesel::update(auth_requests::table.find(id).filter(auth_requests::completed.eq(false)))
            .set(auth_requests::completed.eq(true))
            .execute(conn)?
            == 1,
    )
}

pub fn delete_expired_requests(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(auth_requests::table.filter(auth_requests::expires_at.lt(before))).execute(conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub resource: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub used: bool,
    pub access_jti: Option<String>,
    pub refresh_family: Option<String>,
    /// The agent the user approved to act with the tokens (RFC 8693 §4.4 `may_act`).
    pub may_act: Option<String>,
    /// RFC 9396 details approved for this request (JSON), for the access token.
    pub authorization_details: Option<String>,
}

pub fn insert_code(conn: &mut DbConnection, c: &CodeRow) -> Result<(), StorageError> {
    diesel::insert_into(authorization_codes::table)
        .values(c)
        .execute(conn)?;
    Ok(())
}

pub enum Consumed<T> {
    First(T),
    /// Used before: the row as it is, so the caller can revoke what it issued.
    Replayed(T),
    Unknown,
}

/// Marks the code used; the first caller gets `First`.
pub fn consume_code(conn: &mut DbConnection, hash: &str) -> Result<Consumed<CodeRow>, StorageError> {
    let n = diesel::update(
        authorization_codes::table
            .find(hash)
            .filter(authorization_codes::used.eq(false)),
    )
    .set(authorization_codes::used.eq(true))
    .execute(conn)?;
    let row = authorization_codes::table
        .find(hash)
        .select(CodeRow::as_select())
        .first(conn)
        .optional()?;
    Ok(match (n, row) {
        (1, Some(r)) => Consumed::First(r),
        (_, Some(r)) => Consumed::Replayed(r),
        (_, None) => Consumed::Unknown,
    })
}

/// What an issuance on behalf of a user claims, in the transaction that stores it.
#[derive(Debug, Clone, Copy)]
pub enum Claim<'a> {
    /// An authorization code (its hash), already consumed: what it issued is
    /// recorded, unless a replay has been seen meanwhile.
    Code(&'a str),
    /// A refresh token (its hash), consumed here: rotation and the new token's
    /// insertion are one step, so a replay racing with it sees the new token.
    Refresh(&'a str),
}

/// Stores an issuance in one transaction: the claim (see [`Claim`]), the new
/// refresh token if any, and the grant's last use. False (and nothing stored)
/// if the claim was lost: the code was replayed meanwhile, or the refresh token
/// was used or revoked. The caller then hands out nothing.
pub fn record_issue(
    conn: &mut DbConnection,
    claim: Claim<'_>,
    access_jti: &str,
    refresh: Option<&RefreshRow>,
    grant_id: &str,
    now: i64,
) -> Result<bool, StorageError> {
    conn.transaction(|conn| {
        let claimed = match claim {
            // A replay sets `replayed` first (and waits for this row's lock): either
            // it sees what is recorded here, or this update finds it replayed.
            Claim::Code(hash) => diesel::update(
                authorization_codes::table
                    .find(hash)
                    .filter(authorization_codes::replayed.eq(false)),
            )
            .set((
                authorization_codes::access_jti.eq(access_jti),
                authorization_codes::refresh_family.eq(refresh.map(|r| r.family_id.as_str())),
            ))
            .execute(conn)?,
            Claim::Refresh(hash) => diesel::update(
                refresh_tokens::table
                    .find(hash)
                    .filter(refresh_tokens::used.eq(false))
                    .filter(refresh_tokens::revoked.eq(false)),
            )
            .set(refresh_tokens::used.eq(true))
            .execute(conn)?,
        };
        if claimed != 1 {
            return Ok(false);
        }
        if let Some(r) = refresh {
            insert_refresh(conn, r)?;
        }
        super::grants::touch(conn, grant_id, now)?;
        Ok(true)
    })
}

/// A replayed code (RFC 6749 §4.1.2): marks it replayed and revokes what it
/// issued (its access token, its refresh-token family and the access tokens of
/// that family), logged, in one transaction. A redemption still in flight then
/// either was recorded before (and is revoked here) or finds the code replayed.
pub fn revoke_replayed_code(
    conn: &mut DbConnection,
    hash: &str,
    access_until: i64,
    now: i64,
) -> Result<Vec<super::revocation_log::Entry>, StorageError> {
    conn.transaction(|conn| {
        diesel::update(authorization_codes::table.find(hash))
            .set(authorization_codes::replayed.eq(true))
            .execute(conn)?;
        let issued: Option<(String, Option<String>, Option<String>)> = authorization_codes::table
            .find(hash)
            .select((
                authorization_codes::client_id,
                authorization_codes::access_jti,
                authorization_codes::refresh_family,
            ))
            .first(conn)
            .optional()?;
        let Some((client_id, jti, family)) = issued else {
            return Ok(Vec::new());
        };
        let mut jtis = Vec::new();
        if let Some(f) = family {
            jtis = super::revocations::revoke_family_unlogged(conn, &f, access_until, now)?;
        }
        if let Some(j) = jti {
            super::revocations::insert(conn, &j, &client_id, access_until, now)?;
            jtis.push(j);
        }
        let logged = super::revocations::tokens_until(jtis, access_until);
        super::revocation_log::append(conn, logged, now)
    })
}

pub fn delete_expired_codes(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.lt(before))).execute(conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub token_hash: String,
    pub family_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub access_jti: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used: bool,
    pub revoked: bool,
    /// Carried from the code to every rotation (RFC 8693 §4.4 `may_act`).
    pub may_act: Option<String>,
    /// RFC 9396 details of the family, carried to every rotation; a refresh may
    /// only narrow them for its access token (§6).
    pub authorization_details: Option<String>,
}

pub fn insert_refresh(conn: &mut DbConnection, r: &RefreshRow) -> Result<(), StorageError> {
    diesel::insert_into(refresh_tokens::table).values(r).execute(conn)?;
    Ok(())
}

pub fn get_refresh(conn: &mut DbConnection, hash: &str) -> Result<Option<RefreshRow>, StorageError> {
    Ok(refresh_tokens::table
        .find(hash)
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn delete_expired_refresh(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before))).execute(conn)?)
}
