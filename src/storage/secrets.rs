//! Server-wide secrets generated on first start and shared by every instance.

use diesel::prelude::*;

use super::schema::server_secrets;
use super::{DbConnection, StorageError};

/// Returns the secret `name`, creating it with `make()` if absent. Two instances
/// starting at once agree: the loser of the insert reads the winner's value.
pub fn get_or_create(
    conn: &mut DbConnection,
    name: &str,
    now: i64,
    make: impl FnOnce() -> String,
) -> Result<String, StorageError> {
    let read = |conn: &mut DbConnection| -> Result<Option<String>, StorageError> {
        Ok(server_secrets::table
            .find(name)
            .select(server_secrets::value)
            .first(conn)
            .optional()?)
    };
    if let Some(v) = read(conn)? {
        return Ok(v);
    }
    let res = diesel::insert_into(server_secrets::table)
        .values((
            server_secrets::name.eq(name),
            server_secrets::value.eq(make()),
            server_secrets::created_at.eq(now),
        ))
        .execute(conn);
    match res.map_err(StorageError::from) {
        Ok(_) | Err(StorageError::Duplicate) => {}
        Err(e) => return Err(e),
    }
    read(conn)?.ok_or_else(|| StorageError::Corrupt(format!("secret {name} vanished")))
}

/// Every secret, by name (for re-sealing them under a new key-encryption key).
pub fn all(conn: &mut DbConnection) -> Result<Vec<(String, String)>, StorageError> {
    Ok(server_secrets::table
        .select((server_secrets::name, server_secrets::value))
        .load(conn)?)
}

/// Replaces a secret's stored value.
pub fn set(conn: &mut DbConnection, name: &str, value: &str) -> Result<(), StorageError> {
    diesel::update(server_secrets::table.find(name))
        .set(server_secrets::value.eq(value))
        .execute(conn)?;
    Ok(())
}
