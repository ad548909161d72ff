//! Argon2id verifications on a bounded pool (STANDARDS rule 11).
//!
//! One verification costs ~20 ms of a core and 19 MiB of memory. Run on
//! tokio's blocking pool (up to 512 threads), 200 connections with random
//! client ids grew a server from 100 MB to 3.7 GB and saturated every core. Here
//! at most `workers` verifications run at once, each on a thread of its own that
//! reuses one memory buffer (freed when the pool goes idle); at most `queue`
//! more wait; beyond that the caller hears [`Busy`] at once (503
//! `temporarily_unavailable` with `Retry-After`), instead of adding to the pile.
//!
//! Concurrent verifications of the same secret for the same party share one
//! computation ([`Argon2Pool::verify_shared`], single flight): a cold burst of a
//! client's requests, or a double-clicked sign-in, costs one verification.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// The pool is full: retry shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

struct Job {
    secret: String,
    phc: String,
    reply: oneshot::Sender<bool>,
    /// Decremented when the job is done (or dropped unrun).
    pending: Pending,
}

/// One admitted verification, counted in [`Argon2Pool::pending`] while it lives.
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One verification in progress, awaited by every request that needs its answer.
type Flight = Shared<BoxFuture<'static, Result<bool, Busy>>>;

pub struct Argon2Pool {
    jobs: SyncSender<Job>,
    /// Verifications running or waiting, and how many there may be.
    pending: Arc<AtomicUsize>,
    capacity: usize,
    /// Verifications in progress, by HMAC of (party, secret) under `flight_key`.
    flights: Mutex<HashMap<[u8; 32], Flight>>,
    /// A per-process random key, so the flight map holds no plain digest of a secret.
    flight_key: [u8; 32],
}

/// The largest memory cost accepted in a stored hash (256 MiB): a hash is never
/// verified with more, whatever its parameters say.
const MAX_BLOCKS: usize = 256 * 1024;

impl Argon2Pool {
    /// `workers` threads (at least one), and up to `queue` verifications waiting.
    pub fn new(workers: usize, queue: usize) -> Argon2Pool {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start an argon2 worker");
            }
        }
        let mut flight_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut flight_key);
        Argon2Pool {
            jobs,
            pending: Arc::new(AtomicUsize::new(0)),
            capacity: workers.max(1) + queue,
            flights: Mutex::new(HashMap::new()),
            flight_key,
        }
    }

    /// Verifies `secret` against `phc` for `party` (e.g. `client:{id}`), joining a
    /// verification of the same party and secret already in progress. `admit` is
    /// asked only when a new verification must start (limits count work, not
    /// waiters); its refusal is returned as is.
    pub async fn verify_shared<E>(
        &self,
        party: &str,
        secret: &str,
        phc: &str,
        admit: impl FnOnce() -> Result<(), E>,
    ) -> Result<Result<bool, Busy>, E> {
        let key = self.flight_key(party, secret);
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(&key) {
                Some(f) => f.clone(),
                None => {
                    admit()?;
                    let f = self.verify(secret.to_owned(), phc.to_owned()).boxed().shared();
                    flights.insert(key, f.clone());
                    f
                }
            }
        };
        let result = flight.clone().await;
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.get(&key).is_some_and(|f| f.ptr_eq(&flight)) {
            flights.remove(&key);
        }
        Ok(result)
    }

    /// Would a verification of `secret` for `party` be taken now: one is in
    /// progress to join, or there is room? Lets a caller refuse before it spends
    /// anything else (a database read) on a request the pool would refuse.
    pub fn can_accept(&self, party: &str, secret: &str) -> bool {
        if self.pending.load(Ordering::SeqCst) < self.capacity {
            return true;
        }
        let key = self.flight_key(party, secret);
        self.flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&key)
    }

    fn flight_key(&self, party: &str, secret: &str) -> [u8; 32] {
        // HMAC keys of any length are accepted, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.flight_key).expect("HMAC takes any key length");
        mac.update(party.as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Verifies `secret` against the PHC string `phc`, or says the pool is full.
    /// The job is queued at once (not when the future is first polled).
    pub fn verify(&self, secret: String, phc: String) -> impl std::future::Future<Output = Result<bool, Busy>> + Send {
        let (reply, answer) = oneshot::channel();
        self.pending.fetch_add(1, Ordering::SeqCst);
        let pending = Pending(Arc::clone(&self.pending));
        let sent = match self.jobs.try_send(Job {
            secret,
            phc,
            reply,
            pending,
        }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("deputy_argon2_refused_total").increment(1);
                Err(Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(Busy),
        };
        async move {
            sent?;
            answer.await.map_err(|_| Busy)
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let next = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            match rx.try_recv() {
                Ok(job) => Some(job),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    // Idle: give the buffer back before waiting.
                    blocks = Vec::new();
                    rx.recv().ok()
                }
            }
        };
        let Some(job) = next else { return };
        let ok = verify_with_memory(job.secret.as_bytes(), &job.phc, &mut blocks);
        drop(job.pending);
        let _ = job.reply.send(ok);
    }
}

/// Argon2 verification of `secret` against `phc` with a caller-owned memory
/// buffer (resized as the hash's parameters need), constant-time comparison.
pub fn verify_with_memory(secret: &[u8], phc: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let needed = params.block_count();
    if needed > MAX_BLOCKS {
        return false;
    }
    if blocks.len() != needed {
        blocks.resize(needed, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret, salt, &mut out, &mut blocks[..])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_auth::{hash_secret, DUMMY_PHC};

    #[test]
    fn verification_with_a_reused_buffer_matches_argon2() {
        let h = hash_secret("s3cret-0123456789").expect("hash");
        let mut blocks = Vec::new();
        assert!(verify_with_memory(b"s3cret-0123456789", &h, &mut blocks));
        assert!(!verify_with_memory(b"s3cret-0123456788", &h, &mut blocks));
        assert!(!verify_with_memory(b"", DUMMY_PHC, &mut blocks));
        assert!(!verify_with_memory(b"x", "not a phc string", &mut blocks));
    }

    #[tokio::test]
    async fn a_full_pool_refuses_at_once() {
        let pool = Argon2Pool::new(1, 1);
        let h = hash_secret("s3cret-0123456789").expect("hash");
        let jobs: Vec<_> = (0..8)
            .map(|_| pool.verify("s3cret-0123456789".into(), h.clone()))
            .collect();
        let results = futures_util::future::join_all(jobs).await;
        assert!(results.contains(&Ok(true)), "{results:?}");
        assert!(results.contains(&Err(Busy)), "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(true) | Err(Busy))));
        // Once drained, it verifies again.
        assert_eq!(pool.verify("nope".into(), h).await, Ok(false));
    }

    #[tokio::test]
    async fn concurrent_verifications_of_one_secret_share_one_computation() {
        // One worker and no queue: only one verification can be admitted at a time.
        let pool = Argon2Pool::new(1, 0);
        let h = hash_secret("s3cret-0123456789").expect("hash");
        let admitted = std::sync::atomic::AtomicUsize::new(0);
        let jobs = (0..16).map(|_| {
            pool.verify_shared("client:a", "s3cret-0123456789", &h, || {
                admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<(), ()>(())
            })
        });
        let results = futures_util::future::join_all(jobs).await;
        assert!(results.iter().all(|r| *r == Ok(Ok(true))), "{results:?}");
        assert_eq!(admitted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
