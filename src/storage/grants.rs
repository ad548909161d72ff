//! Consent grants and their revocation.

use diesel::prelude::*;

use super::kill_switches::Kind;
use super::revocation_log::{self, Entry, Logged};
use super::schema::{grants, revoked_grants};
use super::{DbConnection, StorageError};
use crate::domain::{AuthorizationDetails, ClientId, Grant, GrantStatus, ResourceUri, Scope, UserId};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
struct GrantRow {
    grant_id: String,
    user_id: String,
    client_id: String,
    scope: String,
    resources: String,
    status: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    agents: String,
    authorization_details: Option<String>,
}

impl TryFrom<GrantRow> for Grant {
    type Error = StorageError;
    fn try_from(r: GrantRow) -> Result<Grant, StorageError> {
        let corrupt = |w: &str| StorageError::Corrupt(format!("grant row: {w}"));
        let resources: Vec<String> = serde_json::from_str(&r.resources).map_err(|_| corrupt("resources"))?;
        Ok(Grant {
            id: r.grant_id,
            user_id: UserId::from_stored(r.user_id),
            client_id: ClientId::parse(&r.client_id).map_err(|_| corrupt("client_id"))?,
            scope: Scope::parse(&r.scope).map_err(|_| corrupt("scope"))?,
            resources: resources
                .iter()
                .map(|s| ResourceUri::parse(s).map_err(|_| corrupt("resource")))
                .collect::<Result<_, _>>()?,
            status: if r.status == "active" {
                GrantStatus::Active
            } else {
                GrantStatus::Revoked
            },
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            agents: serde_json::from_str(&r.agents).map_err(|_| corrupt("agents"))?,
            authorization_details: r
                .authorization_details
                .as_deref()
                .map(AuthorizationDetails::parse)
                .transpose()
                .map_err(|_| corrupt("authorization_details"))?,
        })
    }
}

pub fn insert(conn: &mut DbConnection, g: &Grant) -> Result<(), StorageError> {
    let resources: Vec<&str> = g.resources.iter().map(|r| r.as_str()).collect();
    diesel::insert_into(grants::table)
        .values(GrantRow {
            grant_id: g.id.clone(),
            user_id: g.user_id.as_str().to_owned(),
            client_id: g.client_id.as_str().to_owned(),
            scope: g.scope.to_string(),
            resources: serde_json::Value::from(resources).to_string(),
            status: g.status.as_str().to_owned(),
            created_at: g.created_at,
            expires_at: g.expires_at,
            last_used_at: g.last_used_at,
            revoked_at: None,
            agents: serde_json::Value::from(g.agents.clone()).to_string(),
            authorization_details: g.authorization_details.as_ref().map(|d| d.to_value().to_string()),
        })
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<Grant>, StorageError> {
    grants::table
        .find(id)
        .select(GrantRow::as_select())
        .first(conn)
        .optional()?
        .map(Grant::try_from)
        .transpose()
}

/// The user's active, unexpired grants to `client`, newest first.
pub fn active_for(
    conn: &mut DbConnection,
    user: &UserId,
    client: &ClientId,
    now: i64,
) -> Result<Vec<Grant>, StorageError> {
    grants::table
        .filter(grants::user_id.eq(user.as_str()))
        .filter(grants::client_id.eq(client.as_str()))
        .filter(grants::status.eq("active"))
        .filter(grants::expires_at.gt(now))
        .order(grants::created_at.desc())
        .select(GrantRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Grant::try_from)
        .collect()
}

/// Every grant of the user that is active and unexpired, newest first.
pub fn list_active_for_user(conn: &mut DbConnection, user: &UserId, now: i64) -> Result<Vec<Grant>, StorageError> {
    grants::table
        .filter(grants::user_id.eq(user.as_str()))
        .filter(grants::status.eq("active"))
        .filter(grants::expires_at.gt(now))
        .order(grants::created_at.desc())
        .select(GrantRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Grant::try_from)
        .collect()
}

pub fn touch(conn: &mut DbConnection, id: &str, now: i64) -> Result<(), StorageError> {
    diesel::update(grants::table.find(id))
        .set(grants::last_used_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Marks the grant revoked and records (and logs) the revocation until `until`
/// (when every token it could have issued has expired), in one transaction.
/// Returns whether it was active, and the log entry.
pub fn revoke(conn: &mut DbConnection, id: &str, now: i64, until: i64) -> Result<(bool, Vec<Entry>), StorageError> {
    conn.transaction(|conn| {
        let (was_active, change) = revoke_unlogged(conn, id, now, until)?;
        let logged = revocation_log::append(conn, vec![change], now)?;
        Ok((was_active, logged))
    })
}

/// [`revoke`] without the log entry, which it returns: for a caller that logs
/// more in the same transaction (the head row is taken once, last).
pub(super) fn revoke_unlogged(
    conn: &mut DbConnection,
    id: &str,
    now: i64,
    until: i64,
) -> Result<(bool, Logged), StorageError> {
    let n = diesel::update(grants::table.find(id).filter(grants::status.eq("active")))
        .set((grants::status.eq("revoked"), grants::revoked_at.eq(now)))
        .execute(conn)?;
    record_revoked(conn, id, now, until)?;
    Ok((
        n == 1,
        Logged::Grant {
            grant_id: id.to_owned(),
            expires_at: until,
        },
    ))
}

/// Withdraws every grant still standing of a user or of a client, each until its tokens could have expired (its own expiry,
/// and a minute for skew); returns the log entries to append.
pub(super) fn revoke_all_unlogged(
    conn: &mut DbConnection,
    of: Kind,
    value: &str,
    now: i64,
) -> Result<Vec<Logged>, StorageError> {
    let standing = grants::table.filter(grants::status.eq("active"));
    let rows: Vec<(String, i64)> = if of == Kind::Client {
        standing
            .filter(grants::client_id.eq(value))
            .select((grants::grant_id, grants::expires_at))
            .load(conn)?
    } else {
        standing
            .filter(grants::user_id.eq(value))
            .select((grants::grant_id, grants::expires_at))
            .load(conn)?
    };
    rows.into_iter()
        .map(|(id, expires_at)| Ok(revoke_unlogged(conn, &id, now, expires_at.max(now) + 60)?.1))
        .collect()
}

/// Records a grant id as revoked.
fn record_revoked(conn: &mut DbConnection, id: &str, now: i64, until: i64) -> Result<(), StorageError> {
    // In its own savepoint: on PostgreSQL a refused insert would abort the
    // enclosing transaction.
    let res = conn.transaction(|conn| {
        diesel::insert_into(revoked_grants::table)
            .values((
                revoked_grants::grant_id.eq(id),
                revoked_grants::revoked_at.eq(now),
                revoked_grants::expires_at.eq(until),
            ))
            .execute(conn)
    });
    match res.map_err(StorageError::from) {
        Ok(_) | Err(StorageError::Duplicate) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn is_revoked(conn: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    use diesel::dsl::exists;
    Ok(diesel::select(exists(revoked_grants::table.find(id))).get_result(conn)?)
}

pub fn live_revoked(conn: &mut DbConnection, now: i64) -> Result<Vec<(String, i64)>, StorageError> {
    Ok(revoked_grants::table
        .filter(revoked_grants::expires_at.gt(now))
        .select((revoked_grants::grant_id, revoked_grants::expires_at))
        .load(conn)?)
}

pub fn delete_expired_revocations(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(revoked_grants::table.filter(revoked_grants::expires_at.lt(before))).execute(conn)?)
}
