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
                let n = events.len();
                metrics::histogram!("deputy_audit_batch_events").record(n as f64);
                let started = std::time::Instant::now();
                let written = db.run(move |c| audit::append(c, &events)).await;
                let took = started.elapsed();
                metrics::histogram!("deputy_audit_commit_seconds").record(took.as_secs_f64());
                let ok = match written {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::error!(error = %err, events = n, "AUDIT WRITE FAILED");
                        metrics::counter!("deputy_audit_write_failures_total").increment(n as u64);
                        false
                    }
                };
                for (_, done) in jobs {
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
    pub async fn record(&self, mut event: AuditEvent) -> bool {
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

/// One-off write for the CLI (no writer task there).
pub async fn record(db: &Db, event: AuditEvent) {
    let log = AuditLog::start(db.clone());
    log.record(event).await;
}
