//! The audit trail: every decision (issued, denied, revoked, consent given or
//! withdrawn, agent suspended) is appended durably before the answer is sent.
//!
//! Writes are group-committed: callers hand their event to one writer task and
//! wait for it; the writer commits everything that queued up in one
//! transaction, then releases all the waiters. Nothing is answered before its
//! event is committed, and under load one commit serves many requests: while
//! events keep arriving (the writer is woken soon after its last commit) and
//! commits are quick, it gathers for [`LINGER`] before committing. Measured on one core: without
//! that, 95% of commits carried a single event and the audit cost half of an
//! exchange (BENCHMARKS.md).

use tokio::sync::{mpsc, oneshot};

use crate::storage::audit::{self, AuditEvent};
use crate::storage::Db;

type Job = (AuditEvent, oneshot::Sender<bool>);

#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
}

/// Most events committed in one transaction.
const BATCH: usize = 256;
/// How long a busy writer gathers events before committing (tokio's timer
/// resolution is 1 ms). An idle writer commits at once.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

impl AuditLog {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db) -> AuditLog {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            // When the last commit ended, and how long it took.
            let mut last_commit: Option<(tokio::time::Instant, std::time::Duration)> = None;
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                // Gather only if events keep coming and commits are quick (an embedded
                // database on a busy core): a slow commit (a database server's fsync)
                // already lets the next batch queue up while it runs.
                let busy = last_commit.is_some_and(|(t, took)| t.elapsed() < 2 * LINGER && took < LINGER);
                let deadline = tokio::time::Instant::now() + LINGER;
                while jobs.len() < BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) if busy => match tokio::time::timeout_at(deadline, rx.recv()).await {
                            Ok(Some(j)) => jobs.push(j),
                            _ => break,
                        },
                        Err(_) => break,
                    }
                }
                let events: Vec<AuditEvent> = jobs.iter().map(|(e, _)| e.clone()).collect();
                metrics::histogram!("deputy_audit_batch_events").record(events.len() as f64);
                let started = std::time::Instant::now();
                let written = write_batch(&db, events).await;
                let took = started.elapsed();
                metrics::histogram!("deputy_audit_commit_seconds").record(took.as_secs_f64());
                for ((_, done), ok) in jobs.into_iter().zip(written) {
                    let _ = done.send(ok);
                }
                last_commit = Some((tokio::time::Instant::now(), took));
            }
        });
        AuditLog { tx }
    }

    /// Appends one event and waits until it is committed. Returns false (and
    /// logs loudly) if it could not be written: the caller decides what that
    /// means (a token exchange then issues nothing; a revocation already made
    /// stands).
    pub async fn record(&self, event: AuditEvent) -> bool {
        let mut event = sanitized(event);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        event.id = crate::tokens::random_id();
        event.at = now / 1_000_000;
        event.seq = now;
        let (done, wait) = oneshot::channel();
        if self.tx.send((event, done)).await.is_err() {
            tracing::error!("AUDIT WRITER GONE");
            return false;
        }
        wait.await.unwrap_or(false)
    }
}

/// Commits a batch in one transaction; if that fails, each event alone (STANDARDS
/// rule 10: a value the database refuses fails its own request, never the others
/// that happened to share its commit). Returns, per event, whether it is committed.
pub async fn write_batch(db: &Db, events: Vec<AuditEvent>) -> Vec<bool> {
    let n = events.len();
    let batch = events.clone();
    let err = match db.run(move |c| audit::append(c, &batch)).await {
        Ok(()) => return vec![true; n],
        Err(err) => err,
    };
    if n == 1 {
        tracing::error!(error = %err, "AUDIT WRITE FAILED");
        metrics::counter!("deputy_audit_write_failures_total").increment(1);
        return vec![false];
    }
    tracing::warn!(error = %err, events = n, "audit batch refused; writing its events one by one");
    let written = db
        .run(move |c| {
            Ok(events
                .iter()
                .map(|e| audit::append(c, std::slice::from_ref(e)))
                .collect::<Vec<_>>())
        })
        .await;
    match written {
        Ok(each) => each
            .into_iter()
            .map(|r| match r {
                Ok(()) => true,
                Err(err) => {
                    tracing::error!(error = %err, "AUDIT WRITE FAILED");
                    metrics::counter!("deputy_audit_write_failures_total").increment(1);
                    false
                }
            })
            .collect(),
        Err(err) => {
            tracing::error!(error = %err, events = n, "AUDIT WRITE FAILED");
            metrics::counter!("deputy_audit_write_failures_total").increment(n as u64);
            vec![false; n]
        }
    }
}

/// The event with every control character in its text replaced by U+FFFD: the
/// edge refuses them in requests, and this keeps anything else that reaches
/// the audit text (an error's wording, a stored value) writable and readable.
pub fn sanitized(mut e: AuditEvent) -> AuditEvent {
    fn clean(s: &mut String) {
        if crate::form::has_control(s) {
            *s = s
                .chars()
                .map(|c| if crate::form::is_control(c) { '\u{fffd}' } else { c })
                .collect();
        }
    }
    for s in [&mut e.event, &mut e.decision] {
        clean(s);
    }
    for s in [
        &mut e.request_id,
        &mut e.reason,
        &mut e.agent_id,
        &mut e.chain,
        &mut e.user_id,
        &mut e.client_id,
        &mut e.scope,
        &mut e.audience,
        &mut e.authorization_details,
        &mut e.grant_id,
    ]
    .into_iter()
    .flatten()
    {
        clean(s);
    }
    e
}

/// One-off write for the CLI (no writer task there).
pub async fn record(db: &Db, event: AuditEvent) {
    let log = AuditLog::start(db.clone());
    log.record(event).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> AuditEvent {
        AuditEvent {
            id: id.into(),
            event: "token_exchange".into(),
            decision: "issued".into(),
            seq: 1,
            ..AuditEvent::default()
        }
    }

    #[tokio::test]
    async fn a_batch_with_one_refused_event_commits_all_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::connect(&dir.path().join("a.db").to_string_lossy(), 2).expect("db");
        assert_eq!(write_batch(&db, vec![event("taken")]).await, vec![true]);
        // The same id again: the database refuses that row (primary key), and only it.
        let written = write_batch(&db, vec![event("one"), event("taken"), event("two")]).await;
        assert_eq!(written, vec![true, false, true]);
        let stored = db
            .run(|c| audit::query(c, &audit::AuditFilter::default()))
            .await
            .expect("query");
        let mut ids: Vec<String> = stored.into_iter().map(|e| e.id).collect();
        ids.sort();
        assert_eq!(ids, vec!["one", "taken", "two"]);
    }

    #[test]
    fn control_characters_in_audit_text_are_replaced() {
        let e = sanitized(AuditEvent {
            reason: Some("bad\u{0}audience\n".into()),
            audience: Some("https://a\u{7f}".into()),
            ..event("x")
        });
        assert_eq!(e.reason.as_deref(), Some("bad\u{fffd}audience\u{fffd}"));
        assert_eq!(e.audience.as_deref(), Some("https://a\u{fffd}"));
        assert_eq!(e.event, "token_exchange");
    }
}
