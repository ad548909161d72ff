//! A third-party application (not an agent's own client) asks that a registered
//! agent may act with the tokens the user approves for it: `requested_actor` at
//! /authorize (draft-oauth-ai-agents-on-behalf-of-user), limited to the agents
//! the application's registration lists. The consent screen names the agent, the
//! grant and the token's `may_act` record it, and only that agent may exchange.

use serde_json::{json, Value};

use crate::browser_flow::{pkce, query_param, Browser};
use crate::helpers::RedisChoice;
use crate::token_exchange::{alice_approves_with, exchange, world, World, API, BOOKER, EXCHANGE, PLANNER, REDIRECT};

const CHAT: (&str, &str) = ("chat-app", "chat-app-secret-0123456789");

/// The demo world plus a chat application that works with the planner (only).
async fn world_with_chat_app() -> World {
    let w = world(RedisChoice::ByBackend).await;
    w.app
        .import(&format!(
            r#"
[[clients]]
client_id = "chat-app"
client_name = "Chat app"
client_secret = "chat-app-secret-0123456789"
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["{REDIRECT}"]
scope = "openid offline_access read write"
resources = ["{API}"]
agents = ["planner"]
"#
        ))
        .await;
    w
}

#[tokio::test]
async fn an_application_names_an_agent_the_user_approves_it_and_only_that_agent_may_exchange() {
    let w = world_with_chat_app().await;
    let extra = format!("&resource={API}&requested_actor=planner");
    let (tokens, _, consent) = alice_approves_with(&w, CHAT, &["openid", "offline_access", "read"], &extra).await;
    let app_token = tokens["access_token"].as_str().expect("access token").to_owned();
    assert!(
        consent.contains("Chat app asks that the AI agent Trip planner may act for you"),
        "the consent screen names the agent: {consent}"
    );
    assert!(consent.contains("Acme Agents"), "and its publisher: {consent}");
    let (_, claims) = crate::helpers::verify_with_jwks(&w.app, &app_token).await;
    assert_eq!(claims["client_id"], "chat-app");
    assert_eq!(claims["may_act"], json!({ "sub": "planner" }), "{claims}");
    let seen = w.app.introspect(&w.rs, &app_token).await;
    assert_eq!(seen.body["may_act"], json!({ "sub": "planner" }), "{:?}", seen.body);

    // A refreshed token still names the agent the user approved.
    let r = w
        .app
        .post_form(
            "/token",
            Some(&crate::helpers::basic(CHAT.0, CHAT.1)),
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("refresh token"),
                ),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (_, refreshed) =
        crate::helpers::verify_with_jwks(&w.app, r.body["access_token"].as_str().expect("token")).await;
    assert_eq!(refreshed["may_act"], json!({ "sub": "planner" }), "{refreshed}");
    let refresh_token = r.body["refresh_token"]
        .as_str()
        .expect("rotated refresh token")
        .to_owned();

    // The planner (through its own client) exchanges the application's token.
    let r = exchange(&w, PLANNER, &w.planner, &app_token, &[("scope", "read")]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (_, delegated) =
        crate::helpers::verify_with_jwks(&w.app, r.body["access_token"].as_str().expect("token")).await;
    assert_eq!(delegated["act"], json!({ "sub": "planner" }));
    assert_eq!(delegated["sub"], claims["sub"], "the user stays the subject");

    // The booker was not approved for the application's tokens: no first hop for it.
    let r = exchange(&w, BOOKER, &w.booker, &app_token, &[("scope", "read")]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);

    // The audit names the agent and the application on the consent.
    let out = w.app.cli(&["audit", "tail", "--agent", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "consent_given" && e["client_id"] == "chat-app"),
        "{events:?}"
    );

    // Suspending the planner revokes the application's tokens that name it, its
    // refresh session included: resuming the planner revives neither.
    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(w.app.introspect(&w.rs, &app_token).await.body["active"], false);
    let out = w.app.cli(&["agent", "resume", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = w
        .app
        .post_form(
            "/token",
            Some(&crate::helpers::basic(CHAT.0, CHAT.1)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token)],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert_eq!(w.app.introspect(&w.rs, &app_token).await.body["active"], false);
}

#[tokio::test]
async fn without_requested_actor_the_applications_token_names_no_agent_and_cannot_be_exchanged() {
    let w = world_with_chat_app().await;
    let extra = format!("&resource={API}");
    let (tokens, b, consent) = alice_approves_with(&w, CHAT, &["read"], &extra).await;
    let app_token = tokens["access_token"].as_str().expect("access token").to_owned();
    assert!(!consent.contains("id=\"agent\""), "no agent is named: {consent}");
    let (_, claims) = crate::helpers::verify_with_jwks(&w.app, &app_token).await;
    assert!(claims.get("may_act").is_none(), "{claims}");
    let r = exchange(&w, PLANNER, &w.planner, &app_token, &[("scope", "read")]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);

    // Her approval without an agent does not cover a request that names one: she is asked again.
    let (status, _, page) = b
        .follow(&format!(
            "/authorize?response_type=code&client_id=chat-app&redirect_uri={REDIRECT}&scope=read{extra}\
             &code_challenge={}&code_challenge_method=S256&requested_actor=planner",
            pkce().1
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("may act for you"),
        "the consent screen, naming the agent: {page}"
    );
}

#[tokio::test]
async fn requested_actor_must_be_a_listed_active_agent() {
    let w = world_with_chat_app().await;
    let b = Browser::new(&w.app);
    let authorize = |actor: &str| {
        format!(
            "/authorize?response_type=code&client_id=chat-app&redirect_uri={REDIRECT}&scope=read\
             &state=s1&code_challenge={}&code_challenge_method=S256&requested_actor={actor}",
            pkce().1
        )
    };
    // Not listed by the application (the booker is registered, but not for chat-app),
    // unknown, or repeated: an error back to the application, before any sign-in.
    for (actor, error) in [
        ("booker", "invalid_request"),
        ("nobody", "invalid_request"),
        ("planner&requested_actor=planner", "invalid_request"),
    ] {
        let (status, location, _) = b.get(&authorize(actor)).await;
        let location = location.unwrap_or_default();
        if actor.contains('&') {
            // A repeated parameter is refused on a page: nothing about it can be trusted.
            assert_eq!(status, 400, "{actor}");
            continue;
        }
        assert_eq!(status, 303, "{actor}: {location}");
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some(error),
            "{actor}: {location}"
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
    }

    // A suspended agent cannot be named.
    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, location, _) = b.get(&authorize("planner")).await;
    let location = location.unwrap_or_default();
    assert_eq!(status, 303, "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied"),
        "{location}"
    );
}

#[tokio::test]
async fn an_application_cannot_list_a_malformed_agent_id() {
    let w = world(RedisChoice::Off).await;
    let file = deputy::import::parse(&format!(
        r#"
[[clients]]
client_id = "chat-app"
client_name = "Chat app"
client_secret = "chat-app-secret-0123456789"
grant_types = ["authorization_code", "{EXCHANGE}"]
redirect_uris = ["{REDIRECT}"]
scope = "read"
agents = ["has space"]
"#
    ))
    .expect("parses");
    let db = w.app.state.db.clone();
    let err = tokio::task::spawn_blocking(move || deputy::import::apply(&db, &file, deputy::clock::now()))
        .await
        .expect("join")
        .expect_err("refused");
    assert!(err.to_string().contains("agents"), "{err}");
}
