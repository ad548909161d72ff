//! The audit trail: every decision (issued, denied, revoked, consent given or
//! withdrawn, agent suspended) is appended durably before the answer is sent.

use crate::storage::audit::{self, AuditEvent};
use crate::storage::Db;

/// Appends one event. A failure is logged loudly; the decision it records has
/// already been made and is not undone.
pub async fn record(db: &Db, mut event: AuditEvent) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    event.id = crate::tokens::random_id();
    event.at = now / 1_000_000;
    event.seq = now;
    let e = event.clone();
    if let Err(err) = db.run(move |c| audit::append(c, std::slice::from_ref(&e))).await {
        tracing::error!(error = %err, event = %event.event, decision = %event.decision, "AUDIT WRITE FAILED");
        metrics::counter!("deputy_audit_write_failures_total").increment(1);
    }
}
