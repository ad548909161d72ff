//! People who sign in. A user's subject (`sub`) is a UUID, and client ids may
//! not be UUIDs, so a user and a client can never share a subject (RFC 9700 §4.15).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> UserId {
        UserId(uuid::Uuid::new_v4().to_string())
    }

    /// An id read back from storage or from a token we issued.
    pub fn from_stored(s: String) -> UserId {
        UserId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    /// Groups an admin puts the user in, for policies (`context.user.groups`).
    pub groups: Vec<String>,
}

/// Groups: at most 64 names of 1–64 letters, digits and `._:-`.
pub fn validate_groups(groups: &[String]) -> Result<(), String> {
    let bad = |g: &String| {
        g.is_empty() || g.len() > 64 || !g.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    };
    if groups.len() > 64 || groups.iter().any(bad) {
        return Err("groups: at most 64 names of letters, digits and ._:-".into());
    }
    Ok(())
}

/// Usernames: 1–64 characters of letters, digits and `.-_@`.
pub fn validate_username(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err("username must be 1 to 64 characters".into());
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c)) {
        return Err("username may hold letters, digits and . - _ @ only".into());
    }
    Ok(())
}

pub fn validate_password(s: &str) -> Result<(), String> {
    if s.chars().count() < 8 {
        return Err("password must be at least 8 characters".into());
    }
    if s.len() > 1024 {
        return Err("password is longer than 1024 bytes".into());
    }
    Ok(())
}
