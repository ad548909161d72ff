//! `GET /authorize` refusals (RFC 6749 §4.1.2.1, RFC 9700, RFC 7636, RFC 9207)
//! and the authorization code at the token endpoint (RFC 6749 §4.1.3, §10.5):
//! a request that cannot be trusted gets an error page and never a redirect;
//! anything else wrong goes back to the registered redirect URI with `error`,
//! the same `state` and `iss`.
//!
//! The flow helpers here (`AuthRequest`, `authorize_in`, `redeem`, …) are
//! shared with `refresh.rs` and `pages.rs`.

use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;

use crate::browser_flow::{hidden, query_param, seed, sign_in, Browser, RP_ID, RP_REDIRECT, RP_SECRET};
use crate::helpers::{basic, spawn_app, Reply, TestApp};

pub const API: &str = "https://api.example.com";
/// alice's password (see `seed`).
pub const PASSWORD: &str = "correct horse battery";
/// What the seeded relying party asks for by default.
pub const RP_SCOPE: &str = "openid offline_access read";

/// A PKCE pair (RFC 7636 §4.1, §4.2): a 65-character verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = format!("{}-{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

/// The query of an authorization request, in order.
#[derive(Clone, Debug)]
pub struct AuthRequest(Vec<(String, String)>);

impl AuthRequest {
    /// A good request of the seeded RP for [`RP_SCOPE`], state `st-rp`.
    pub fn rp(challenge: &str) -> AuthRequest {
        AuthRequest::for_client(RP_ID, RP_REDIRECT, RP_SCOPE, challenge)
    }

    pub fn for_client(client_id: &str, redirect_uri: &str, scope: &str, challenge: &str) -> AuthRequest {
        AuthRequest(
            [
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("scope", scope),
                ("state", "st-rp"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        )
    }

    /// Replaces the parameter, or adds it.
    pub fn set(mut self, name: &str, value: &str) -> AuthRequest {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(p) => p.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    pub fn without(mut self, name: &str) -> AuthRequest {
        self.0.retain(|(k, _)| k != name);
        self
    }

    /// Adds the parameter once more, even if present.
    pub fn repeat(mut self, name: &str, value: &str) -> AuthRequest {
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn path(&self) -> String {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.0)
            .finish();
        format!("/authorize?{q}")
    }
}

/// The `scope` checkboxes a consent page offers.
pub fn offered_scopes(page: &str) -> Vec<String> {
    let marker = "name=\"scope\" value=\"";
    page.match_indices(marker)
        .map(|(i, _)| {
            page[i + marker.len()..]
                .split('"')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The consent form as the page would send it: every offered scope, one day, `action`.
pub fn consent_form(page: &str, action: &str) -> Vec<(String, String)> {
    let mut form = vec![
        ("csrf".to_owned(), hidden(page, "csrf")),
        ("request".to_owned(), hidden(page, "request")),
    ];
    form.extend(offered_scopes(page).into_iter().map(|s| ("scope".to_owned(), s)));
    form.push(("duration".to_owned(), "86400".to_owned()));
    form.push(("action".to_owned(), action.to_owned()));
    form
}

pub async fn post_owned(b: &Browser, path: &str, form: &[(String, String)]) -> (u16, Option<String>, String) {
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post(path, &refs).await
}

/// Walks the browser from an authorization request back to the client: signs
/// in as `user` (password `password`) when asked, approves everything on the
/// consent page when it shows. Returns the redirect to the client.
pub async fn authorize_as(b: &Browser, request: &AuthRequest, user: &str, password: &str) -> String {
    let (mut status, mut at, mut page) = b.follow(&request.path()).await;
    if status == 200 && at.contains("/login?") {
        let (s, next, body) = sign_in(b, &at, user, password).await;
        assert_eq!(s, 303, "sign-in as {user} failed: {body}");
        (status, at, page) = b.follow(&next.expect("location after sign-in")).await;
    }
    if status == 200 && at.contains("/consent?") {
        let (s, next, body) = post_owned(b, "/consent", &consent_form(&page, "approve")).await;
        assert_eq!(s, 303, "consent failed: {body}");
        return next.expect("redirect to the client");
    }
    assert_eq!(
        status, 303,
        "expected a redirect to the client, got a page at {at}: {page}"
    );
    at
}

/// [`authorize_as`] for alice.
pub async fn authorize_in(b: &Browser, request: &AuthRequest) -> String {
    authorize_as(b, request, "alice", PASSWORD).await
}

/// The code of a successful authorization response (checked: `state` and `iss` present, no `error`).
pub fn code_of(app: &TestApp, location: &str) -> String {
    assert_eq!(query_param(location, "error"), None, "{location}");
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some(app.settings.issuer.as_str())
    );
    query_param(location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

pub fn rp() -> (String, String) {
    (RP_ID.to_owned(), RP_SECRET.to_owned())
}

/// Redeems a code as the seeded RP (client_secret_basic).
pub async fn redeem(app: &TestApp, code: &str, verifier: &str) -> Reply {
    app.post_form(
        "/token",
        Some(&basic(RP_ID, RP_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Signs alice in on `b`, approves [`RP_SCOPE`] for the RP and redeems the code: the token response.
pub async fn rp_tokens(app: &TestApp, b: &Browser) -> Value {
    let p = pkce();
    let location = authorize_in(b, &AuthRequest::rp(&p.challenge)).await;
    let r = redeem(app, &code_of(app, &location), &p.verifier).await;
    assert_eq!(r.status, 200, "code redemption failed: {:?}", r.body);
    assert!(r.body["refresh_token"].is_string(), "{:?}", r.body);
    r.body
}

/// Refreshes with `token` as `client` (client_secret_basic).
pub async fn refresh(app: &TestApp, (id, secret): &(String, String), token: &str, scope: Option<&str>) -> Reply {
    let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        params.push(("scope", s));
    }
    app.post_form("/token", Some(&basic(id, secret)), &params).await
}

/// Is `token` active at introspection, asked by `caller`? An inactive answer says nothing more (RFC 7662 §2.2).
pub async fn active(app: &TestApp, caller: &(String, String), token: &str) -> bool {
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

pub fn str_of<'a>(body: &'a Value, name: &str) -> &'a str {
    body[name].as_str().unwrap_or_else(|| panic!("no {name} in {body:?}"))
}

/// A client allowed only client_credentials, with a registered redirect URI.
const M2M: &str = "[[clients]]\nclient_id = \"m2m\"\nclient_name = \"Machine\"\n\
    client_secret = \"m2m-secret-0123456789\"\ngrant_types = [\"client_credentials\"]\n\
    redirect_uris = [\"https://m2m.example/cb\"]\nscope = \"read\"\n";

/// A public client: no secret, PKCE only.
const SPA: &str = "[[clients]]\nclient_id = \"spa\"\nclient_name = \"Single Page App\"\n\
    token_endpoint_auth_method = \"none\"\ngrant_types = [\"authorization_code\"]\n\
    redirect_uris = [\"https://spa.example/cb\"]\nscope = \"openid read\"\nresources = [\"https://api.example.com\"]\n";

/// A second confidential RP with the same redirect URI as `rp`.
const RP2: &str = "[[clients]]\nclient_id = \"rp2\"\nclient_name = \"Other RP\"\n\
    client_secret = \"rp2-secret-0123456789\"\ngrant_types = [\"authorization_code\", \"refresh_token\"]\n\
    redirect_uris = [\"https://rp.example/callback\"]\nscope = \"openid offline_access read\"\n\
    resources = [\"https://api.example.com\"]\n";

/// A native app on a loopback redirect (RFC 8252 §7.3).
const NATIVE: &str = "[[clients]]\nclient_id = \"native\"\nclient_name = \"Native App\"\n\
    token_endpoint_auth_method = \"none\"\ngrant_types = [\"authorization_code\"]\n\
    redirect_uris = [\"http://127.0.0.1/cb\"]\nscope = \"openid read\"\nresources = [\"https://api.example.com\"]\n";

fn assert_error_page(what: &str, r: &Reply) {
    assert_eq!(r.status, 400, "{what}: {:?}", r.body);
    assert_eq!(r.header("location"), None, "{what}: never a redirect (§4.1.2.1)");
    assert!(
        r.header("content-type").is_some_and(|c| c.starts_with("text/html")),
        "{what}: an HTML page, {:?}",
        r.headers
    );
    let body = r.body.as_str().unwrap_or_default();
    assert!(body.contains("role=\"alert\""), "{what}: an error page: {body}");
    assert!(!body.contains("code="), "{what}: no code: {body}");
}

#[tokio::test]
async fn an_untrusted_client_or_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let app = spawn_app().await;
    seed(&app).await;
    app.import(M2M).await;
    let p = pkce();
    let good = AuthRequest::rp(&p.challenge);
    let cases: Vec<(&str, AuthRequest)> = vec![
        ("an unknown client_id", good.clone().set("client_id", "nobody")),
        ("no client_id", good.clone().without("client_id")),
        (
            "an unregistered redirect_uri",
            good.clone().set("redirect_uri", "https://evil.example/callback"),
        ),
        (
            "an extra path segment",
            good.clone().set("redirect_uri", "https://rp.example/callback/more"),
        ),
        (
            "an extra query",
            good.clone().set("redirect_uri", "https://rp.example/callback?next=x"),
        ),
        (
            "a trailing slash",
            good.clone().set("redirect_uri", "https://rp.example/callback/"),
        ),
        (
            "another scheme",
            good.clone().set("redirect_uri", "http://rp.example/callback"),
        ),
        (
            "another client's redirect_uri",
            good.clone().set("redirect_uri", "https://m2m.example/cb"),
        ),
        ("no redirect_uri", good.clone().without("redirect_uri")),
        ("a repeated state", good.clone().repeat("state", "again")),
        (
            "a repeated redirect_uri",
            good.clone().repeat("redirect_uri", "https://evil.example/callback"),
        ),
        ("a repeated client_id", good.clone().repeat("client_id", "m2m")),
        (
            "an unregistered redirect_uri on an otherwise bad request",
            good.clone()
                .set("redirect_uri", "https://evil.example/callback")
                .set("response_type", "token"),
        ),
    ];
    for (what, request) in cases {
        let r = app.get(&request.path()).await;
        assert_error_page(what, &r);
    }
}

#[tokio::test]
async fn other_refusals_go_back_to_the_registered_redirect_uri_with_error_state_and_iss() {
    let app = spawn_app().await;
    seed(&app).await;
    app.import(M2M).await;
    let p = pkce();
    let good = AuthRequest::rp(&p.challenge);
    let s256_of_plain = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let cases: Vec<(&str, AuthRequest, &str)> = vec![
        (
            "response_type=token (no implicit, RFC 9700 §2.1.2)",
            good.clone().set("response_type", "token"),
            "unsupported_response_type",
        ),
        (
            "response_type=code id_token",
            good.clone().set("response_type", "code id_token"),
            "unsupported_response_type",
        ),
        (
            "no response_type",
            good.clone().without("response_type"),
            "invalid_request",
        ),
        (
            "no code_challenge (PKCE required)",
            good.clone().without("code_challenge").without("code_challenge_method"),
            "invalid_request",
        ),
        (
            "code_challenge_method=plain",
            good.clone()
                .set("code_challenge", s256_of_plain)
                .set("code_challenge_method", "plain"),
            "invalid_request",
        ),
        (
            "no code_challenge_method (defaults to plain, RFC 7636 §4.3)",
            good.clone().without("code_challenge_method"),
            "invalid_request",
        ),
        (
            "a challenge too short",
            good.clone().set("code_challenge", "abc"),
            "invalid_request",
        ),
        (
            "a challenge outside base64url",
            good.clone()
                .set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"),
            "invalid_request",
        ),
        (
            "a scope beyond the registration",
            good.clone().set("scope", "openid read admin"),
            "invalid_scope",
        ),
        (
            "an unregistered resource",
            good.clone().set("resource", "https://other.example.com"),
            "invalid_target",
        ),
        (
            "a resource with a fragment",
            good.clone().set("resource", "https://api.example.com#frag"),
            "invalid_target",
        ),
        (
            "a request object",
            good.clone()
                .set("request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."),
            "request_not_supported",
        ),
        (
            "prompt=none while nobody is signed in",
            good.clone().set("prompt", "none"),
            "login_required",
        ),
        (
            "prompt=none with login",
            good.clone().set("prompt", "none login"),
            "invalid_request",
        ),
        (
            "prompt=none with consent",
            good.clone().set("prompt", "consent none"),
            "invalid_request",
        ),
    ];
    for (i, (what, request, error)) in cases.into_iter().enumerate() {
        let state = format!("state-{i}");
        let r = app.get(&request.set("state", &state).path()).await;
        assert_eq!(r.status, 303, "{what}: {:?}", r.body);
        let location = r.header("location").unwrap_or_else(|| panic!("{what}: no Location"));
        assert!(location.starts_with(&format!("{RP_REDIRECT}?")), "{what}: {location}");
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some(error),
            "{what}: {location}"
        );
        assert_eq!(query_param(location, "state"), Some(state), "{what}: {location}");
        assert_eq!(
            query_param(location, "iss").as_deref(),
            Some(app.settings.issuer.as_str()),
            "{what}: RFC 9207 iss"
        );
        assert_eq!(query_param(location, "code"), None, "{what}: {location}");
    }

    // A client not allowed the authorization code flow, at its own registered redirect URI.
    let r = app
        .get(
            &AuthRequest::for_client("m2m", "https://m2m.example/cb", "read", &p.challenge)
                .set("state", "m2m-state")
                .path(),
        )
        .await;
    assert_eq!(r.status, 303, "{:?}", r.body);
    let location = r.header("location").expect("Location");
    assert!(location.starts_with("https://m2m.example/cb?"), "{location}");
    assert_eq!(query_param(location, "error").as_deref(), Some("unauthorized_client"));
    assert_eq!(query_param(location, "state").as_deref(), Some("m2m-state"));
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some(app.settings.issuer.as_str())
    );
}

#[tokio::test]
async fn prompt_none_answers_consent_required_until_the_user_has_approved_and_then_a_code() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let (status, next, body) = sign_in(&b, "/login", "alice", PASSWORD).await;
    assert_eq!((status, next.as_deref()), (303, Some("/account")), "{body}");

    let p = pkce();
    let silent = AuthRequest::rp(&p.challenge)
        .set("prompt", "none")
        .set("state", "silent");
    let (status, location, _) = b.get(&silent.path()).await;
    assert_eq!(status, 303);
    let location = location.expect("Location");
    assert!(location.starts_with(&format!("{RP_REDIRECT}?")), "{location}");
    assert_eq!(query_param(&location, "error").as_deref(), Some("consent_required"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("silent"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(app.settings.issuer.as_str())
    );

    // Once approved, prompt=none gets a code without any page.
    let p2 = pkce();
    authorize_in(&b, &AuthRequest::rp(&p2.challenge)).await;
    let p3 = pkce();
    let (status, location, _) = b
        .get(
            &AuthRequest::rp(&p3.challenge)
                .set("prompt", "none")
                .set("state", "again")
                .path(),
        )
        .await;
    assert_eq!(status, 303);
    let location = location.expect("Location");
    assert_eq!(query_param(&location, "state").as_deref(), Some("again"));
    let r = redeem(&app, &code_of(&app, &location), &p3.verifier).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn a_loopback_redirect_uri_may_use_any_port_but_not_another_path_or_host() {
    let app = spawn_app().await;
    seed(&app).await;
    app.import(NATIVE).await;
    let p = pkce();
    let on = |uri: &str| AuthRequest::for_client("native", uri, "openid read", &p.challenge);

    for refused in [
        "http://127.0.0.1:53682/other",
        "http://127.0.0.1:53682/cb/",
        "http://localhost:53682/cb",
        "https://127.0.0.1:53682/cb",
        "http://127.0.0.2:53682/cb",
    ] {
        let r = app.get(&on(refused).path()).await;
        assert_error_page(refused, &r);
    }

    let b = Browser::new(&app);
    let location = authorize_in(&b, &on("http://127.0.0.1:53682/cb")).await;
    assert!(location.starts_with("http://127.0.0.1:53682/cb?"), "{location}");
    let code = code_of(&app, &location);
    let r = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "native"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:53682/cb"),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn a_code_with_a_wrong_or_malformed_verifier_is_refused() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let other = pkce();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "another well-formed verifier",
            other.verifier.clone(),
            400,
            "invalid_grant",
        ),
        ("a 42-character verifier", "a".repeat(42), 400, "invalid_request"),
        ("a 129-character verifier", "a".repeat(129), 400, "invalid_request"),
        (
            "a verifier with a character outside [A-Za-z0-9-._~]",
            format!("{}+", "a".repeat(50)),
            400,
            "invalid_request",
        ),
    ];
    for (what, verifier, status, error) in cases {
        let p = pkce();
        let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
        let r = redeem(&app, &code, &verifier).await;
        assert_eq!((r.status, r.error()), (status, error), "{what}: {:?}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }
    // And no verifier at all.
    let p = pkce();
    let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
    let r = app
        .post_form(
            "/token",
            Some(&basic(RP_ID, RP_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"), "{:?}", r.body);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let app = spawn_app().await;
    seed(&app).await;
    app.import(RP2).await;
    let b = Browser::new(&app);

    // Redeemed by another (authenticated) client.
    let p = pkce();
    let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
    let r = app
        .post_form(
            "/token",
            Some(&basic("rp2", "rp2-secret-0123456789")),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());

    // With a redirect_uri other than the authorization request's.
    for other in [
        "https://rp.example/callback/",
        "https://rp.example/callback?x=1",
        "https://rp.example/other",
    ] {
        let p = pkce();
        let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
        let r = app
            .post_form(
                "/token",
                Some(&basic(RP_ID, RP_SECRET)),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", other),
                    ("code_verifier", &p.verifier),
                ],
            )
            .await;
        assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{other}: {:?}", r.body);
    }
}

#[tokio::test]
async fn a_code_used_twice_is_refused_and_what_its_first_use_issued_is_revoked() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let p = pkce();
    let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);

    let first = redeem(&app, &code, &p.verifier).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let access = str_of(&first.body, "access_token").to_owned();
    let refresh_token = str_of(&first.body, "refresh_token").to_owned();
    assert!(active(&app, &rp(), &access).await);

    let second = redeem(&app, &code, &p.verifier).await;
    assert_eq!(
        (second.status, second.error()),
        (400, "invalid_grant"),
        "{:?}",
        second.body
    );
    assert!(second.body.get("access_token").is_none());

    // RFC 6749 §4.1.2 / §10.5: the tokens the code issued are revoked.
    assert!(!active(&app, &rp(), &access).await, "the first access token is revoked");
    let r = refresh(&app, &rp(), &refresh_token, None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let p = pkce();
    let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
    // Rather than wait 60 s: age every stored code by an hour.
    app.state
        .db
        .run(|c| {
            use diesel::RunQueryDsl;
            diesel::sql_query("UPDATE authorization_codes SET expires_at = expires_at - 3600").execute(c)?;
            Ok(())
        })
        .await
        .expect("codes aged");
    let r = redeem(&app, &code, &p.verifier).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());
}

#[tokio::test]
async fn a_public_client_redeems_with_pkce_alone_but_a_confidential_client_needs_its_secret() {
    let app = spawn_app().await;
    seed(&app).await;
    app.import(SPA).await;
    let b = Browser::new(&app);

    let p = pkce();
    let location = authorize_in(
        &b,
        &AuthRequest::for_client("spa", "https://spa.example/cb", "openid read", &p.challenge),
    )
    .await;
    assert!(location.starts_with("https://spa.example/cb?"), "{location}");
    let code = code_of(&app, &location);
    let r = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("code", &code),
                ("redirect_uri", "https://spa.example/cb"),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert!(r.body["access_token"].is_string() && r.body["id_token"].is_string());
    assert!(
        r.body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );

    let p = pkce();
    let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
    let r = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", RP_ID),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_client"), "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());
}

#[tokio::test]
async fn a_state_of_four_kib_with_non_ascii_text_comes_back_byte_for_byte() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let unit = "\u{e9}tat \u{2603} \u{1f642} &=+/?%#;ab";
    let mut state = String::new();
    while state.len() + unit.len() <= 4096 {
        state.push_str(unit);
    }
    state.push_str(&"x".repeat(4096 - state.len()));
    assert_eq!(state.len(), 4096);

    let p = pkce();
    let location = authorize_in(&b, &AuthRequest::rp(&p.challenge).set("state", &state)).await;
    assert_eq!(query_param(&location, "state").as_deref(), Some(state.as_str()));
    let r = redeem(&app, &code_of(&app, &location), &p.verifier).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // An error response carries it back as well.
    let refused = AuthRequest::rp(&p.challenge)
        .set("state", &state)
        .set("response_mode", "fragment");
    let (status, location, body) = b.get(&refused.path()).await;
    assert_eq!(status, 303, "{body}");
    let location = location.expect("redirect");
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query_param(&location, "state").as_deref(), Some(state.as_str()));

    // Beyond 8 KiB it is refused (and still returned).
    let big = "s".repeat(8193);
    let (status, location, body) = b.get(&AuthRequest::rp(&p.challenge).set("state", &big).path()).await;
    assert_eq!(status, 303, "{body}");
    let location = location.expect("redirect");
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query_param(&location, "state").as_deref(), Some(big.as_str()));
}
