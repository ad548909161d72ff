//! RFC 7009 token revocation, across instances, restarts and Redis failures:
//! once 200 is answered (the revocation is durable) the token works nowhere,
//! whatever Redis's state. The Redis faults of issue 10 are in
//! `revocation_faults.rs`.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{basic, redis_url, spawn_app, spawn_app_with, CuttableProxy, RedisChoice, TestApp};

const API: &str = "https://api.example.com";

fn jti_of(jwt: &str) -> String {
    let p = jwt.split('.').nth(1).expect("claims part");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .expect("base64url"),
    )
    .expect("JSON");
    claims["jti"].as_str().expect("jti").to_owned()
}

async fn revoke(app: &TestApp, (id, secret): &(String, String), token: &str) -> crate::helpers::Reply {
    app.post_form("/revoke", Some(&basic(id, secret)), &[("token", token)])
        .await
}

async fn active(app: &TestApp, caller: &(String, String), token: &str) -> bool {
    let r = app.introspect(caller, token).await;
    assert_eq!(r.status, 200, "introspection failed: {:?}", r.body);
    match r.body["active"].as_bool() {
        Some(false) => {
            assert_eq!(r.body, json!({ "active": false }), "inactive means nothing more");
            false
        }
        Some(true) => true,
        None => panic!("no active member: {:?}", r.body),
    }
}

#[tokio::test]
async fn a_client_revokes_its_own_token_and_it_is_inactive_at_once() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    let other = app.token(&svc, &[]).await;
    assert!(active(&app, &svc, &token).await);

    let r = revoke(&app, &svc, &token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(!active(&app, &svc, &token).await);
    // Only that token: another one of the same client still works.
    assert!(active(&app, &svc, &other).await);

    // Revoking again is not an error (§2.2).
    let again = revoke(&app, &svc, &token).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert!(!active(&app, &svc, &token).await);
}

#[tokio::test]
async fn a_wrong_token_type_hint_does_not_stop_the_revocation() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    for hint in ["refresh_token", "access_token", "something_else"] {
        let token = app.token(&svc, &[]).await;
        let r = app
            .post_form(
                "/revoke",
                Some(&basic(&svc.0, &svc.1)),
                &[("token", &token), ("token_type_hint", hint)],
            )
            .await;
        assert_eq!(r.status, 200, "{hint}: {:?}", r.body);
        assert!(!active(&app, &svc, &token).await, "{hint}");
    }
}

#[tokio::test]
async fn unknown_and_invalid_tokens_are_answered_with_200() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let stranger = spawn_app().await;
    let twin = stranger.client("svc", "read", &[API]).await;
    let foreign = stranger.token(&twin, &[]).await;
    let real = app.token(&svc, &[]).await;
    for (case, token) in [
        ("garbage", "garbage"),
        ("a JWT-looking string", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"),
        ("another deployment's token", foreign.as_str()),
    ] {
        let r = revoke(&app, &svc, token).await;
        assert_eq!(r.status, 200, "{case}: {:?}", r.body);
    }
    // None of that touched a real token.
    assert!(active(&app, &svc, &real).await);
}

#[tokio::test]
async fn revocation_refuses_a_request_without_exactly_one_token() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    for (case, params) in [
        ("no token", vec![]),
        ("empty token", vec![("token", "")]),
        (
            "token twice",
            vec![("token", token.as_str()), ("token", token.as_str())],
        ),
    ] {
        let r = app.post_form("/revoke", Some(&basic(&svc.0, &svc.1)), &params).await;
        assert_eq!(r.status, 400, "{case}: {:?}", r.body);
        assert_eq!(r.error(), "invalid_request", "{case}");
    }
    assert!(active(&app, &svc, &token).await);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = spawn_app().await;
    let owner = app.client("owner", "read", &[API]).await;
    let intruder = app.client("intruder", "read", &[API]).await;
    let token = app.token(&owner, &[]).await;

    // §2.1: the token must have been issued to the client asking.
    let r = revoke(&app, &intruder, &token).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.error(), "unauthorized_client");
    assert!(active(&app, &owner, &token).await);
}

#[tokio::test]
async fn revocation_requires_an_authenticated_client() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    for (case, auth, params) in [
        ("no credentials", None, vec![("token", token.as_str())]),
        (
            "bare client_id",
            None,
            vec![("token", token.as_str()), ("client_id", "svc")],
        ),
        (
            "wrong secret",
            Some(basic("svc", "not-the-secret-0123456789")),
            vec![("token", token.as_str())],
        ),
    ] {
        let r = app.post_form("/revoke", auth.as_deref(), &params).await;
        // RFC 6749 §5.2: 401 after HTTP Basic, else 400.
        assert_eq!(r.status, if auth.is_some() { 401 } else { 400 }, "{case}: {:?}", r.body);
        assert_eq!(r.error(), "invalid_client", "{case}");
    }
    assert!(active(&app, &svc, &token).await, "nothing was revoked");
}

#[tokio::test]
async fn revocation_accepts_post_only() {
    let app = spawn_app().await;
    let r = app.get("/revoke").await;
    assert_eq!(r.status, 405, "{:?}", r.body);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn a_revocation_on_one_instance_holds_on_another_at_once() {
    // As the backend runs (Redis with PostgreSQL), and with the database alone.
    for choice in [RedisChoice::ByBackend, RedisChoice::Off] {
        let app = spawn_app_with(choice, |_| {}).await;
        let peer = app.spawn_peer().await;
        let svc = app.client("svc", "read", &[API]).await;
        let token = app.token(&svc, &[]).await;
        assert!(active(&peer, &svc, &token).await, "the peer validates the token");

        assert_eq!(revoke(&app, &svc, &token).await.status, 200);
        assert!(!active(&peer, &svc, &token).await);

        // And the other way round.
        let second = peer.token(&svc, &[]).await;
        assert!(active(&app, &svc, &second).await);
        assert_eq!(revoke(&peer, &svc, &second).await.status, 200);
        assert!(!active(&app, &svc, &second).await);
    }
}

#[tokio::test]
async fn a_revocation_survives_a_restart() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    let kept = app.token(&svc, &[]).await;
    assert_eq!(revoke(&app, &svc, &token).await.status, 200);

    // A new process state over the same database (and Redis prefix).
    let restarted = app.spawn_peer().await;
    assert!(!active(&restarted, &svc, &token).await);
    assert!(active(&restarted, &svc, &kept).await);
}

// ---- Redis: these run with Redis on both backends ----

pub async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis is required for these tests")
}

/// Every key under `prefix` (SCAN, never KEYS).
async fn keys_under(prefix: &str) -> Vec<String> {
    let mut conn = redis().await;
    let mut cursor: u64 = 0;
    let mut found = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("SCAN");
        found.extend(batch);
        if next == 0 {
            return found;
        }
        cursor = next;
    }
}

/// Deletes this app's keys only: other tests share the Redis.
pub async fn delete_keys_under(prefix: &str) {
    assert!(prefix.starts_with("deputy-test:"), "only a test prefix: {prefix}");
    let keys = keys_under(prefix).await;
    if !keys.is_empty() {
        let mut conn = redis().await;
        let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.expect("DEL");
    }
}

pub async fn exists(key: &str) -> bool {
    let mut conn = redis().await;
    redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("EXISTS")
}

async fn spawn_with_redis() -> TestApp {
    spawn_app_with(RedisChoice::At(redis_url()), |_| {}).await
}

#[tokio::test]
async fn a_revocation_holds_when_redis_restarts_empty_and_redis_is_refilled_from_the_log() {
    let app = spawn_with_redis().await;
    let prefix = app.settings.redis_prefix.clone();
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    let kept = app.token(&svc, &[]).await;
    assert_eq!(revoke(&app, &svc, &token).await.status, 200);
    let jti_key = format!("{prefix}rev:jti:{}", jti_of(&token));
    let applied = format!("{prefix}rev:applied");
    assert!(exists(&jti_key).await, "the revocation reached Redis");
    assert!(exists(&applied).await);

    // Redis "restarts" empty: every key of this deployment is gone.
    delete_keys_under(&prefix).await;
    assert!(keys_under(&prefix).await.is_empty());

    assert!(
        !active(&app, &svc, &token).await,
        "the database answers while Redis is empty"
    );
    assert!(active(&app, &svc, &kept).await);

    let deadline = Instant::now() + Duration::from_secs(5);
    while !(exists(&applied).await && exists(&jti_key).await) {
        assert!(
            Instant::now() < deadline,
            "Redis was not rebuilt within 5 s: {:?}",
            keys_under(&prefix).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Rebuilt: still inactive, now from Redis, on this instance and a new one.
    assert!(!active(&app, &svc, &token).await);
    assert!(!active(&app.spawn_peer().await, &svc, &token).await);
    assert!(active(&app, &svc, &kept).await);
    delete_keys_under(&prefix).await;
}

#[tokio::test]
async fn when_redis_goes_down_introspection_falls_back_to_the_database_quickly() {
    let proxy = CuttableProxy::start(&redis_url()).await;
    let app = spawn_app_with(RedisChoice::At(proxy.url.clone()), |_| {}).await;
    let prefix = app.settings.redis_prefix.clone();
    let svc = app.client("svc", "read", &[API]).await;
    let revoked = app.token(&svc, &[]).await;
    let good = app.token(&svc, &[]).await;
    assert_eq!(revoke(&app, &svc, &revoked).await.status, 200);
    assert!(exists(&format!("{prefix}rev:jti:{}", jti_of(&revoked))).await);

    proxy.cut();

    for (case, token, expected) in [
        ("revoked", &revoked, false),
        ("good", &good, true),
        ("revoked, again", &revoked, false),
        ("good, again", &good, true),
    ] {
        let started = Instant::now();
        assert_eq!(active(&app, &svc, token).await, expected, "{case}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{case}: took {took:?} with Redis down");
    }
    delete_keys_under(&prefix).await;
}

#[tokio::test]
async fn when_redis_is_down_at_revocation_the_answer_is_200_and_redis_gets_it_from_the_log() {
    let proxy = CuttableProxy::start(&redis_url()).await;
    let app = spawn_app_with(RedisChoice::At(proxy.url.clone()), |_| {}).await;
    let peer = app.spawn_peer().await;
    let prefix = app.settings.redis_prefix.clone();
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    let good = app.token(&svc, &[]).await;

    proxy.cut();

    let started = Instant::now();
    let r = revoke(&app, &svc, &token).await;
    // RFC 7009 §2.2: the revocation is durable in the database and its log, and
    // no instance trusts a Redis that has not applied it: 200.
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // Every instance, falling back to the database, says inactive.
    for instance in [&app, &peer] {
        assert!(!active(instance, &svc, &token).await);
        assert!(active(instance, &svc, &good).await);
    }

    // Redis comes back: the instances drain the log into it.
    proxy.restore();
    let jti_key = format!("{prefix}rev:jti:{}", jti_of(&token));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !exists(&jti_key).await {
        assert!(Instant::now() < deadline, "the mark did not reach Redis within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for instance in [&app, &peer] {
        assert!(!active(instance, &svc, &token).await);
        assert!(active(instance, &svc, &good).await);
    }
    delete_keys_under(&prefix).await;
}
