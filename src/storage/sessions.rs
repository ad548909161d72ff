//! Browser sessions, server-side. The encrypted session cookie carries a random
//! session id; only its SHA-256 is stored here. A session is good while its row
//! exists and is not ended: logging out, "sign out everywhere", ending it from
//! another session and disabling the user end it for every copy of the cookie.

use diesel::prelude::*;

use super::schema::sessions;
use super::{DbConnection, StorageError};

/// Ended sessions are kept this long (for the account page's history), then pruned.
pub const KEEP_ENDED_SECS: i64 = 7 * 24 * 3600;
/// `last_seen_at` is written at most this often per session (one write a
/// minute, not one per page).
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: String,
    pub user_agent: String,
    pub ended_at: Option<i64>,
}

pub fn insert(conn: &mut DbConnection, s: &SessionRow) -> Result<(), StorageError> {
    diesel::insert_into(sessions::table).values(s).execute(conn)?;
    Ok(())
}

/// The user of a session that has not ended, noting that it was seen now.
pub fn active_user(conn: &mut DbConnection, id_hash: &str, now: i64) -> Result<Option<String>, StorageError> {
    let user: Option<String> = sessions::table
        .find(id_hash)
        .filter(sessions::ended_at.is_null())
        .select(sessions::user_id)
        .first(conn)
        .optional()?;
    if user.is_some() {
        diesel::update(
            sessions::table
                .find(id_hash)
                .filter(sessions::last_seen_at.lt(now - TOUCH_EVERY_SECS)),
        )
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)?;
    }
    Ok(user)
}

/// Ends one session of `user_id`; false if it was not one of theirs still going.
pub fn end(conn: &mut DbConnection, id_hash: &str, user_id: &str, now: i64) -> Result<bool, StorageError> {
    Ok(diesel::update(
        sessions::table
            .find(id_hash)
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(conn)?
        == 1)
}

/// Ends a session, whoever's it is (logging out of it).
pub fn end_by_hash(conn: &mut DbConnection, id_hash: &str, now: i64) -> Result<(), StorageError> {
    diesel::update(sessions::table.find(id_hash).filter(sessions::ended_at.is_null()))
        .set(sessions::ended_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Ends every session of the user still going; returns how many.
pub fn end_all(conn: &mut DbConnection, user_id: &str, now: i64) -> Result<usize, StorageError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now))
    .execute(conn)?)
}

/// The user's sessions still going, most recently seen first.
pub fn list_active(conn: &mut DbConnection, user_id: &str) -> Result<Vec<SessionRow>, StorageError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::ended_at.is_null())
        .order(sessions::last_seen_at.desc())
        .limit(50)
        .select(SessionRow::as_select())
        .load(conn)?)
}

pub fn delete_ended(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(sessions::table.filter(sessions::ended_at.lt(before))).execute(conn)?)
}
