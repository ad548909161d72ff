//! Issue 10, "How it is shown": a bounded soak of revocation under Redis faults.
//! Two instances of one deployment (same database, a private Redis behind a
//! cuttable proxy) take a modest, steady load for `DEPUTY_SOAK_SECS` seconds
//! (default 60 on PostgreSQL, 15 on SQLite): workers issue client_credentials
//! tokens on one instance, introspect them on the other, revoke them on either,
//! and then ask both instances until each calls the token inactive. Each
//! instance reaches Redis through a cuttable proxy of its own. Meanwhile a fault
//! script breaks Redis every few seconds, in turn: one instance's link cut (the
//! other keeps trusting a Redis that misses the cut one's revocations), the
//! other's, both, `CLIENT PAUSE WRITE`, `DEBUG SLEEP` past the timeout, and a
//! restart that loses everything.
//!
//! Staleness of a revocation: how long after its 200 the last `active: true`
//! answer about it arrived, from either instance. The stated window is 750 ms
//! (0 on the instance that served the revoke); the test holds the maximum to
//! under 1 s (250 ms of margin for a loaded 2-core machine: an answer is timed
//! at its arrival, not at the server's decision) and the serving instance to
//! zero. 5xx answers other than 503 `temporarily_unavailable` fail the test,
//! and so does a 503 more than 2 s away from a fault. A report is printed
//! (`--nocapture`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{CuttableProxy, PrivateRedis, RedisChoice};
use crate::revocation_kill::{post, Answer, RESOURCE, WINDOW};

const WORKERS: usize = 3;
/// A 503 this long after a fault ended still counts as the fault's.
const GRACE: Duration = Duration::from_secs(2);

fn soak_duration() -> Duration {
    let default = match crate::helpers::db_kind() {
        crate::helpers::DbKind::Postgres => 60,
        crate::helpers::DbKind::Sqlite => 15,
    };
    let secs = std::env::var("DEPUTY_SOAK_SECS")
        .ok()
        .map(|s| s.parse::<u64>().expect("DEPUTY_SOAK_SECS is a number of seconds"))
        .unwrap_or(default);
    Duration::from_secs(secs)
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    ok: AtomicU64,
    client_errors: AtomicU64,
    unavailable_in_fault: AtomicU64,
    unavailable_outside: AtomicU64,
    other_5xx: AtomicU64,
    no_answer: AtomicU64,
    /// A fresh or kept (never revoked) token called inactive.
    false_inactive: AtomicU64,
    /// The instance that served the revoke called the token active after its 200.
    serving_active: AtomicU64,
    revokes_unavailable: AtomicU64,
    never_inactive: AtomicU64,
    staleness: Mutex<Vec<Duration>>,
    revoked: Mutex<Vec<String>>,
    faults: Mutex<Vec<&'static str>>,
    /// When the last fault ended (`None` while one is on).
    fault_on: AtomicBool,
    fault_ended: Mutex<Option<Instant>>,
}

impl Stats {
    fn in_fault(&self) -> bool {
        self.fault_on.load(Ordering::SeqCst)
            || self
                .fault_ended
                .lock()
                .expect("lock")
                .is_some_and(|t| t.elapsed() < GRACE)
    }

    /// Counts the answer and returns it.
    fn count(&self, a: Answer) -> Answer {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match &a {
            Answer::Status(200..=299, _) => self.ok.fetch_add(1, Ordering::Relaxed),
            Answer::Status(400..=499, _) => self.client_errors.fetch_add(1, Ordering::Relaxed),
            Answer::Status(503, body) if body["error"] == "temporarily_unavailable" => {
                if self.in_fault() {
                    self.unavailable_in_fault.fetch_add(1, Ordering::Relaxed)
                } else {
                    eprintln!("soak: 503 outside a fault: {body}");
                    self.unavailable_outside.fetch_add(1, Ordering::Relaxed)
                }
            }
            Answer::Status(s, body) => {
                eprintln!("soak: unexpected {s}: {body}");
                self.other_5xx.fetch_add(1, Ordering::Relaxed)
            }
            Answer::Refused | Answer::Lost => self.no_answer.fetch_add(1, Ordering::Relaxed),
        };
        a
    }
}

struct Ctx {
    http: reqwest::Client,
    bases: [String; 2],
    svc: (String, String),
    stats: Stats,
    end: Instant,
}

impl Ctx {
    async fn call(&self, instance: usize, path: &str, params: &[(&str, &str)]) -> Answer {
        let a = post(&self.http, &self.bases[instance], path, &self.svc, params).await;
        self.stats.count(a)
    }

    async fn active(&self, instance: usize, token: &str) -> Option<bool> {
        match self.call(instance, "/introspect", &[("token", token)]).await {
            Answer::Status(200, body) => body["active"].as_bool(),
            _ => None,
        }
    }

    /// One worker: issue, introspect elsewhere, revoke, watch both instances.
    async fn worker(&self, w: usize) {
        let kept = loop {
            if let Answer::Status(200, body) = self
                .call(w % 2, "/token", &[("grant_type", "client_credentials")])
                .await
            {
                break body["access_token"].as_str().expect("access_token").to_owned();
            }
            assert!(Instant::now() < self.end, "worker {w} got no token");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut n = w;
        while Instant::now() < self.end {
            n += 1;
            let (issuer, other) = (n % 2, (n + 1) % 2);
            let serving = (n / 2) % 2;
            tokio::time::sleep(Duration::from_millis(20)).await;
            if self.active(n % 2, &kept).await == Some(false) {
                self.stats.false_inactive.fetch_add(1, Ordering::Relaxed);
            }
            let token = match self
                .call(issuer, "/token", &[("grant_type", "client_credentials")])
                .await
            {
                Answer::Status(200, body) => body["access_token"].as_str().expect("access_token").to_owned(),
                _ => continue,
            };
            if self.active(other, &token).await == Some(false) {
                self.stats.false_inactive.fetch_add(1, Ordering::Relaxed);
            }
            match self.call(serving, "/revoke", &[("token", &token)]).await {
                Answer::Status(200, _) => {}
                Answer::Status(503, _) => {
                    self.stats.revokes_unavailable.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                _ => continue,
            }
            let revoked = Instant::now();
            self.watch(&token, serving, revoked).await;
            self.stats.revoked.lock().expect("lock").push(token);
        }
    }

    /// Asks both instances (at once, every 20 ms, for at most 3 s) until each
    /// calls `token` inactive; records the staleness.
    async fn watch(&self, token: &str, serving: usize, revoked: Instant) {
        let mut last_active = [None::<Duration>; 2];
        let mut inactive = [false; 2];
        let deadline = revoked + 3 * WINDOW;
        while !(inactive[0] && inactive[1]) && Instant::now() < deadline {
            let (a0, a1) = tokio::join!(
                async {
                    if inactive[0] {
                        None
                    } else {
                        self.active(0, token).await
                    }
                },
                async {
                    if inactive[1] {
                        None
                    } else {
                        self.active(1, token).await
                    }
                },
            );
            let arrived = revoked.elapsed();
            for (i, a) in [a0, a1].into_iter().enumerate() {
                match a {
                    Some(true) => {
                        last_active[i] = Some(arrived);
                        if i == serving {
                            eprintln!(
                                "soak: the serving instance called a revoked token active {arrived:?} after the 200"
                            );
                            self.stats.serving_active.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(false) => inactive[i] = true,
                    None => {}
                }
            }
            if !(inactive[0] && inactive[1]) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if !(inactive[0] && inactive[1]) {
            self.stats.never_inactive.fetch_add(1, Ordering::Relaxed);
        }
        let staleness = last_active.into_iter().flatten().max().unwrap_or_default();
        self.stats.staleness.lock().expect("lock").push(staleness);
    }
}

/// Breaks Redis every few seconds until `end`, in turn six ways: each
/// instance's link cut alone (the other still trusts Redis, which misses the
/// cut one's revocations: the window at work), both links cut, writes paused,
/// Redis asleep past the timeout, Redis restarted empty.
async fn fault_script(redis: &PrivateRedis, proxies: &[CuttableProxy; 2], stats: &Stats, end: Instant) {
    let mut k = 0;
    while Instant::now() + Duration::from_secs(5) < end {
        tokio::time::sleep(Duration::from_secs(2)).await;
        stats.fault_on.store(true, Ordering::SeqCst);
        let cut = |which: &[usize]| {
            for &i in which {
                proxies[i].cut();
            }
        };
        let name = match k % 6 {
            0 | 1 => {
                cut(&[k % 2]);
                tokio::time::sleep(Duration::from_secs(2)).await;
                proxies[k % 2].restore();
                if k % 2 == 0 {
                    "instance 0's link cut 2 s"
                } else {
                    "instance 1's link cut 2 s"
                }
            }
            2 => {
                cut(&[0, 1]);
                tokio::time::sleep(Duration::from_secs(2)).await;
                proxies.iter().for_each(CuttableProxy::restore);
                "both links cut 2 s"
            }
            3 => {
                let _: () = redis.cmd(&["CLIENT", "PAUSE", "2000", "WRITE"]).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
                "CLIENT PAUSE 2000 WRITE"
            }
            4 => {
                let _: () = redis.cmd(&["DEBUG", "SLEEP", "1.5"]).await;
                "DEBUG SLEEP 1.5"
            }
            _ => {
                redis.shutdown_nosave().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                redis.restart().await;
                "restarted empty"
            }
        };
        *stats.fault_ended.lock().expect("lock") = Some(Instant::now());
        stats.fault_on.store(false, Ordering::SeqCst);
        stats.faults.lock().expect("lock").push(name);
        k += 1;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test]
async fn a_soak_under_redis_faults_keeps_every_revocation_within_the_window() {
    let duration = soak_duration();
    let redis = PrivateRedis::start().await;
    // Each instance reaches Redis through a proxy of its own, so that one can lose it alone.
    let proxies = [
        CuttableProxy::start(&redis.url()).await,
        CuttableProxy::start(&redis.url()).await,
    ];
    let app = crate::helpers::spawn_app_with(RedisChoice::At(proxies[0].url.clone()), |_| {}).await;
    let peer_url = proxies[1].url.clone();
    let peer = app.spawn_peer_with(|s| s.redis_url = Some(peer_url)).await;
    let svc = app.client("svc", "read", &[RESOURCE]).await;
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        bases: [app.address.clone(), peer.address.clone()],
        svc,
        stats: Stats::default(),
        end: started + duration,
    });

    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let ctx = ctx.clone();
        workers.spawn(async move { ctx.worker(w).await });
    }
    fault_script(&redis, &proxies, &ctx.stats, ctx.end).await;
    let hard_stop = ctx.end + Duration::from_secs(20);
    while let Some(done) = tokio::time::timeout_at(hard_stop.into(), workers.join_next())
        .await
        .expect("the workers stop within 20 s of the end")
    {
        done.expect("worker");
    }
    let elapsed = started.elapsed();

    // Afterwards, with Redis healthy: every revoked token (the last 300) is inactive on both.
    for p in &proxies {
        p.restore();
    }
    tokio::time::sleep(WINDOW).await;
    let revoked = ctx.stats.revoked.lock().expect("lock").clone();
    let recheck: Vec<&String> = revoked.iter().rev().take(300).collect();
    for t in &recheck {
        for i in 0..2 {
            assert_eq!(
                ctx.active(i, t).await,
                Some(false),
                "a revoked token after the soak, instance {i}"
            );
        }
    }

    let s = &ctx.stats;
    let mut staleness = s.staleness.lock().expect("lock").clone();
    staleness.sort();
    let max = staleness.last().copied().unwrap_or_default();
    let p99 = percentile(&staleness, 0.99);
    let p50 = percentile(&staleness, 0.5);
    let stale_count = staleness.iter().filter(|d| !d.is_zero()).count();
    let faults = s.faults.lock().expect("lock").clone();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    eprintln!(
        "soak report ({:?}, {elapsed:.1?}, {WORKERS} workers, 2 instances):\n  \
         faults: {} ({})\n  \
         requests: {} ({:.0}/s): {} 2xx, {} 4xx, {} 503 during faults, {} 503 outside, {} other 5xx, {} without answer\n  \
         revocations checked: {} ({} answered 503), rechecked after: {}\n  \
         staleness: max {max:?}, p99 {p99:?}, p50 {p50:?}; {stale_count} revocations ever seen active after their 200\n  \
         serving instance active after 200: {}; never inactive within 3 s: {}; live tokens called inactive: {}",
        crate::helpers::db_kind(),
        faults.len(),
        faults.join(", "),
        get(&s.requests),
        get(&s.requests) as f64 / elapsed.as_secs_f64(),
        get(&s.ok),
        get(&s.client_errors),
        get(&s.unavailable_in_fault),
        get(&s.unavailable_outside),
        get(&s.other_5xx),
        get(&s.no_answer),
        staleness.len(),
        get(&s.revokes_unavailable),
        recheck.len(),
        get(&s.serving_active),
        get(&s.never_inactive),
        get(&s.false_inactive),
    );
    assert!(staleness.len() >= 20, "enough revocations were checked");
    assert!(
        duration < Duration::from_secs(12) || !faults.is_empty(),
        "faults were injected"
    );
    assert!(max < WINDOW, "a revoked token was called active {max:?} after its 200");
    assert_eq!(
        get(&s.serving_active),
        0,
        "the serving instance never calls its revocation active"
    );
    assert_eq!(
        get(&s.never_inactive),
        0,
        "every revocation took effect on both instances"
    );
    assert_eq!(get(&s.other_5xx), 0, "no 5xx but 503 temporarily_unavailable");
    assert_eq!(get(&s.unavailable_outside), 0, "503 only during faults");
    assert_eq!(get(&s.no_answer), 0, "every request answered");
    assert_eq!(get(&s.false_inactive), 0, "live tokens stay active");
}
