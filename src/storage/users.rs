//! Users (people who sign in) and their sign-in history.

use diesel::prelude::*;

use super::agents::SUSPENDED;
use super::kill_switches::{self, Kind};
use super::revocation_log::{self, Entry, Logged};
use super::schema::{refresh_tokens, sign_ins, users};
use super::{grants, sessions, DbConnection, StorageError};
use crate::domain::{User, UserId};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = users)]
struct UserRow {
    user_id: String,
    username: String,
    display_name: String,
    email: String,
    password_hash: String,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
    /// JSON array of group names.
    groups: String,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: UserId::from_stored(r.user_id),
            username: r.username,
            display_name: r.display_name,
            email: r.email,
            password_hash: r.password_hash,
            disabled: r.disabled,
            created_at: r.created_at,
            // Written only from a Vec<String> below; an unreadable value is no group.
            groups: serde_json::from_str(&r.groups).unwrap_or_default(),
        }
    }
}

pub fn insert(conn: &mut DbConnection, u: &User, now: i64) -> Result<(), StorageError> {
    diesel::insert_into(users::table)
        .values(UserRow {
            user_id: u.id.as_str().to_owned(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            password_hash: u.password_hash.clone(),
            disabled: u.disabled,
            created_at: now,
            updated_at: now,
            groups: serde_json::Value::from(u.groups.clone()).to_string(),
        })
        .execute(conn)?;
    Ok(())
}

/// Updates the profile, password hash and disabled flag of an existing user.
pub fn update(conn: &mut DbConnection, u: &User, now: i64) -> Result<(), StorageError> {
    diesel::update(users::table.find(u.id.as_str()))
        .set((
            users::display_name.eq(&u.display_name),
            users::email.eq(&u.email),
            users::password_hash.eq(&u.password_hash),
            users::disabled.eq(u.disabled),
            users::groups.eq(serde_json::Value::from(u.groups.clone()).to_string()),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sets the groups policies see. False if there is no such user.
pub fn set_groups(conn: &mut DbConnection, username: &str, groups: &[String], now: i64) -> Result<bool, StorageError> {
    Ok(diesel::update(users::table.filter(users::username.eq(username)))
        .set((
            users::groups.eq(serde_json::Value::from(groups.to_vec()).to_string()),
            users::updated_at.eq(now),
        ))
        .execute(conn)?
        == 1)
}

pub fn by_username(conn: &mut DbConnection, username: &str) -> Result<Option<User>, StorageError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(User::from))
}

pub fn by_id(conn: &mut DbConnection, id: &UserId) -> Result<Option<User>, StorageError> {
    Ok(users::table
        .find(id.as_str())
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(User::from))
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<User>, StorageError> {
    Ok(users::table
        .order(users::username)
        .select(UserRow::as_select())
        .load(conn)?
        .into_iter()
        .map(User::from)
        .collect())
}

fn set_disabled(
    conn: &mut DbConnection,
    username: &str,
    disabled: bool,
    now: i64,
) -> Result<Option<String>, StorageError> {
    let id: Option<String> = users::table
        .filter(users::username.eq(username))
        .select(users::user_id)
        .first(conn)
        .optional()?;
    if let Some(id) = &id {
        diesel::update(users::table.find(id))
            .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
            .execute(conn)?;
    }
    Ok(id)
}

/// Disables a user, in one transaction: they cannot sign in; their kill switch
/// is set (every token naming them as `sub`, through any exchange, is revoked,
/// and stays so after an enable); their consents are withdrawn, their refresh
/// tokens revoked and their sessions ended; all of it logged for Redis.
/// `None` if there is no such user.
pub fn disable(
    conn: &mut DbConnection,
    username: &str,
    now: i64,
) -> Result<Option<(UserId, Vec<Entry>)>, StorageError> {
    conn.transaction(|conn| {
        let Some(id) = set_disabled(conn, username, true, now)? else {
            return Ok(None);
        };
        let mut changes = vec![kill_switches::set(conn, Kind::User, &id, SUSPENDED)?];
        changes.extend(grants::revoke_all_unlogged(conn, Kind::User, &id, now)?);
        diesel::update(refresh_tokens::table.filter(refresh_tokens::user_id.eq(&id)))
            .set(refresh_tokens::revoked.eq(true))
            .execute(conn)?;
        sessions::end_all(conn, &id, now)?;
        let logged = revocation_log::append(conn, changes, now)?;
        Ok(Some((UserId::from_stored(id), logged)))
    })
}

/// Enables a user: they may sign in again; nothing issued before (up to this
/// second) is revived. `None` if there is no such user.
pub fn enable(conn: &mut DbConnection, username: &str, now: i64) -> Result<Option<(UserId, Vec<Entry>)>, StorageError> {
    conn.transaction(|conn| {
        let Some(id) = set_disabled(conn, username, false, now)? else {
            return Ok(None);
        };
        let changes: Vec<Logged> = kill_switches::lift(conn, Kind::User, &id, now)?.into_iter().collect();
        let logged = revocation_log::append(conn, changes, now)?;
        Ok(Some((UserId::from_stored(id), logged)))
    })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sign_ins)]
pub struct SignIn {
    pub id: String,
    pub user_id: Option<String>,
    pub username: String,
    pub succeeded: bool,
    pub ip: String,
    pub user_agent: String,
    pub at: i64,
}

pub fn record_sign_in(conn: &mut DbConnection, s: &SignIn) -> Result<(), StorageError> {
    diesel::insert_into(sign_ins::table)
        .values((
            sign_ins::id.eq(&s.id),
            sign_ins::user_id.eq(&s.user_id),
            sign_ins::username.eq(&s.username),
            sign_ins::succeeded.eq(s.succeeded),
            sign_ins::ip.eq(&s.ip),
            sign_ins::user_agent.eq(&s.user_agent),
            sign_ins::at.eq(s.at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn recent_sign_ins(conn: &mut DbConnection, user: &UserId, limit: i64) -> Result<Vec<SignIn>, StorageError> {
    Ok(sign_ins::table
        .filter(sign_ins::user_id.eq(user.as_str()))
        .order(sign_ins::at.desc())
        .limit(limit)
        .select(SignIn::as_select())
        .load(conn)?)
}
