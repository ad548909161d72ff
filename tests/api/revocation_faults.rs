//! Issue 10: revocation that no Redis fault can lose. Two Deputy instances on
//! the same database and the same private Redis (a `redis-server` of the test's
//! own: these tests pause, sleep, snapshot, flush and stop it). They run on both
//! backends: the revocation log is in the database, whichever it is.
//!
//! The window: a revoked token may be reported active by another instance for
//! at most `HEAD_MAX_AGE` (750 ms) after the revocation's commit, and never by
//! the instance that served it. Each test checks that revoked tokens turn
//! inactive on both instances within 1 s and stay so (printing the window it
//! measured: run with `--nocapture`), and that an unrelated token stays active.

use std::time::{Duration, Instant};

use crate::authorize_errors::{authorize_in, code_of, pkce, redeem, refresh, rp, str_of, AuthRequest};
use crate::browser_flow::{seed, Browser};
use crate::helpers::{basic, CuttableProxy, PrivateRedis, RedisChoice, TestApp};
use crate::token_exchange::{exchange, world, World, API, EXCHANGE, PLANNER, REDIRECT};

/// The bound these tests hold the window to.
const WINDOW: Duration = Duration::from_secs(1);

/// Two instances of one deployment on `redis_url`.
async fn pair(redis_url: String) -> (TestApp, TestApp) {
    let app = crate::helpers::spawn_app_with(RedisChoice::At(redis_url), |_| {}).await;
    let peer = app.spawn_peer().await;
    (app, peer)
}

async fn active(app: &TestApp, caller: &(String, String), token: &str) -> bool {
    crate::authorize_errors::active(app, caller, token).await
}

/// Polls `tokens` on every instance, all at once, for `WINDOW` and a half after
/// `since`; panics if any is reported active later than `WINDOW` after `since`
/// or still at the end. Returns the window measured: how long after `since` the
/// last "active" answer arrived (zero if none did).
async fn inactive_everywhere_within_window(
    instances: &[&TestApp],
    caller: &(String, String),
    tokens: &[(&str, &str)],
    since: Instant,
) -> Duration {
    let until = since + WINDOW + WINDOW / 2;
    let mut polls = Vec::new();
    for (i, app) in instances.iter().enumerate() {
        for (name, token) in tokens {
            polls.push(async move {
                let mut last_active = None;
                let mut asked_after_window = false;
                while Instant::now() < until {
                    let asked = Instant::now();
                    if active(app, caller, token).await {
                        let at = asked.elapsed() + (asked - since);
                        assert!(
                            at < WINDOW,
                            "{name} reported active on instance {i} {at:?} after the revocation"
                        );
                        last_active = Some(at);
                    } else if asked >= since + WINDOW {
                        asked_after_window = true;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert!(asked_after_window, "{name} was asked on instance {i} after the window");
                last_active.unwrap_or_default()
            });
        }
    }
    futures_max(polls).await
}

async fn futures_max<F: std::future::Future<Output = Duration>>(fs: Vec<F>) -> Duration {
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut max = Duration::ZERO;
    for d in join_all(set).await {
        max = max.max(d);
    }
    max
}

/// Runs the futures concurrently on this task.
async fn join_all<F: std::future::Future + Unpin>(fs: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<F>> = fs.into_iter().map(Some).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match std::pin::Pin::new(f).poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Waits (up to 5 s) until `key` exists in the private Redis.
async fn until_in_redis(redis: &PrivateRedis, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.cmd::<i64>(&["EXISTS", key]).await == 0 {
        assert!(Instant::now() < deadline, "{key} did not reach Redis within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn jti_of(jwt: &str) -> String {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("claims");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url"),
    )
    .expect("JSON");
    claims["jti"].as_str().expect("jti").to_owned()
}

/// The planner's own client, allowed refresh tokens too.
async fn planner_with_refresh(w: &World) {
    w.app
        .import(&format!(
            "[[clients]]\nclient_id = \"planner-client\"\nclient_name = \"Trip planner\"\n\
             client_secret = \"{}\"\ngrant_types = [\"authorization_code\", \"refresh_token\", \"{EXCHANGE}\"]\n\
             redirect_uris = [\"{REDIRECT}\"]\nscope = \"openid offline_access read write\"\nresources = [\"{API}\"]\n",
            PLANNER.1
        ))
        .await;
}

#[tokio::test]
async fn a_refresh_replay_while_redis_pauses_writes_revokes_the_family_and_its_exchanges_on_every_instance() {
    let redis = PrivateRedis::start().await;
    let w = world(RedisChoice::At(redis.url())).await;
    planner_with_refresh(&w).await;
    let peer = w.app.spawn_peer().await;
    let planner = (PLANNER.0.to_owned(), PLANNER.1.to_owned());
    let unrelated_client = w.app.client("svc", "read", &[API]).await;
    let unrelated = w.app.token(&unrelated_client, &[]).await;

    // Alice approves the planner's client; the code gives AT0 and RT0; three rotations.
    let b = Browser::new(&w.app);
    let p = pkce();
    let request =
        AuthRequest::for_client(PLANNER.0, REDIRECT, "openid offline_access read", &p.challenge).set("resource", API);
    let code = code_of(&w.app, &authorize_in(&b, &request).await);
    let first = w
        .app
        .post_form(
            "/token",
            Some(&basic(PLANNER.0, PLANNER.1)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let mut access = vec![str_of(&first.body, "access_token").to_owned()];
    let mut refresh_tokens = vec![str_of(&first.body, "refresh_token").to_owned()];
    for _ in 0..3 {
        let last = refresh_tokens.last().expect("a refresh token").clone();
        let r = refresh(&w.app, &planner, &last, None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        access.push(str_of(&r.body, "access_token").to_owned());
        refresh_tokens.push(str_of(&r.body, "refresh_token").to_owned());
    }
    // The planner exchanges the last access token for one of its own.
    let exchanged = exchange(&w, PLANNER, &w.planner, &access[3], &[("scope", "read")]).await;
    assert_eq!(exchanged.status, 200, "{:?}", exchanged.body);
    let exchanged = str_of(&exchanged.body, "access_token").to_owned();
    for t in access.iter().chain([&exchanged, &unrelated]) {
        assert!(active(&peer, &w.rs, t).await, "active before the replay");
    }

    // Redis stops taking writes for 3 s; RT1, already rotated, is replayed.
    let _: () = redis.cmd(&["CLIENT", "PAUSE", "3000", "WRITE"]).await;
    let r = refresh(&w.app, &planner, &refresh_tokens[1], None).await;
    let replayed = Instant::now();
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);

    let names = ["AT0", "AT1", "AT2", "AT3", "exchanged from AT3"];
    let tokens: Vec<(&str, &str)> = names
        .iter()
        .copied()
        .zip(access.iter().chain([&exchanged]).map(String::as_str))
        .collect();
    let window = inactive_everywhere_within_window(&[&w.app, &peer], &w.rs, &tokens, replayed).await;
    eprintln!("refresh replay under CLIENT PAUSE WRITE: last active answer {window:?} after the replay");
    for instance in [&w.app, &peer] {
        assert!(
            active(instance, &unrelated_client, &unrelated).await,
            "an unrelated token stays active"
        );
    }
    let newest = refresh(&w.app, &planner, &refresh_tokens[3], None).await;
    assert_eq!(
        (newest.status, newest.error()),
        (400, "invalid_grant"),
        "{:?}",
        newest.body
    );

    // Once Redis takes writes again, the marks reach it from the log, and Redis answers.
    let prefix = &w.app.settings.redis_prefix;
    until_in_redis(&redis, &format!("{prefix}rev:jti:{}", jti_of(&access[0]))).await;
    for instance in [&w.app, &peer] {
        for (name, t) in &tokens {
            assert!(!active(instance, &w.rs, t).await, "{name} after the pause");
        }
        assert!(active(instance, &unrelated_client, &unrelated).await);
    }
}

#[tokio::test]
async fn a_code_replayed_while_redis_is_cut_off_revokes_what_the_code_issued_everywhere() {
    let redis = PrivateRedis::start().await;
    let proxy = CuttableProxy::start(&redis.url()).await;
    let (app, peer) = pair(proxy.url.clone()).await;
    seed(&app).await;
    let unrelated_client = app.client("svc", "read", &[API]).await;
    let unrelated = app.token(&unrelated_client, &[]).await;
    let b = Browser::new(&app);
    let p = pkce();
    let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
    let first = redeem(&app, &code, &p.verifier).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let access = str_of(&first.body, "access_token").to_owned();
    let refresh_token = str_of(&first.body, "refresh_token").to_owned();
    let rotated = refresh(&app, &rp(), &refresh_token, None).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let access2 = str_of(&rotated.body, "access_token").to_owned();

    proxy.cut();
    let second = redeem(&peer, &code, &p.verifier).await;
    let replayed = Instant::now();
    assert_eq!(
        (second.status, second.error()),
        (400, "invalid_grant"),
        "{:?}",
        second.body
    );

    let tokens = [
        ("the code's access token", access.as_str()),
        ("its refresh's", access2.as_str()),
    ];
    let window = inactive_everywhere_within_window(&[&app, &peer], &rp(), &tokens, replayed).await;
    eprintln!("code replay with Redis cut off: last active answer {window:?} after the replay");
    let r = refresh(&app, &rp(), str_of(&rotated.body, "refresh_token"), None).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_grant"),
        "the family is revoked: {:?}",
        r.body
    );
    for instance in [&app, &peer] {
        assert!(active(instance, &unrelated_client, &unrelated).await);
    }

    proxy.restore();
    let prefix = &app.settings.redis_prefix;
    until_in_redis(&redis, &format!("{prefix}rev:jti:{}", jti_of(&access2))).await;
    for instance in [&app, &peer] {
        assert!(!active(instance, &rp(), &access).await);
        assert!(!active(instance, &rp(), &access2).await);
    }
}

#[tokio::test]
async fn a_code_redeemed_twice_at_once_leaves_no_token_of_it_active() {
    let redis = PrivateRedis::start().await;
    let (app, peer) = pair(redis.url()).await;
    seed(&app).await;
    let b = Browser::new(&app);
    let mut winners = 0;
    for _ in 0..5 {
        let p = pkce();
        let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
        let (one, two) = tokio::join!(redeem(&app, &code, &p.verifier), redeem(&peer, &code, &p.verifier));
        assert!(one.status != 200 || two.status != 200, "one success at most");
        for r in [one, two] {
            if r.status == 200 {
                winners += 1;
                // The loser saw a replay: what the winner got is revoked.
                let access = str_of(&r.body, "access_token");
                for instance in [&app, &peer] {
                    assert!(
                        !active(instance, &rp(), access).await,
                        "the winner's access token is revoked"
                    );
                }
                let again = refresh(&app, &rp(), str_of(&r.body, "refresh_token"), None).await;
                assert_eq!(
                    (again.status, again.error()),
                    (400, "invalid_grant"),
                    "{:?}",
                    again.body
                );
            } else {
                assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
            }
        }
    }
    eprintln!("parallel redemptions: {winners} of 5 had a winner (whose tokens were revoked)");
}

/// A revoked token and an unrelated one, on two instances sharing `redis`.
struct Revoked {
    app: TestApp,
    peer: TestApp,
    svc: (String, String),
    token: String,
    kept: String,
}

async fn revoked_on(redis_url: String) -> Revoked {
    let (app, peer) = pair(redis_url).await;
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    let kept = app.token(&svc, &[]).await;
    Revoked {
        app,
        peer,
        svc,
        token,
        kept,
    }
}

impl Revoked {
    async fn revoke(&self) -> Instant {
        let r = self
            .app
            .post_form(
                "/revoke",
                Some(&basic(&self.svc.0, &self.svc.1)),
                &[("token", &self.token)],
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        Instant::now()
    }

    /// The revoked token inactive and the kept one active, on both instances.
    async fn holds(&self, when: &str) {
        for (i, instance) in [&self.app, &self.peer].into_iter().enumerate() {
            assert!(
                !active(instance, &self.svc, &self.token).await,
                "revoked, instance {i}, {when}"
            );
            assert!(
                active(instance, &self.svc, &self.kept).await,
                "kept, instance {i}, {when}"
            );
        }
    }

    fn mark(&self) -> String {
        format!("{}rev:jti:{}", self.app.settings.redis_prefix, jti_of(&self.token))
    }
}

#[tokio::test]
async fn a_redis_restored_from_an_older_snapshot_does_not_bring_a_revoked_token_back() {
    let redis = PrivateRedis::start().await;
    let r = revoked_on(redis.url()).await;
    // The snapshot holds what Redis held before the revocation.
    until_in_redis(&redis, &format!("{}rev:applied", r.app.settings.redis_prefix)).await;
    let _: String = redis.cmd(&["SAVE"]).await;
    let revoked = r.revoke().await;
    until_in_redis(&redis, &r.mark()).await;
    redis.shutdown_nosave().await;
    redis.restart().await;
    let info: String = redis.cmd(&["INFO", "persistence"]).await;
    let loaded = info
        .lines()
        .find_map(|l| l.strip_prefix("rdb_last_load_keys_loaded:"))
        .and_then(|n| n.trim().parse::<i64>().ok());
    assert!(
        loaded.is_some_and(|n| n > 0),
        "the restarted Redis loaded the older snapshot: {info}"
    );

    let tokens = [("the revoked token", r.token.as_str())];
    let window = inactive_everywhere_within_window(&[&r.app, &r.peer], &r.svc, &tokens, revoked).await;
    eprintln!("restore from an older snapshot: last active answer {window:?} after the revocation");
    r.holds("after the restore").await;
    // Refilled from the log.
    until_in_redis(&redis, &r.mark()).await;
    r.holds("after the refill").await;
}

#[tokio::test]
async fn a_flushed_redis_does_not_bring_a_revoked_token_back() {
    let redis = PrivateRedis::start().await;
    let r = revoked_on(redis.url()).await;
    r.revoke().await;
    until_in_redis(&redis, &r.mark()).await;
    let _: () = redis.cmd(&["FLUSHDB"]).await;
    r.holds("after FLUSHDB").await;
    until_in_redis(&redis, &r.mark()).await;
    r.holds("after the refill").await;
}

#[tokio::test]
async fn revocations_made_without_redis_reach_it_through_a_running_instance() {
    let redis = PrivateRedis::start().await;
    let w = world(RedisChoice::At(redis.url())).await;
    let peer = w.app.spawn_peer().await;
    let user_token = crate::token_exchange::alice_token_for_planner(&w).await;
    let planner_token = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    let planner_token = str_of(&planner_token.body, "access_token").to_owned();
    let svc = w.app.client("svc", "read", &[API]).await;
    let token = w.app.token(&svc, &[]).await;
    let kept = w.app.token(&svc, &[]).await;

    redis.shutdown_nosave().await;
    // The CLI, configured with the (unreachable) Redis: done once durable.
    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A process with the database alone revokes a token (the capability itself).
    let claims = crate::helpers::verify_with_jwks(&w.app, &token).await.1;
    let db_only = deputy::revocation::Revocations::Database(w.app.state.db.clone());
    db_only
        .revoke(
            &jti_of(&token),
            &svc.0,
            claims["exp"].as_i64().expect("exp"),
            deputy::clock::now(),
        )
        .await
        .expect("revoked in the database");
    for instance in [&w.app, &peer] {
        assert!(!active(instance, &w.rs, &planner_token).await, "suspended, Redis down");
        assert!(!active(instance, &svc, &token).await, "revoked, Redis down");
        assert!(active(instance, &svc, &kept).await);
    }

    // Redis comes back empty; the running instances drain the log into it.
    redis.restart().await;
    let prefix = &w.app.settings.redis_prefix;
    until_in_redis(&redis, &format!("{prefix}rev:jti:{}", jti_of(&token))).await;
    until_in_redis(&redis, &format!("{prefix}rev:agent:planner")).await;
    let held: String = redis.cmd(&["GET", &format!("{prefix}rev:agent:planner")]).await;
    assert!(held.ends_with(":9223372036854775807"), "suspended in Redis: {held}");
    for instance in [&w.app, &peer] {
        assert!(!active(instance, &w.rs, &planner_token).await);
        assert!(!active(instance, &svc, &token).await);
        assert!(active(instance, &svc, &kept).await);
    }
}

#[tokio::test]
async fn a_redis_asleep_past_the_timeout_never_makes_a_revoked_token_active() {
    let redis = PrivateRedis::start().await;
    let r = revoked_on(redis.url()).await;
    r.revoke().await;
    until_in_redis(&redis, &r.mark()).await;
    let later = r.app.token(&r.svc, &[]).await;

    // Redis sleeps 3 s (the timeout is 250 ms): checks and a revocation meanwhile.
    let mut c = redis.conn().await;
    let sleeper = tokio::spawn(async move {
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query_async(&mut c)
            .await
            .expect("DEBUG SLEEP");
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asleep = Instant::now();
    r.holds("while Redis sleeps").await;
    let res = r
        .app
        .post_form("/revoke", Some(&basic(&r.svc.0, &r.svc.1)), &[("token", &later)])
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    for instance in [&r.app, &r.peer] {
        assert!(!active(instance, &r.svc, &later).await, "revoked while Redis sleeps");
    }
    assert!(asleep.elapsed() < Duration::from_secs(3), "checked during the sleep");
    sleeper.await.expect("the sleep ends");
    r.holds("after the sleep").await;
    for instance in [&r.app, &r.peer] {
        assert!(!active(instance, &r.svc, &later).await);
    }
}

#[tokio::test]
async fn a_revocation_redis_never_heard_of_bites_on_every_instance_within_the_window() {
    let redis = PrivateRedis::start().await;
    let r = revoked_on(redis.url()).await;
    until_in_redis(&redis, &format!("{}rev:applied", r.app.settings.redis_prefix)).await;
    // Another process with the database alone (a CLI without Redis settings)
    // revokes: Redis is healthy but not told; the instances learn it from the log.
    let claims = crate::helpers::verify_with_jwks(&r.app, &r.token).await.1;
    let db_only = deputy::revocation::Revocations::Database(r.app.state.db.clone());
    db_only
        .revoke(
            &jti_of(&r.token),
            &r.svc.0,
            claims["exp"].as_i64().expect("exp"),
            deputy::clock::now(),
        )
        .await
        .expect("revoked in the database");
    let committed = Instant::now();
    let tokens = [("the revoked token", r.token.as_str())];
    let window = inactive_everywhere_within_window(&[&r.app, &r.peer], &r.svc, &tokens, committed).await;
    eprintln!("revocation Redis was not told of: last active answer {window:?} after the commit");
    r.holds("after the window").await;
    until_in_redis(&redis, &r.mark()).await;
    r.holds("once drained").await;
}

#[tokio::test]
async fn marks_redis_evicts_send_checks_to_the_database_until_redis_is_refilled() {
    let redis = PrivateRedis::start().await;
    let r = revoked_on(redis.url()).await;
    r.revoke().await;
    until_in_redis(&redis, &r.mark()).await;
    // Past the window: both instances know the revocation's log number, and
    // Redis has applied it.
    tokio::time::sleep(WINDOW).await;
    r.holds("before the eviction").await;

    // A volatile policy and little room: longer-lived keys written by someone
    // else push the marks out (they expire soonest); the `applied` marker (it
    // does not expire) stays and would vouch for them.
    let memory: String = redis.cmd(&["INFO", "memory"]).await;
    let used: i64 = memory
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory");
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]).await;
    let _: () = redis
        .cmd(&["CONFIG", "SET", "maxmemory", &(used + 256 * 1024).to_string()])
        .await;
    let evicted = Instant::now();
    let mut c = redis.conn().await;
    let mut fill = redis::pipe();
    for i in 0..2000 {
        fill.cmd("SET")
            .arg(format!("filler:{i}"))
            .arg("x".repeat(512))
            .arg("EX")
            .arg(3600)
            .ignore();
    }
    let _: () = fill.query_async(&mut c).await.expect("filler written");
    assert_eq!(
        redis.cmd::<i64>(&["EXISTS", &r.mark()]).await,
        0,
        "the mark was evicted"
    );

    let tokens = [("the revoked token", r.token.as_str())];
    let window = inactive_everywhere_within_window(&[&r.app, &r.peer], &r.svc, &tokens, evicted).await;
    eprintln!("evicted marks: last active answer {window:?} after the eviction");
    r.holds("while Redis has no room").await;

    // Room again: the log refills Redis.
    let _: () = redis.cmd(&["CONFIG", "SET", "maxmemory", "0"]).await;
    until_in_redis(&redis, &r.mark()).await;
    r.holds("after the refill").await;
}

#[tokio::test]
async fn a_redis_that_turned_read_only_replica_is_not_trusted_with_what_it_missed() {
    let redis = PrivateRedis::start().await;
    let r = revoked_on(redis.url()).await;
    until_in_redis(&redis, &format!("{}rev:applied", r.app.settings.redis_prefix)).await;
    tokio::time::sleep(WINDOW).await;
    // Failed over to a replica whose master is gone: it serves its (stale) data
    // and refuses every write at once (READONLY).
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let _: () = redis.cmd(&["REPLICAOF", "127.0.0.1", &dead.to_string()]).await;
    let revoked = r.revoke().await;
    // The instance that served the revocation: at once (window 0).
    assert!(!active(&r.app, &r.svc, &r.token).await, "inactive where it was revoked");

    let tokens = [("the revoked token", r.token.as_str())];
    let window = inactive_everywhere_within_window(&[&r.app, &r.peer], &r.svc, &tokens, revoked).await;
    eprintln!("read-only replica: last active answer {window:?} after the revocation");
    r.holds("while Redis is a read-only replica").await;
    assert_eq!(
        redis.cmd::<i64>(&["EXISTS", &r.mark()]).await,
        0,
        "the replica never got the mark"
    );

    let _: () = redis.cmd(&["REPLICAOF", "NO", "ONE"]).await;
    until_in_redis(&redis, &r.mark()).await;
    r.holds("once Redis takes writes again").await;
}
