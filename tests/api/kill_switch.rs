//! An agent's kill switch: suspending it revokes every token naming it and
//! refuses new ones at once, even while registrations are served from the
//! registry cache; resuming lets it act again without reviving anything; and a
//! suspension whose Redis write failed still reaches Redis, from the revocation log.

use std::time::Duration;

use crate::helpers::{redis_url, CuttableProxy, RedisChoice};
use crate::revocation::{delete_keys_under, redis};
use crate::token_exchange::{alice_approves_with, alice_token_for_planner, exchange, world, PLANNER};

const ACTIVE: &str = "active";

#[tokio::test]
async fn a_suspended_agent_gets_nothing_at_once_and_resuming_revives_nothing() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    let first = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let first = first.body["access_token"].as_str().expect("token").to_owned();

    // The planner's own client may also get tokens of its own (client_credentials).
    w.app
        .import(&format!(
            "[[clients]]\nclient_id = \"planner-client\"\nclient_name = \"Trip planner\"\n\
             client_secret = \"{}\"\ngrant_types = [\"authorization_code\", \"client_credentials\", \"{}\"]\n\
             redirect_uris = [\"{}\"]\nscope = \"openid read write\"\nresources = [\"{}\"]\n",
            PLANNER.1,
            crate::token_exchange::EXCHANGE,
            crate::token_exchange::REDIRECT,
            crate::token_exchange::API
        ))
        .await;
    // A registration change reaches a running server within `client_cache_ttl_ms` (1 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let own = (PLANNER.0.to_owned(), PLANNER.1.to_owned());
    assert!(!w.app.token(&own, &[]).await.is_empty());

    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Alice's token that names the planner in `may_act` is revoked with it.
    assert_eq!(w.app.introspect(&w.rs, &user_token).await.body[ACTIVE], false);
    // The server's cached registration still says "active" for up to a second:
    // the refusal comes from the kill switch, which is checked on every exchange.
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!((r.status, r.error()), (400, "unauthorized_client"), "{:?}", r.body);
    assert_eq!(w.app.introspect(&w.rs, &first).await.body[ACTIVE], false);
    let peer = w.app.spawn_peer().await;
    assert_eq!(peer.introspect(&w.rs, &first).await.body[ACTIVE], false);

    // Once the cached registration has expired (1 s), its own client gets nothing either.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = w
        .app
        .post_form(
            "/token",
            Some(&crate::helpers::basic(PLANNER.0, PLANNER.1)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "unauthorized_client"), "{:?}", r.body);

    let out = w.app.cli(&["agent", "resume", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        w.app.introspect(&w.rs, &first).await.body[ACTIVE],
        false,
        "what the suspension revoked stays revoked"
    );
    // Tokens of the resume's own second are covered by it; the next second is free.
    // Alice's earlier token stays revoked: she approves again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let extra = format!("&resource={}&prompt=consent", crate::token_exchange::API);
    let (tokens, _, _) = alice_approves_with(&w, PLANNER, &["openid", "read"], &extra).await;
    let user_token = tokens["access_token"].as_str().expect("token").to_owned();
    let again = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    let again = again.body["access_token"].as_str().expect("token").to_owned();
    assert_eq!(w.app.introspect(&w.rs, &again).await.body[ACTIVE], true);

    // Resuming an agent that is not suspended changes nothing.
    let out = w.app.cli(&["agent", "resume", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(w.app.introspect(&w.rs, &again).await.body[ACTIVE], true);
    assert_eq!(peer.introspect(&w.rs, &again).await.body[ACTIVE], true);
}

#[tokio::test]
async fn a_suspension_made_while_redis_was_down_reaches_redis_from_the_log() {
    let proxy = CuttableProxy::start(&redis_url()).await;
    let w = world(RedisChoice::At(proxy.url.clone())).await;
    let prefix = w.app.settings.redis_prefix.clone();
    let user_token = alice_token_for_planner(&w).await;
    let token = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    proxy.cut();
    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    // Durable in the database and its revocation log: done, whatever Redis's state.
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // With Redis unreachable, checks fall back to the database.
    assert_eq!(w.app.introspect(&w.rs, &token).await.body[ACTIVE], false);

    proxy.restore();
    // The running server drains the log into Redis by itself (every 250 ms).
    let key = format!("{prefix}rev:agent:planner");
    let suspended = wait_for_value(&key, |v| v.ends_with(":9223372036854775807")).await;
    let peer = w.app.spawn_peer().await;
    assert_eq!(peer.introspect(&w.rs, &token).await.body[ACTIVE], false);
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!((r.status, r.error()), (400, "unauthorized_client"), "{:?}", r.body);

    // Generations order the writers: a value of an older generation (an older
    // read, written late) is replaced when the log is drained again; one of a
    // newer generation (a change this drain has not read yet) is left alone.
    let deputy::revocation::Revocations::Redis(store) = &w.app.state.revocations else {
        panic!("this app reads Redis")
    };
    let mut conn = redis().await;
    let applied = format!("{prefix}rev:applied");
    for (value, expected) in [("0:1", suspended.as_str()), ("999999999:1", "999999999:1")] {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("SET");
        let _: () = redis::cmd("DEL")
            .arg(&applied)
            .query_async(&mut conn)
            .await
            .expect("DEL");
        drain(store).await;
        let held: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
        assert_eq!(held.as_deref(), Some(expected), "after {value}");
    }
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&suspended)
        .query_async(&mut conn)
        .await
        .expect("SET");

    // A resume that Redis did not hear of reaches it from the log too: its
    // generation is newer than the suspension's.
    proxy.cut();
    let out = w.app.cli(&["agent", "resume", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    proxy.restore();
    wait_for_value(&key, |v| !v.ends_with(":9223372036854775807") && v != suspended).await;

    // Both changes are in the audit trail.
    let out = w.app.cli(&["audit", "tail", "--agent", "planner"]).await;
    let trail = String::from_utf8_lossy(&out.stdout);
    for reason in ["deputy agent suspend", "deputy agent resume"] {
        assert!(trail.contains(reason), "{reason} audited: {trail}");
    }
    delete_keys_under(&prefix).await;
}

/// Waits (up to 5 s) until `key` holds a value `ok` accepts, and returns it.
async fn wait_for_value(key: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut conn = redis().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let held: Option<String> = redis::cmd("GET").arg(key).query_async(&mut conn).await.expect("GET");
        match held {
            Some(v) if ok(&v) => return v,
            other if std::time::Instant::now() > deadline => panic!("{key} holds {other:?} after 5 s"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Drains the revocation log into Redis now; the first attempt after Redis
/// comes back may meet the connection the cut broke.
async fn drain(store: &deputy::revocation::RedisRevocations) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match store.drain().await {
            Ok(_) => return,
            Err(e) if std::time::Instant::now() > deadline => panic!("Redis is back, yet: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
