//! Signing keys. The private JWK is stored sealed under the key-encryption key
//! (see [`crate::tokens::at_rest`]); this module stores what it is given.

use diesel::prelude::*;

use super::schema::signing_keys;
use super::{DbConnection, StorageError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

/// Keys still worth publishing at `now`: active ones and retired ones whose tokens may live.
pub fn published(conn: &mut DbConnection, now: i64) -> Result<Vec<KeyRow>, StorageError> {
    Ok(signing_keys::table
        .filter(
            signing_keys::publish_until
                .is_null()
                .or(signing_keys::publish_until.gt(now)),
        )
        .order(signing_keys::created_at.asc())
        .select(KeyRow::as_select())
        .load(conn)?)
}

pub fn all(conn: &mut DbConnection) -> Result<Vec<KeyRow>, StorageError> {
    Ok(signing_keys::table
        .order(signing_keys::created_at.asc())
        .select(KeyRow::as_select())
        .load(conn)?)
}

pub fn insert(conn: &mut DbConnection, row: &KeyRow) -> Result<(), StorageError> {
    diesel::insert_into(signing_keys::table).values(row).execute(conn)?;
    Ok(())
}

/// Retires every active key of `alg`, keeping it published until `publish_until`.
pub fn retire_active(conn: &mut DbConnection, alg: &str, now: i64, publish_until: i64) -> Result<usize, StorageError> {
    Ok(diesel::update(
        signing_keys::table
            .filter(signing_keys::alg.eq(alg))
            .filter(signing_keys::retired_at.is_null()),
    )
    .set((
        signing_keys::retired_at.eq(now),
        signing_keys::publish_until.eq(publish_until),
    ))
    .execute(conn)?)
}

/// A cheap fingerprint of the key table, so running servers notice a rotation.
pub fn fingerprint(conn: &mut DbConnection) -> Result<(i64, Option<i64>, Option<i64>), StorageError> {
    use diesel::dsl::{count_star, max};
    let (n, newest) = signing_keys::table
        .select((count_star(), max(signing_keys::created_at)))
        .first::<(i64, Option<i64>)>(conn)?;
    let retired = signing_keys::table
        .select(max(signing_keys::retired_at))
        .first::<Option<i64>>(conn)?;
    Ok((n, newest, retired))
}

/// Replaces a key's stored (sealed) private JWK.
pub fn set_private(conn: &mut DbConnection, kid: &str, sealed: &str) -> Result<(), StorageError> {
    diesel::update(signing_keys::table.find(kid))
        .set(signing_keys::private_jwk.eq(sealed))
        .execute(conn)?;
    Ok(())
}
