//! Versioned Cedar policy sets and their activations. A new version or
//! activation takes the next number inside one transaction; two racing writers
//! collide on the primary key and one of them is told to try again.

use diesel::prelude::*;

use super::schema::{policy_activations, policy_versions};
use super::{DbConnection, StorageError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = policy_versions)]
pub struct PolicyVersion {
    pub version: i64,
    pub source: String,
    pub default_deny: bool,
    pub comment: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = policy_activations)]
pub struct Activation {
    pub seq: i64,
    pub version: i64,
    pub activated_at: i64,
}

/// Stores a new version (not active yet) and returns its number.
pub fn insert(
    conn: &mut DbConnection,
    source: &str,
    default_deny: bool,
    comment: &str,
    now: i64,
) -> Result<i64, StorageError> {
    conn.transaction(|c| {
        let last: Option<i64> = policy_versions::table
            .select(diesel::dsl::max(policy_versions::version))
            .first(c)?;
        let version = last.unwrap_or(0) + 1;
        diesel::insert_into(policy_versions::table)
            .values(PolicyVersion {
                version,
                source: source.to_owned(),
                default_deny,
                comment: comment.to_owned(),
                created_at: now,
            })
            .execute(c)?;
        Ok(version)
    })
}

pub fn get(conn: &mut DbConnection, version: i64) -> Result<Option<PolicyVersion>, StorageError> {
    Ok(policy_versions::table
        .find(version)
        .select(PolicyVersion::as_select())
        .first(conn)
        .optional()?)
}

/// Every version, newest first, without their sources.
pub fn list(conn: &mut DbConnection) -> Result<Vec<(i64, bool, String, i64)>, StorageError> {
    Ok(policy_versions::table
        .order(policy_versions::version.desc())
        .select((
            policy_versions::version,
            policy_versions::default_deny,
            policy_versions::comment,
            policy_versions::created_at,
        ))
        .load(conn)?)
}

/// Makes `version` the active one. False if there is no such version.
pub fn activate(conn: &mut DbConnection, version: i64, now: i64) -> Result<bool, StorageError> {
    conn.transaction(|c| {
        if get(c, version)?.is_none() {
            return Ok(false);
        }
        let last: Option<i64> = policy_activations::table
            .select(diesel::dsl::max(policy_activations::seq))
            .first(c)?;
        diesel::insert_into(policy_activations::table)
            .values((
                policy_activations::seq.eq(last.unwrap_or(0) + 1),
                policy_activations::version.eq(version),
                policy_activations::activated_at.eq(now),
            ))
            .execute(c)?;
        Ok(true)
    })
}

/// The active version: that of the latest activation (one indexed read).
pub fn active_version(conn: &mut DbConnection) -> Result<Option<i64>, StorageError> {
    Ok(policy_activations::table
        .order(policy_activations::seq.desc())
        .select(policy_activations::version)
        .first(conn)
        .optional()?)
}

/// Activations, newest first (for rollback and the history).
pub fn activations(conn: &mut DbConnection, limit: i64) -> Result<Vec<Activation>, StorageError> {
    Ok(policy_activations::table
        .order(policy_activations::seq.desc())
        .limit(limit)
        .select(Activation::as_select())
        .load(conn)?)
}
