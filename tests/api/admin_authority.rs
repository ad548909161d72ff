//! Who holds authority at the admin API: the bootstrap `admin_token`, or a
//! `client_credentials` token issued to a client acting for itself, for the
//! admin audience `{issuer}/admin`, with the `deputy:admin` scope. A user's
//! token, an exchanged (delegated) token or a token for another audience is
//! never an admin token, whatever scope it carries (RFC 6750 §3.1 errors).

use crate::helpers::{spawn_app, Reply, TestApp};
use crate::token_exchange::{alice_approves_with, exchange, toml_inline, AgentKey, World, EXCHANGE, PLANNER, REDIRECT};

const API: &str = "https://api.example.com";

fn admin_audience(app: &TestApp) -> String {
    format!("{}/admin", app.settings.issuer)
}

async fn get_agents(app: &TestApp, token: &str) -> Reply {
    let res = app
        .http
        .get(format!("{}/admin/agents", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    Reply { status, headers, body }
}

#[track_caller]
fn assert_bearer_refusal(r: &Reply, status: u16, error: &str, case: &str) {
    assert_eq!((r.status, r.error()), (status, error), "{case}: {:?}", r.body);
    assert!(!r.body.is_array(), "{case}: no agents listed");
    if status == 401 {
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer "), "{case}: {challenge}");
    }
}

/// A client that may ask tokens with `scope` for the admin audience and an API.
async fn ops_client(app: &TestApp, scope: &str) -> (String, String) {
    app.client("ops", scope, &[&admin_audience(app), API]).await
}

#[tokio::test]
async fn a_client_credentials_token_for_the_admin_audience_with_deputy_admin_is_an_admin_token() {
    let app = spawn_app().await;
    let ops = ops_client(&app, "deputy:admin").await;
    let aud = admin_audience(&app);
    let token = app.token(&ops, &[("resource", &aud)]).await;
    let r = get_agents(&app, &token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.is_array(), "{:?}", r.body);
}

#[tokio::test]
async fn a_token_for_another_audience_is_not_an_admin_token_even_with_deputy_admin() {
    let app = spawn_app().await;
    let ops = ops_client(&app, "deputy:admin").await;
    let token = app.token(&ops, &[("resource", API)]).await;
    assert_bearer_refusal(&get_agents(&app, &token).await, 401, "invalid_token", "aud is the API");
}

#[tokio::test]
async fn an_admin_audience_token_without_deputy_admin_is_insufficient_scope() {
    let app = spawn_app().await;
    let ops = ops_client(&app, "read deputy:admin").await;
    let aud = admin_audience(&app);
    let token = app.token(&ops, &[("resource", &aud), ("scope", "read")]).await;
    assert_bearer_refusal(&get_agents(&app, &token).await, 403, "insufficient_scope", "scope read");
}

#[tokio::test]
async fn an_admin_token_stops_working_when_its_client_loses_deputy_admin() {
    let app = spawn_app().await;
    let ops = ops_client(&app, "read deputy:admin").await;
    let aud = admin_audience(&app);
    let token = app.token(&ops, &[("resource", &aud)]).await;
    assert_eq!(get_agents(&app, &token).await.status, 200);
    // The operator narrows the registration; registrations are cached for 1 s.
    ops_client(&app, "read").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_bearer_refusal(
        &get_agents(&app, &token).await,
        403,
        "insufficient_scope",
        "no longer registered",
    );
}

#[tokio::test]
async fn neither_a_users_token_nor_an_exchanged_token_is_an_admin_token() {
    let app = spawn_app().await;
    let aud = admin_audience(&app);
    let planner = AgentKey::new("planner");
    let booker = AgentKey::new("booker");
    // Everything allows deputy:admin on the admin audience: only the kind of token decides.
    app.import(&format!(
        r#"
[[users]]
username = "alice"
password = "correct horse battery"

[[clients]]
client_id = "planner-client"
client_name = "Trip planner"
client_secret = "planner-secret-0123456789"
grant_types = ["authorization_code", "{EXCHANGE}"]
redirect_uris = ["{REDIRECT}"]
scope = "openid deputy:admin"
resources = ["{aud}"]

[[agents]]
agent_id = "planner"
client_id = "planner-client"
name = "Trip planner"
publisher = "Acme Agents"
allowed_scopes = "deputy:admin"
allowed_audiences = ["{aud}"]
max_token_ttl = 120
max_delegation_depth = 2
jwks = {{ keys = [{}] }}
"#,
        toml_inline(&planner.public),
    ))
    .await;
    let w = World {
        app,
        planner,
        booker,
        rs: ("none".into(), "none".into()),
    };
    let (tokens, _, _) =
        alice_approves_with(&w, PLANNER, &["openid", "deputy:admin"], &format!("&resource={aud}")).await;
    let user_token = tokens["access_token"].as_str().expect("user token");
    let (_, claims) = crate::helpers::verify_with_jwks(&w.app, user_token).await;
    assert_eq!(claims["aud"], aud.as_str());
    assert!(claims["scope"].as_str().is_some_and(|s| s.contains("deputy:admin")));
    assert_bearer_refusal(
        &get_agents(&w.app, user_token).await,
        403,
        "insufficient_scope",
        "user token",
    );

    let r = exchange(
        &w,
        PLANNER,
        &w.planner,
        user_token,
        &[("scope", "deputy:admin"), ("resource", &aud)],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let exchanged = r.body["access_token"].as_str().expect("exchanged token");
    assert_bearer_refusal(
        &get_agents(&w.app, exchanged).await,
        403,
        "insufficient_scope",
        "exchanged token",
    );
}
