//! The revocation log (STANDARDS rule 9): every revocation, consent withdrawal
//! and kill-switch change as a numbered row, appended in the same transaction as
//! the change itself. It is the outbox Redis is filled from, by any instance.
//!
//! Numbers are handed out by one head row that each writer updates: the row
//! stays locked until the writer commits, so numbers follow commit order and a
//! reader that sees head `n` sees every row up to `n` (none still in flight).

use diesel::prelude::*;

use super::agents::KillSwitch;
use super::kill_switches::Kind;
use super::schema::{revocation_log, revocation_log_head};
use super::{DbConnection, StorageError};

/// What a log row asks Redis to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// A token (`jti`) revoked until its expiry.
    Token { jti: String, expires_at: i64 },
    /// A consent grant withdrawn, until the last token it covers expires.
    Grant { grant_id: String, expires_at: i64 },
    /// An agent's kill switch, kept without expiry.
    Agent { agent_id: String, kill_switch: KillSwitch },
    /// A user's or a client's kill switch, kept without expiry.
    Switch {
        kind: Kind,
        subject: String,
        kill_switch: KillSwitch,
    },
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub logged: Logged,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = revocation_log)]
struct Row {
    seq: i64,
    kind: String,
    subject: String,
    expires_at: i64,
    generation: i64,
    revoked_before: i64,
    created_at: i64,
}

impl Row {
    fn new(seq: i64, logged: &Logged, now: i64) -> Row {
        let (kind, subject, expires_at, k) = match logged {
            Logged::Token { jti, expires_at } => ("jti", jti, *expires_at, None),
            Logged::Grant { grant_id, expires_at } => ("grant", grant_id, *expires_at, None),
            Logged::Agent { agent_id, kill_switch } => ("agent", agent_id, i64::MAX, Some(kill_switch)),
            Logged::Switch {
                kind,
                subject,
                kill_switch,
            } => (kind.as_str(), subject, i64::MAX, Some(kill_switch)),
        };
        Row {
            seq,
            kind: kind.to_owned(),
            subject: subject.clone(),
            expires_at,
            generation: k.map_or(0, |k| k.generation),
            revoked_before: k.map_or(0, |k| k.before),
            created_at: now,
        }
    }
}

impl TryFrom<Row> for Entry {
    type Error = StorageError;
    fn try_from(r: Row) -> Result<Entry, StorageError> {
        let logged = match r.kind.as_str() {
            "jti" => Logged::Token {
                jti: r.subject,
                expires_at: r.expires_at,
            },
            "grant" => Logged::Grant {
                grant_id: r.subject,
                expires_at: r.expires_at,
            },
            "agent" => Logged::Agent {
                agent_id: r.subject,
                kill_switch: KillSwitch {
                    before: r.revoked_before,
                    generation: r.generation,
                },
            },
            "user" | "client" => Logged::Switch {
                kind: if r.kind == "user" { Kind::User } else { Kind::Client },
                subject: r.subject,
                kill_switch: KillSwitch {
                    before: r.revoked_before,
                    generation: r.generation,
                },
            },
            other => return Err(StorageError::Corrupt(format!("revocation log row of kind {other:?}"))),
        };
        Ok(Entry { seq: r.seq, logged })
    }
}

/// Appends `changes` to the log; call it inside the transaction that makes the
/// change, as its last statement (the head row stays locked until the commit).
pub fn append(conn: &mut DbConnection, changes: Vec<Logged>, now: i64) -> Result<Vec<Entry>, StorageError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        let n = changes.len() as i64;
        let taken = diesel::update(revocation_log_head::table.find(1))
            .set(revocation_log_head::seq.eq(revocation_log_head::seq + n))
            .execute(conn)?;
        if taken != 1 {
            return Err(StorageError::Corrupt("the revocation log has no head row".into()));
        }
        let last = head(conn)?;
        let rows: Vec<Row> = changes
            .iter()
            .zip(last - n + 1..)
            .map(|(c, seq)| Row::new(seq, c, now))
            .collect();
        // `MultiConnection` has no batch insert: each backend's own connection
        // does it (7 columns × 512 rows stays below both bind-parameter limits).
        for chunk in rows.chunks(512) {
            match conn {
                DbConnection::Sqlite(c) => diesel::insert_into(revocation_log::table).values(chunk).execute(c)?,
                DbConnection::Postgres(c) => diesel::insert_into(revocation_log::table).values(chunk).execute(c)?,
            };
        }
        Ok(changes
            .into_iter()
            .zip(last - n + 1..)
            .map(|(logged, seq)| Entry { seq, logged })
            .collect())
    })
}

/// The highest number handed out (0 for an empty log).
pub fn head(conn: &mut DbConnection) -> Result<i64, StorageError> {
    Ok(revocation_log_head::table
        .find(1)
        .select(revocation_log_head::seq)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// The head, and up to `limit` rows after `from` and not beyond that head, in
/// order. Rows pruned because every token they covered expired leave gaps that
/// need no mark.
pub fn after(conn: &mut DbConnection, from: i64, limit: i64) -> Result<(i64, Vec<Entry>), StorageError> {
    let head = head(conn)?;
    let rows: Vec<Row> = revocation_log::table
        .filter(revocation_log::seq.gt(from))
        .filter(revocation_log::seq.le(head))
        .order(revocation_log::seq)
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?;
    Ok((head, rows.into_iter().map(Entry::try_from).collect::<Result<_, _>>()?))
}

/// Drops rows whose tokens have all expired (kill switches stay).
pub fn delete_expired(conn: &mut DbConnection, before: i64) -> Result<usize, StorageError> {
    Ok(diesel::delete(revocation_log::table.filter(revocation_log::expires_at.lt(before))).execute(conn)?)
}
