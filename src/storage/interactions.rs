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

/// Records what a code issued, so that a replay can revoke it.
pub fn record_code_issue(
    conn: &mut DbConnection,
    hash: &str,
    access_jti: &str,
    refresh_family: Option<&str>,
) -> Result<(), StorageError> {
    diesel::update(authorization_codes::table.find(hash))
        .set((
            authorization_codes::access_jti.eq(access_jti),
            authorization_codes::refresh_family.eq(refresh_family),
        ))
        .execute(conn)?;
    Ok(())
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

/// Rotates a refresh token: the first caller gets `First`; a used or revoked
/// token is `Replayed`.
pub fn consume_refresh(conn: &mut DbConnection, hash: &str) -> Result<Consumed<RefreshRow>, StorageError> {
    let n = diesel::update(
        refresh_tokens::table
            .find(hash)
            .filter(refresh_tokens::used.eq(false))
            .filter(refresh_tokens::revoked.eq(false)),
    )
    .set(refresh_tokens::used.eq(true))
    .execute(conn)?;
    let row = refresh_tokens::table
        .find(hash)
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()?;
    Ok(match (n, row) {
        (1, Some(r)) => Consumed::First(r),
        (_, Some(r)) => Consumed::Replayed(r),
        (_, None) => Consumed::Unknown,
    })
}

pub fn get_refresh(conn: &mut DbConnection, hash: &str) -> Result<Option<RefreshRow>, StorageError> {
    Ok(refresh_tokens::table
        .find(hash)
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()?)
}

/// Revokes every refresh token of the family; returns the access-token `jti`s
/// they were issued with (and their expiry), for the caller to revoke.
pub fn revoke_family(conn: &mut DbConnection, family: &str) -> Result<Vec<String>, StorageError> {
    diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family)))
        .set(refresh_tokens::revoked.eq(true))
        .execute(conn)?;
    Ok(refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family))
        .select(refresh_tokens::access_jti)
        .load(conn)?)
}

pub fn delete_expired_refresh(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before))).execute(conn)?)
}
