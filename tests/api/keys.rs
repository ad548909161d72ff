//! Signing-key rotation with the real `deputy keys` command: new tokens carry
//! the new key, tokens signed before stay valid while the retired key is
//! published, and every instance follows without a restart.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use deputy::tokens::Alg;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, verify_with_jwks, RedisChoice, TestApp};

const API: &str = "https://api.example.com";

fn header_of(jwt: &str) -> Value {
    let p = jwt.split('.').next().expect("header part");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .expect("base64url"),
    )
    .expect("JSON")
}

fn kid_of(jwt: &str) -> String {
    header_of(jwt)["kid"].as_str().expect("kid").to_owned()
}

/// Runs the `deputy` binary against the app's database, with no inherited `DEPUTY_*` setting.
async fn deputy(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = deputy_may_fail(app, args, env).await;
    assert!(
        out.status.success(),
        "deputy {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`deputy`], returning a failure instead of asserting success.
async fn deputy_may_fail(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deputy"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DEPUTY_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(args).env("DEPUTY_DATABASE_URL", &app.settings.database_url);
    if let Some(kek) = &app.settings.key_encryption_key {
        cmd.env("DEPUTY_KEY_ENCRYPTION_KEY", kek);
    }
    cmd.envs(env.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("deputy runs");
    out
}

/// `deputy keys list` as (kid, alg, state) rows.
async fn key_list(app: &TestApp) -> Vec<(String, String, String)> {
    let out = deputy(app, &["keys", "list"], &[]).await;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert!(cols.len() >= 4, "unexpected line {l:?}");
            (cols[0].to_owned(), cols[1].to_owned(), cols[2].to_owned())
        })
        .collect()
}

/// The kids the JWKS publishes for `alg`.
async fn published(app: &TestApp, alg: &str) -> Vec<String> {
    let r = app.get("/jwks.json").await;
    assert_eq!(r.status, 200);
    r.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Waits until the app signs with a kid other than `old` (test apps look every second).
async fn token_with_new_kid(app: &TestApp, svc: &(String, String), old: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let token = app.token(svc, &[]).await;
        if kid_of(&token) != old {
            return token;
        }
        assert!(Instant::now() < deadline, "still signing with {old} 5 s after rotation");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn after_rotation_new_tokens_use_the_new_key_and_old_tokens_stay_valid() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let before = app.token(&svc, &[]).await;
    let old_kid = kid_of(&before);
    assert_eq!(published(&app, "ES256").await, vec![old_kid.clone()]);
    let old_rs256 = published(&app, "RS256").await;
    assert_eq!(old_rs256.len(), 1);

    let out = deputy(&app, &["keys", "rotate"], &[]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("new active keys"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let after = token_with_new_kid(&app, &svc, &old_kid).await;
    let new_kid = kid_of(&after);
    assert!(new_kid.starts_with("es256-"), "{new_kid}");
    assert_eq!(header_of(&after)["alg"], "ES256");

    // Both ES256 keys and both RS256 keys are published; both tokens verify against the JWKS.
    let mut es = published(&app, "ES256").await;
    es.sort();
    let mut expected = vec![old_kid.clone(), new_kid.clone()];
    expected.sort();
    assert_eq!(es, expected);
    let rs = published(&app, "RS256").await;
    assert_eq!(rs.len(), 2, "{rs:?}");
    assert!(rs.contains(&old_rs256[0]));
    verify_with_jwks(&app, &before).await;
    verify_with_jwks(&app, &after).await;

    let r = app.introspect(&svc, &before).await;
    assert_eq!(r.body["active"], true, "a token signed before rotation: {:?}", r.body);
    let r = app.introspect(&svc, &after).await;
    assert_eq!(r.body["active"], true, "{:?}", r.body);

    // One retired and one active key per algorithm; the old kid is the retired one.
    let rows = key_list(&app).await;
    for alg in ["ES256", "RS256"] {
        let states: Vec<&str> = rows
            .iter()
            .filter(|(_, a, _)| a == alg)
            .map(|(_, _, s)| s.as_str())
            .collect();
        assert_eq!(states.len(), 2, "{alg}: {rows:?}");
        assert!(
            states.contains(&"active") && states.contains(&"retired"),
            "{alg}: {rows:?}"
        );
    }
    let state_of = |kid: &str| rows.iter().find(|(k, _, _)| k == kid).map(|(_, _, s)| s.clone());
    assert_eq!(state_of(&old_kid).as_deref(), Some("retired"));
    assert_eq!(state_of(&new_kid).as_deref(), Some("active"));
}

#[tokio::test]
async fn an_instance_that_has_not_reloaded_yet_accepts_tokens_signed_with_the_new_key() {
    // Neither instance looks for rotated keys on its own during the test.
    let app = spawn_app_with(RedisChoice::ByBackend, |s| s.keys.refresh_interval_secs = 3600).await;
    let peer = app.spawn_peer().await;
    let svc = app.client("svc", "read", &[API]).await;
    let before = app.token(&svc, &[]).await;
    let old_kid = kid_of(&before);

    deputy(&app, &["keys", "rotate"], &[]).await;
    // The first instance picks the rotation up (as its timer would); the peer does not.
    assert!(app.state.keys.refresh().await.expect("reload"));
    let after = app.token(&svc, &[]).await;
    let new_kid = kid_of(&after);
    assert_ne!(new_kid, old_kid);
    assert!(
        !peer.state.keys.current().has_kid(&new_kid),
        "the peer has not reloaded"
    );
    assert_eq!(peer.state.keys.current().active_kid(Alg::ES256), Some(old_kid.as_str()));

    // An unknown kid makes the peer reload once, and the token is good.
    let r = peer.introspect(&svc, &after).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], true, "{:?}", r.body);
    assert!(peer.state.keys.current().has_kid(&new_kid));
    // The peer now signs with the new key too, and still honours the old one.
    assert_eq!(kid_of(&peer.token(&svc, &[]).await), new_kid);
    assert_eq!(peer.introspect(&svc, &before).await.body["active"], true);
}

#[tokio::test]
async fn a_retired_key_leaves_the_jwks_and_stops_validating_when_its_publication_ends() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let before = app.token(&svc, &[]).await;
    let old_kid = kid_of(&before);

    // The operator's configuration says tokens live at most 1 s, so the retired
    // key is kept published 1 + 2 × 10 s of skew (the app itself issued a 600 s token).
    deputy(
        &app,
        &["keys", "rotate"],
        &[
            ("DEPUTY_TOKENS__ACCESS_TOKEN_TTL", "1"),
            ("DEPUTY_TOKENS__MAX_ACCESS_TOKEN_TTL", "1"),
        ],
    )
    .await;
    let rotated = Instant::now();
    let after = token_with_new_kid(&app, &svc, &old_kid).await;
    assert!(published(&app, "ES256").await.contains(&old_kid));
    assert_eq!(app.introspect(&svc, &before).await.body["active"], true);

    tokio::time::sleep(Duration::from_secs(21).saturating_sub(rotated.elapsed()) + Duration::from_millis(2500)).await;

    assert_eq!(published(&app, "ES256").await, vec![kid_of(&after)]);
    assert_eq!(published(&app, "RS256").await.len(), 1);
    let r = app.introspect(&svc, &before).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, serde_json::json!({ "active": false }));
    assert_eq!(app.introspect(&svc, &after).await.body["active"], true);
    let expired = key_list(&app).await;
    assert_eq!(
        expired.iter().filter(|(_, _, s)| s == "retired").count(),
        2,
        "{expired:?}"
    );
}

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

/// Every stored private key and server secret, read straight from the database (a dump).
fn stored_secrets(database_url: &str) -> Vec<String> {
    use diesel::{Connection, RunQueryDsl};
    let q = "SELECT private_jwk AS v FROM signing_keys UNION ALL SELECT value AS v FROM server_secrets";
    let rows: Vec<Stored> = if database_url.starts_with("postgres") {
        let mut c = diesel::PgConnection::establish(database_url).expect("connect");
        diesel::sql_query(q).load(&mut c).expect("read")
    } else {
        let mut c = diesel::SqliteConnection::establish(database_url).expect("open");
        diesel::sql_query(q).load(&mut c).expect("read")
    };
    rows.into_iter().map(|r| r.v).collect()
}

#[tokio::test]
async fn stored_private_keys_are_sealed_and_a_new_key_encryption_key_takes_over_with_rewrap() {
    let mut app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let before = app.token(&svc, &[]).await;
    let stored = stored_secrets(&app.settings.database_url);
    assert!(stored.len() >= 3, "two signing keys and the cookie key: {stored:?}");
    for v in &stored {
        assert!(v.starts_with("enc:v1:"), "sealed: {v}");
        assert!(!v.contains("\"d\"") && !v.contains("kty"), "a dump reveals no key: {v}");
    }
    // The embedded default keeps its key-encryption key in a file beside the database, not in it.
    let old = match &app.settings.key_encryption_key {
        Some(k) => k.clone(),
        None => std::fs::read_to_string(format!("{}.kek", app.settings.database_url)).expect("the .kek file"),
    };
    let new = deputy::tokens::at_rest::generate_kek();
    // Without the key that sealed them, nothing opens: a clear failure, nothing changed.
    let out = deputy_may_fail(&app, &["keys", "rewrap"], &[("DEPUTY_KEY_ENCRYPTION_KEY", &new)]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not configured"),
        "{out:?}"
    );
    assert_eq!(stored_secrets(&app.settings.database_url), stored);
    // Rotation of the KEK: the new one current, the old one previous, then rewrap.
    let previous = format!("[{old}]");
    let out = deputy(
        &app,
        &["keys", "rewrap"],
        &[
            ("DEPUTY_KEY_ENCRYPTION_KEY", &new),
            ("DEPUTY_PREVIOUS_KEY_ENCRYPTION_KEYS", &previous),
        ],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-sealed"), "{out:?}");
    let rewrapped = stored_secrets(&app.settings.database_url);
    assert_eq!(rewrapped.len(), stored.len());
    assert!(rewrapped
        .iter()
        .all(|v| v.starts_with("enc:v1:") && !stored.contains(v)));
    // An instance that knows only the new key serves, and the tokens signed before still verify.
    app.settings.key_encryption_key = Some(new);
    let peer = app.spawn_peer().await;
    let r = peer.introspect(&svc, &before).await;
    assert_eq!(r.body["active"], true, "{:?}", r.body);
    let after = peer.token(&svc, &[]).await;
    assert_eq!(kid_of(&after), kid_of(&before), "the same signing key, re-sealed");
}
