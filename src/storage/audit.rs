//! The append-only audit log.

use diesel::prelude::*;

use super::schema::audit_events;
use super::{DbConnection, StorageError};

#[derive(Debug, Clone, Default, Queryable, Selectable, Insertable, serde::Serialize)]
// Without this, diesel inserts rows with `None`s one by one on SQLite (as DEFAULT).
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub request_id: Option<String>,
    /// What happened: `token_exchange`, `consent_given`, `consent_withdrawn`, `agent_suspended`, …
    pub event: String,
    /// `issued`, `denied`, `revoked`, `given`, `withdrawn`, `suspended`, `resumed`.
    pub decision: String,
    pub reason: Option<String>,
    pub agent_id: Option<String>,
    /// The delegation chain, outermost actor first, as a JSON array of agent ids.
    pub chain: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub authorization_details: Option<String>,
    pub grant_id: Option<String>,
    /// Microseconds since the epoch: the order `deputy audit tail` follows.
    pub seq: i64,
    /// The policies that decided (a JSON array of ids), and the active set's version.
    pub policy_ids: Option<String>,
    pub policy_version: Option<i64>,
}

/// Appends a batch in one multi-row INSERT per chunk, in one transaction (one
/// commit). `MultiConnection` has no batch insert, so each backend's own
/// connection does it: per-row inserts cost half of an audited exchange.
pub fn append(conn: &mut DbConnection, events: &[AuditEvent]) -> Result<(), StorageError> {
    // 17 columns × 256 rows stays far below both backends' bind-parameter limits.
    const ROWS: usize = 256;
    match conn {
        DbConnection::Sqlite(c) => c.transaction(|c| {
            for chunk in events.chunks(ROWS) {
                diesel::insert_into(audit_events::table).values(chunk).execute(c)?;
            }
            Ok(())
        }),
        DbConnection::Postgres(c) => c.transaction(|c| {
            for chunk in events.chunks(ROWS) {
                diesel::insert_into(audit_events::table).values(chunk).execute(c)?;
            }
            Ok(())
        }),
    }
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct AuditFilter {
    pub agent: Option<String>,
    pub user: Option<String>,
    pub decision: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub after_seq: Option<i64>,
    /// With `after_seq`: the id of the last event seen, so that events of the same `seq` are not skipped.
    #[serde(default)]
    pub after_id: Option<String>,
    pub limit: Option<i64>,
    /// Newest first (for "the latest N"); oldest first otherwise.
    #[serde(default)]
    pub newest_first: bool,
}

pub fn query(conn: &mut DbConnection, f: &AuditFilter) -> Result<Vec<AuditEvent>, StorageError> {
    let mut q = audit_events::table.select(AuditEvent::as_select()).into_boxed();
    if let Some(a) = &f.agent {
        q = q.filter(audit_events::agent_id.eq(a.clone()));
    }
    if let Some(u) = &f.user {
        q = q.filter(audit_events::user_id.eq(u.clone()));
    }
    if let Some(d) = &f.decision {
        q = q.filter(audit_events::decision.eq(d.clone()));
    }
    if let Some(s) = f.since {
        q = q.filter(audit_events::at.ge(s));
    }
    if let Some(u) = f.until {
        q = q.filter(audit_events::at.le(u));
    }
    // Keyset paging over (seq, id): two events may share a microsecond.
    match (f.after_seq, &f.after_id) {
        (Some(s), Some(id)) => {
            q = q.filter(
                audit_events::seq
                    .gt(s)
                    .or(audit_events::seq.eq(s).and(audit_events::id.gt(id.clone()))),
            )
        }
        (Some(s), None) => q = q.filter(audit_events::seq.gt(s)),
        _ => {}
    }
    let q = if f.newest_first {
        q.order((audit_events::seq.desc(), audit_events::id.desc()))
    } else {
        q.order((audit_events::seq.asc(), audit_events::id.asc()))
    };
    Ok(q.limit(f.limit.unwrap_or(1000).clamp(1, 10_000)).load(conn)?)
}

/// Deletes the events older than `before` (the retention setting), at most
/// `limit` at a time so a large backlog never holds a long transaction.
pub fn delete_before(conn: &mut DbConnection, before: i64, limit: i64) -> Result<usize, StorageError> {
    let ids: Vec<String> = audit_events::table
        .filter(audit_events::at.lt(before))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(audit_events::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(audit_events::table.filter(audit_events::id.eq_any(ids))).execute(conn)?)
}
