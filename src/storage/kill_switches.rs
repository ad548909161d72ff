//! Kill switches for users and clients (agents keep theirs in
//! `agent_revocations`, see [`super::agents`]): a token naming the user as its
//! `sub`, or the client as its `client_id`, issued at or before the switch's
//! time is revoked. Each change bumps a generation and is logged for Redis, so
//! that a late copy never overwrites a newer change there.

use diesel::prelude::*;

use super::agents::{KillSwitch, SUSPENDED};
use super::revocation_log::Logged;
use super::schema::kill_switches;
use super::{DbConnection, StorageError};

/// Whose kill switch: a user (a token's `sub`) or a client (its `client_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Client,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Client => "client",
        }
    }
}

/// The switch of one subject, if it was ever set.
pub fn get(conn: &mut DbConnection, kind: Kind, subject: &str) -> Result<Option<KillSwitch>, StorageError> {
    let row: Option<(i64, i64)> = kill_switches::table
        .find((kind.as_str(), subject))
        .select((kill_switches::revoked_before, kill_switches::generation))
        .first(conn)
        .optional()?;
    Ok(row.map(|(before, generation)| KillSwitch { before, generation }))
}

/// The kill-switch time of one subject, if it was ever set.
pub fn revoked_before_one(conn: &mut DbConnection, kind: Kind, subject: &str) -> Result<Option<i64>, StorageError> {
    Ok(kill_switches::table
        .find((kind.as_str(), subject))
        .select(kill_switches::revoked_before)
        .first(conn)
        .optional()?)
}

/// Sets the switch to `before` (a newer generation) and returns what the
/// caller must append to the revocation log in the same transaction.
pub fn set(conn: &mut DbConnection, kind: Kind, subject: &str, before: i64) -> Result<Logged, StorageError> {
    let generation = match get(conn, kind, subject)? {
        Some(k) => {
            let generation = k.generation + 1;
            diesel::update(kill_switches::table.find((kind.as_str(), subject)))
                .set((
                    kill_switches::revoked_before.eq(before),
                    kill_switches::generation.eq(generation),
                ))
                .execute(conn)?;
            generation
        }
        None => {
            diesel::insert_into(kill_switches::table)
                .values((
                    kill_switches::kind.eq(kind.as_str()),
                    kill_switches::subject.eq(subject),
                    kill_switches::revoked_before.eq(before),
                    kill_switches::generation.eq(1),
                ))
                .execute(conn)?;
            1
        }
    };
    Ok(Logged::Switch {
        kind,
        subject: subject.to_owned(),
        kill_switch: KillSwitch { before, generation },
    })
}

/// Lifts a switch that is set to the end of time to `now` (what was issued
/// until then stays revoked); `None` if it was not set so.
pub fn lift(conn: &mut DbConnection, kind: Kind, subject: &str, now: i64) -> Result<Option<Logged>, StorageError> {
    match get(conn, kind, subject)? {
        Some(k) if k.before == SUSPENDED => Ok(Some(set(conn, kind, subject, now)?)),
        _ => Ok(None),
    }
}
