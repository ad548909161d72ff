//! Kill switches for every identity: a disabled user's tokens (and every token
//! exchanged from them) end at once on every instance and enabling revives
//! nothing; a deleted client's tokens, refresh tokens and consents end, and a
//! client re-created with the same id inherits nothing; a suspended agent's
//! own client_credentials tokens end with it. CLI, admin API and import alike.

use std::time::Duration;

use serde_json::Value;

use crate::authorize_errors::{refresh, rp, rp_tokens, AuthRequest};
use crate::browser_flow::{pkce, seed, Browser};
use crate::helpers::{basic, spawn_app_with, RedisChoice, TestApp};
use crate::token_exchange::{alice_signs_in_for_planner, exchange, world, World, API, BOOKER, PLANNER};

pub const ADMIN: &str = "admin-token-0123456789-0123456789-abcdef";

fn token_of(r: &crate::helpers::Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().expect("access_token").to_owned()
}

async fn is_active(app: &TestApp, caller: &(String, String), token: &str) -> bool {
    let r = app.introspect(caller, token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["active"] == Value::Bool(true)
}

/// Alice's token for the planner, the planner's exchanged token and the
/// booker's (a sub-agent's), with alice's browser still signed in.
async fn chain(w: &World) -> (Vec<String>, Browser) {
    let (user_token, browser) = alice_signs_in_for_planner(w).await;
    let planner = token_of(&exchange(w, PLANNER, &w.planner, &user_token, &[]).await);
    let booker = token_of(&exchange(w, BOOKER, &w.booker, &planner, &[]).await);
    (vec![user_token, planner, booker], browser)
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = app
        .http
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_disabled_users_tokens_and_every_token_exchanged_from_them_end_on_every_instance_and_enabling_revives_nothing(
) {
    let w = world(RedisChoice::ByBackend).await;
    let peer = w.app.spawn_peer().await;
    let (tokens, browser) = chain(&w).await;
    for t in &tokens {
        assert!(is_active(&w.app, &w.rs, t).await);
        assert!(is_active(&peer, &w.rs, t).await);
    }
    assert_eq!(browser.get("/account").await.0, 200);

    let out = w.app.cli(&["user", "disable", "alice"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for t in &tokens {
        assert!(!is_active(&w.app, &w.rs, t).await, "inactive here");
        assert!(!is_active(&peer, &w.rs, t).await, "inactive on the other instance");
    }
    // Exchanges of the user's tokens are refused. Within the registry cache's
    // second the kill switch refuses the subject token (invalid_request);
    // after it, the withdrawn consent is seen first (invalid_grant).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = exchange(&w, PLANNER, &w.planner, &tokens[0], &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    let r = exchange(&w, BOOKER, &w.booker, &tokens[1], &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    // Her session ended: the browser is sent to sign in again.
    let (status, location, _) = browser.get("/account").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));

    let out = w.app.cli(&["user", "enable", "alice"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for t in &tokens {
        assert!(!is_active(&w.app, &w.rs, t).await, "enabling revives nothing");
        assert!(
            !is_active(&peer, &w.rs, t).await,
            "enabling revives nothing there either"
        );
    }
    assert_eq!(browser.get("/account").await.0, 303, "nor the session");

    let out = w
        .app
        .cli(&["audit", "tail", "--user", &user_id(&w.app, "alice").await])
        .await;
    let trail = String::from_utf8_lossy(&out.stdout);
    for reason in ["deputy user disable", "deputy user enable"] {
        assert!(trail.contains(reason), "{reason} audited: {trail}");
    }
}

async fn user_id(app: &TestApp, username: &str) -> String {
    let out = app.cli(&["user", "list"]).await;
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    list.lines()
        .find_map(|l| l.strip_prefix(&format!("{username}\t")))
        .and_then(|rest| rest.split('\t').next())
        .unwrap_or_else(|| panic!("{username} in {list}"))
        .to_owned()
}

#[tokio::test]
async fn the_admin_api_disables_a_user_whose_refresh_tokens_are_refused_and_enables_them_without_reviving_anything() {
    let app = spawn_app_with(RedisChoice::ByBackend, |s| s.admin_token = Some(ADMIN.into())).await;
    seed(&app).await;
    let rs = app.client("rs", "read", &[API]).await;
    let b = Browser::new(&app);
    let tokens = rp_tokens(&app, &b).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    assert!(is_active(&app, &rs, &access).await);

    let (status, body) = admin(&app, reqwest::Method::POST, "/admin/users/alice/disable").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("disabled")), "{body:?}");
    assert!(!is_active(&app, &rs, &access).await);
    assert!(!is_active(&app, &rp(), &refresh_token).await, "the refresh token too");
    let r = refresh(&app, &rp(), &refresh_token, None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);

    let (status, body) = admin(&app, reqwest::Method::POST, "/admin/users/alice/enable").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("active")), "{body:?}");
    assert!(!is_active(&app, &rs, &access).await, "enabling revives nothing");
    let r = refresh(&app, &rp(), &refresh_token, None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);

    let (status, body) = admin(&app, reqwest::Method::POST, "/admin/users/nobody/disable").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body:?}");
    let (status, body) = admin(&app, reqwest::Method::POST, "/admin/users/alice/explode").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body:?}");
    let r = app.post_form("/admin/users/alice/disable", None, &[]).await;
    assert_eq!((r.status, r.error()), (401, "invalid_token"));

    let (_, trail) = admin(&app, reqwest::Method::GET, "/admin/audit?limit=100").await;
    let events: Vec<(&str, &str)> = trail
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["event"].as_str().unwrap_or(""), e["reason"].as_str().unwrap_or("")))
        .collect();
    for event in ["user_disabled", "user_enabled"] {
        assert!(
            events
                .iter()
                .any(|(e, r)| *e == event && r.contains("admin API, bootstrap admin token")),
            "{event} audited with who did it: {events:?}"
        );
    }
}

#[tokio::test]
async fn importing_a_user_as_disabled_ends_their_tokens_and_consents_like_the_cli() {
    let w = world(RedisChoice::ByBackend).await;
    let peer = w.app.spawn_peer().await;
    let (tokens, _browser) = chain(&w).await;
    w.app
        .import("[[users]]\nusername = \"alice\"\npassword = \"correct horse battery\"\ndisabled = true\n")
        .await;
    // An import is no instance's request: the instances read the log's head
    // within HEAD_MAX_AGE and then trust Redis only once it has the change.
    tokio::time::sleep(deputy::revocation::HEAD_MAX_AGE + Duration::from_millis(250)).await;
    for t in &tokens {
        assert!(!is_active(&w.app, &w.rs, t).await);
        assert!(!is_active(&peer, &w.rs, t).await);
    }
    let r = exchange(&w, PLANNER, &w.planner, &tokens[0], &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    // Her consents were withdrawn: the account page (once enabled) lists none.
    w.app
        .import("[[users]]\nusername = \"alice\"\npassword = \"correct horse battery\"\n")
        .await;
    let b = Browser::new(&w.app);
    let (status, next, _) = crate::browser_flow::sign_in(&b, "/login", "alice", "correct horse battery").await;
    assert_eq!((status, next.as_deref()), (303, Some("/account")));
    let (_, _, page) = b.get("/account").await;
    assert!(!page.contains("name=\"grant_id\""), "no approval left: {page}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!is_active(&w.app, &w.rs, &tokens[0]).await, "enabling revives nothing");
}

#[tokio::test]
async fn a_deleted_clients_tokens_refresh_tokens_and_consents_end_and_a_client_recreated_with_its_id_inherits_nothing()
{
    let app = spawn_app_with(RedisChoice::ByBackend, |s| s.admin_token = Some(ADMIN.into())).await;
    seed(&app).await;
    let peer = app.spawn_peer().await;
    let rs = app.client("rs", "read", &[API]).await;
    let b = Browser::new(&app);
    let tokens = rp_tokens(&app, &b).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    assert!(is_active(&peer, &rs, &access).await);

    let (status, body) = admin(&app, reqwest::Method::DELETE, "/admin/clients/rp").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("deleted")), "{body:?}");
    assert!(!is_active(&app, &rs, &access).await);
    assert!(!is_active(&peer, &rs, &access).await);
    let (status, body) = admin(&app, reqwest::Method::DELETE, "/admin/clients/rp").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body:?}");

    // Re-created with the same id (and secret): nothing of the old one's carries over.
    seed(&app).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!is_active(&app, &rs, &access).await, "old tokens stay dead");
    assert!(!is_active(&peer, &rs, &access).await);
    let r = refresh(&app, &rp(), &refresh_token, None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    // Alice is still signed in, yet she is asked to approve again.
    let p = pkce();
    let (status, at, _) = b.follow(&AuthRequest::rp(&p.1).path()).await;
    assert_eq!(status, 200);
    assert!(at.contains("/consent?"), "asked again, at {at}");

    let out = app.cli(&["client", "delete", "rs"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.cli(&["client", "delete", "rs"]).await;
    assert!(!out.status.success());
    let out = app.cli(&["audit", "tail"]).await;
    let trail = String::from_utf8_lossy(&out.stdout);
    for reason in ["deputy client delete", "admin API, bootstrap admin token"] {
        assert!(trail.contains(reason), "{reason} audited: {trail}");
    }
}

#[tokio::test]
async fn suspending_an_agent_ends_the_client_credentials_tokens_its_own_client_got_before() {
    let w = world(RedisChoice::ByBackend).await;
    let peer = w.app.spawn_peer().await;
    w.app
        .import(&format!(
            "[[clients]]\nclient_id = \"planner-client\"\nclient_name = \"Trip planner\"\n\
             client_secret = \"{}\"\ngrant_types = [\"authorization_code\", \"client_credentials\", \"{}\"]\n\
             redirect_uris = [\"{}\"]\nscope = \"openid read write\"\nresources = [\"{API}\"]\n",
            PLANNER.1,
            crate::token_exchange::EXCHANGE,
            crate::token_exchange::REDIRECT,
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let own_client = (PLANNER.0.to_owned(), PLANNER.1.to_owned());
    let own = w.app.token(&own_client, &[]).await;
    assert!(is_active(&w.app, &w.rs, &own).await);

    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!is_active(&w.app, &w.rs, &own).await);
    assert!(!is_active(&peer, &w.rs, &own).await);

    let out = w.app.cli(&["agent", "resume", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!is_active(&w.app, &w.rs, &own).await, "resuming revives nothing");
    let fresh = w.app.token(&own_client, &[]).await;
    assert!(is_active(&w.app, &w.rs, &fresh).await, "its new tokens work");
    assert!(is_active(&peer, &w.rs, &fresh).await);

    // An import that says `suspended = true` suspends it the same way.
    w.app
        .import(&format!(
            "[[agents]]\nagent_id = \"planner\"\nclient_id = \"planner-client\"\nname = \"Trip planner\"\n\
             publisher = \"Acme Agents\"\nallowed_scopes = \"read write\"\nallowed_audiences = [\"{API}\"]\n\
             max_token_ttl = 120\nmax_delegation_depth = 2\nmay_delegate_to = [\"booker\"]\nsuspended = true\n"
        ))
        .await;
    tokio::time::sleep(deputy::revocation::HEAD_MAX_AGE + Duration::from_millis(400)).await;
    assert!(!is_active(&w.app, &w.rs, &fresh).await);
    assert!(!is_active(&peer, &w.rs, &fresh).await);
    let r = w
        .app
        .post_form(
            "/token",
            Some(&basic(PLANNER.0, PLANNER.1)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "unauthorized_client"), "{:?}", r.body);
}
