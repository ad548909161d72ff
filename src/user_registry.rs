//! Creating and updating users from a declarative description (CLI, import).

use serde::Deserialize;

use crate::client_auth::{hash_secret, verify_secret};
use crate::domain::user::{validate_password, validate_username};
use crate::domain::{User, UserId};
use crate::storage::{users, DbConnection, StorageError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: String,
    /// Plain password; only its argon2id hash is stored.
    pub password: String,
    #[serde(default)]
    pub disabled: bool,
    /// Groups policies may test (`context.user.groups.contains("finance")`).
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {username}: {reason}")]
    Invalid { username: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates the user, or updates the one with the same username (keeping its id,
/// and its password hash when the password did not change). Returns true if created.
pub fn upsert(conn: &mut DbConnection, spec: &UserSpec, now: i64) -> Result<bool, UserError> {
    let invalid = |reason: String| UserError::Invalid {
        username: spec.username.clone(),
        reason,
    };
    validate_username(&spec.username).map_err(invalid)?;
    validate_password(&spec.password).map_err(invalid)?;
    if spec.email.len() > 254 || (!spec.email.is_empty() && !spec.email.contains('@')) {
        return Err(invalid("email is not an address".into()));
    }
    crate::domain::user::validate_groups(&spec.groups).map_err(invalid)?;
    let existing = users::by_username(conn, &spec.username)?;
    let password_hash = match &existing {
        Some(u) if verify_secret(&spec.password, &u.password_hash) => u.password_hash.clone(),
        _ => hash_secret(&spec.password).map_err(invalid)?,
    };
    let user = User {
        id: existing.as_ref().map(|u| u.id.clone()).unwrap_or_else(UserId::generate),
        username: spec.username.clone(),
        display_name: spec.display_name.clone().unwrap_or_else(|| spec.username.clone()),
        email: spec.email.clone(),
        password_hash,
        disabled: spec.disabled,
        created_at: now,
        groups: spec.groups.clone(),
    };
    match existing {
        None => {
            users::insert(conn, &user, now)?;
            Ok(true)
        }
        Some(old)
            if old.display_name == user.display_name
                && old.email == user.email
                && old.password_hash == user.password_hash
                && old.disabled == user.disabled
                && old.groups == user.groups =>
        {
            Ok(false)
        }
        Some(old) => {
            users::update(conn, &user, now)?;
            // The same capability as `deputy user disable|enable`: a disabled
            // user's tokens, consents, refresh tokens and sessions end; enabling
            // revives nothing. Logged for Redis in the import's transaction.
            match (old.disabled, user.disabled) {
                (false, true) => drop(users::disable(conn, &user.username, now)?),
                (true, false) => drop(users::enable(conn, &user.username, now)?),
                _ => {}
            }
            Ok(false)
        }
    }
}
