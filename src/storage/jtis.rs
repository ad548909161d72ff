//! Single-use marks for assertion `jti`s (RFC 7523 §3, item 7). The primary key
//! makes "first use wins" atomic across every instance sharing the database.

use diesel::prelude::*;

use super::schema::used_jtis;
use super::{DbConnection, StorageError};

/// Returns true if this is the first use of `key`, false if it was used before.
pub fn consume(conn: &mut DbConnection, key: &str, expires_at: i64) -> Result<bool, StorageError> {
    let res = diesel::insert_into(used_jtis::table)
        .values((used_jtis::jti_key.eq(key), used_jtis::expires_at.eq(expires_at)))
        .execute(conn);
    match res.map_err(StorageError::from) {
        Ok(_) => Ok(true),
        Err(StorageError::Duplicate) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn delete_expired(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(used_jtis::table.filter(used_jtis::expires_at.lt(before))).execute(conn)?)
}
