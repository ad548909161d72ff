//! RFC 8693 token exchange: an agent trades a user's consented token and its
//! own signed assertion for a narrow, short-lived, single-audience token whose
//! `act` records the chain; sub-agents narrow further; the kill switch and the
//! user's withdrawal bite at once.

use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{JwsHeader, ES256};
use josekit::jwt::JwtPayload;
use serde_json::{json, Value};

use crate::browser_flow::{hidden, pkce, query_param, sign_in, Browser};
use crate::helpers::{basic, spawn_app, RedisChoice, TestApp};

pub const API: &str = "https://api.example.com";
pub const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const REDIRECT: &str = "https://planner.example/cb";

pub struct AgentKey {
    pub id: String,
    private: Jwk,
    pub public: Value,
}

impl AgentKey {
    pub fn new(id: &str) -> AgentKey {
        let pair = ES256.generate_key_pair().expect("key");
        let mut private = pair.to_jwk_private_key();
        private.set_key_id(format!("{id}-key"));
        let mut public = pair.to_jwk_public_key();
        public.set_key_id(format!("{id}-key"));
        AgentKey {
            id: id.to_owned(),
            private,
            public: Value::Object(public.as_ref().clone()),
        }
    }

    /// A signed actor assertion: iss = sub = agent, aud = issuer, 60 s, fresh jti.
    pub fn assertion(&self, issuer: &str) -> String {
        let now = deputy::clock::now();
        let mut p = JwtPayload::new();
        for (k, v) in [
            ("iss", json!(self.id)),
            ("sub", json!(self.id)),
            ("aud", json!(issuer)),
            ("exp", json!(now + 60)),
            ("iat", json!(now)),
            ("jti", json!(uuid::Uuid::new_v4().to_string())),
        ] {
            p.set_claim(k, Some(v)).expect("claim");
        }
        let mut h = JwsHeader::new();
        h.set_token_type("JWT");
        h.set_key_id(format!("{}-key", self.id));
        let signer = ES256.signer_from_jwk(&self.private).expect("signer");
        josekit::jwt::encode_with_signer(&p, &h, &signer).expect("sign")
    }
}

pub struct World {
    pub app: TestApp,
    pub planner: AgentKey,
    pub booker: AgentKey,
    pub rs: (String, String),
}

pub async fn world(redis: RedisChoice) -> World {
    let app = crate::helpers::spawn_app_with(redis, |_| {}).await;
    let planner = AgentKey::new("planner");
    let booker = AgentKey::new("booker");
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
scope = "openid read write"
resources = ["{API}"]

[[clients]]
client_id = "booker-client"
client_name = "Booker"
client_secret = "booker-secret-0123456789"
grant_types = ["{EXCHANGE}"]
scope = "read"

[[clients]]
client_id = "api-rs"
client_name = "The API (resource server)"
client_secret = "api-rs-secret-0123456789"
scope = "read"
resources = ["{API}"]

[[agents]]
agent_id = "planner"
client_id = "planner-client"
name = "Trip planner"
publisher = "Acme Agents"
allowed_scopes = "read write"
allowed_audiences = ["{API}"]
max_token_ttl = 120
max_delegation_depth = 2
may_delegate_to = ["booker"]
jwks = {{ keys = [{}] }}

[[agents]]
agent_id = "booker"
client_id = "booker-client"
name = "Booker"
publisher = "Acme Agents"
allowed_scopes = "read"
allowed_audiences = ["{API}"]
max_token_ttl = 60
max_delegation_depth = 2
jwks = {{ keys = [{}] }}
"#,
        toml_inline(&planner.public),
        toml_inline(&booker.public),
    ))
    .await;
    World {
        app,
        planner,
        booker,
        rs: ("api-rs".into(), "api-rs-secret-0123456789".into()),
    }
}

pub fn toml_inline(v: &Value) -> String {
    let fields: Vec<String> = v
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| format!("{k} = {}", v))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

/// Alice approves the planner (its own client asks) and the planner gets her token.
pub async fn alice_token_for_planner(w: &World) -> String {
    alice_signs_in_for_planner(w).await.0
}

/// The same, keeping alice's browser (signed in) for the account page.
pub async fn alice_signs_in_for_planner(w: &World) -> (String, Browser) {
    alice_approves(
        w,
        ("planner-client", "planner-secret-0123456789"),
        &["openid", "read", "write"],
        Some(API),
    )
    .await
}

/// Alice signs in and approves `scopes` (on `resource`, if any) for `client`,
/// whose consent screen must name the agent's publisher; the client redeems the code.
pub async fn alice_approves(
    w: &World,
    client: (&str, &str),
    scopes: &[&str],
    resource: Option<&str>,
) -> (String, Browser) {
    let extra = resource.map(|r| format!("&resource={r}")).unwrap_or_default();
    let (tokens, browser, consent) = alice_approves_with(w, client, scopes, &extra).await;
    let token = tokens["access_token"].as_str().expect("token").to_owned();
    assert!(
        consent.contains("Acme Agents"),
        "the consent screen names the agent's publisher: {consent}"
    );
    (token, browser)
}

/// [`alice_approves`] with more authorization request parameters (`&name=value...`);
/// returns the token response and the consent screen as shown.
pub async fn alice_approves_with(
    w: &World,
    client: (&str, &str),
    scopes: &[&str],
    extra: &str,
) -> (Value, Browser, String) {
    alice_approves_details(w, client, scopes, extra, &[]).await
}

/// [`alice_approves_with`], keeping the requested `authorization_details` entries at
/// `details` (indexes) ticked on the consent screen and unticking the others.
pub async fn alice_approves_details(
    w: &World,
    (client_id, secret): (&str, &str),
    scopes: &[&str],
    extra: &str,
    details: &[usize],
) -> (Value, Browser, String) {
    let b = Browser::new(&w.app);
    let (verifier, challenge) = pkce();
    let url = format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope={}{extra}\
         &state=st&code_challenge={challenge}&code_challenge_method=S256",
        scopes.join("%20")
    );
    let (_, at, _) = b.follow(&url).await;
    let (_, next, _) = sign_in(&b, &at, "alice", "correct horse battery").await;
    let (status, _, consent) = b.follow(&next.expect("location")).await;
    assert_eq!(status, 200, "{consent}");
    let mut form = vec![
        ("csrf", hidden(&consent, "csrf")),
        ("request", hidden(&consent, "request")),
        ("duration", "3600".to_owned()),
        ("action", "approve".to_owned()),
    ];
    form.extend(scopes.iter().map(|s| ("scope", (*s).to_owned())));
    form.extend(details.iter().map(|i| ("detail", i.to_string())));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, location, _) = b.post("/consent", &form).await;
    let code = query_param(&location.expect("redirect"), "code").expect("code");
    let r = w
        .app
        .post_form(
            "/token",
            Some(&basic(client_id, secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (r.body, b, consent)
}

pub async fn exchange(
    w: &World,
    client: (&str, &str),
    actor: &AgentKey,
    subject: &str,
    extra: &[(&str, &str)],
) -> crate::helpers::Reply {
    let assertion = actor.assertion(&w.app.settings.issuer);
    let mut params = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", AT),
        ("actor_token", assertion.as_str()),
        ("actor_token_type", JWT),
    ];
    params.extend_from_slice(extra);
    w.app
        .post_form("/token", Some(&basic(client.0, client.1)), &params)
        .await
}

pub const PLANNER: (&str, &str) = ("planner-client", "planner-secret-0123456789");
pub const BOOKER: (&str, &str) = ("booker-client", "booker-secret-0123456789");

#[tokio::test]
async fn an_agent_gets_a_narrow_token_and_a_sub_agent_a_narrower_one_with_nested_act() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    let r = exchange(
        &w,
        PLANNER,
        &w.planner,
        &user_token,
        &[("scope", "read"), ("resource", API)],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["issued_token_type"], AT);
    assert_eq!(r.body["token_type"], "Bearer");
    assert!(
        r.body.get("refresh_token").is_none(),
        "no refresh token for a delegated token"
    );
    assert!(
        r.body["expires_in"].as_i64().expect("expires_in") <= 120,
        "the agent's ceiling caps the lifetime"
    );
    let planner_token = r.body["access_token"].as_str().expect("token").to_owned();
    let (_, claims) = crate::helpers::verify_with_jwks(&w.app, &planner_token).await;
    assert_eq!(claims["act"], json!({ "sub": "planner" }));
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["aud"], API);

    let seen = w.app.introspect(&w.rs, &planner_token).await;
    assert_eq!(seen.body["active"], true, "{:?}", seen.body);
    assert_eq!(seen.body["act"], json!({ "sub": "planner" }));
    assert!(seen.body["grant_id"].is_string());

    // The planner hands on to the booker, which re-exchanges: one more level, never wider.
    let r = exchange(&w, BOOKER, &w.booker, &planner_token, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let booker_token = r.body["access_token"].as_str().expect("token").to_owned();
    let (_, claims) = crate::helpers::verify_with_jwks(&w.app, &booker_token).await;
    assert_eq!(claims["act"], json!({ "sub": "booker", "act": { "sub": "planner" } }));
    assert_eq!(claims["scope"], "read");
    let r = exchange(&w, BOOKER, &w.booker, &planner_token, &[("scope", "read write")]).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_scope"),
        "a sub-agent cannot widen"
    );

    // The kill switch: suspending the planner revokes both delegated tokens at once
    // (and alice's token, whose `may_act` names the planner).
    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let peer = w.app.spawn_peer().await;
    for (who, t) in [("planner", &planner_token), ("booker", &booker_token)] {
        assert_eq!(
            w.app.introspect(&w.rs, t).await.body,
            json!({ "active": false }),
            "{who} on instance 1"
        );
        assert_eq!(
            peer.introspect(&w.rs, t).await.body,
            json!({ "active": false }),
            "{who} on instance 2"
        );
    }
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "unauthorized_client"),
        "a suspended agent gets nothing"
    );

    // Every decision is in the audit log.
    let db = w.app.state.db.clone();
    let events = db
        .run(|c| deputy::storage::audit::query(c, &deputy::storage::audit::AuditFilter::default()))
        .await
        .expect("audit readable");
    let decisions: Vec<(&str, &str)> = events.iter().map(|e| (e.event.as_str(), e.decision.as_str())).collect();
    assert!(decisions.contains(&("token_exchange", "issued")), "{decisions:?}");
    assert!(decisions.contains(&("token_exchange", "denied")), "{decisions:?}");
    assert!(decisions.contains(&("agent_suspended", "suspended")), "{decisions:?}");
    let issued = events
        .iter()
        .find(|e| e.decision == "issued" && e.agent_id.as_deref() == Some("booker"))
        .expect("booker issue");
    assert!(
        issued.request_id.as_deref().is_some_and(|id| id.len() >= 32),
        "the request id is recorded"
    );
    assert_eq!(issued.chain.as_deref(), Some(r#"["booker","planner"]"#));
}

#[tokio::test]
async fn token_exchange_refusals_name_the_rfc_8693_error() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    type Case<'a> = (
        &'a str,
        (&'a str, &'a str),
        &'a AgentKey,
        String,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "scope beyond consent and ceiling",
            PLANNER,
            &w.planner,
            user_token.clone(),
            vec![("scope", "admin")],
            400,
            "invalid_scope",
        ),
        (
            "another audience",
            PLANNER,
            &w.planner,
            user_token.clone(),
            vec![("resource", "https://other.example")],
            400,
            "invalid_target",
        ),
        (
            "garbage subject token",
            PLANNER,
            &w.planner,
            "garbage".into(),
            vec![],
            400,
            "invalid_request",
        ),
        (
            "actor not named by the consent",
            BOOKER,
            &w.booker,
            user_token.clone(),
            vec![],
            400,
            "invalid_grant",
        ),
        (
            "actor key is not the client's agent",
            PLANNER,
            &w.booker,
            user_token.clone(),
            vec![],
            400,
            "invalid_request",
        ),
        (
            "unsupported requested_token_type",
            PLANNER,
            &w.planner,
            user_token.clone(),
            vec![("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")],
            400,
            "invalid_request",
        ),
        (
            "unknown authorization_details type",
            PLANNER,
            &w.planner,
            user_token.clone(),
            vec![("authorization_details", r#"[{"type":"launch_missiles"}]"#)],
            400,
            "invalid_authorization_details",
        ),
    ];
    for (case, client, actor, subject, extra, status, error) in cases {
        let r = exchange(&w, client, actor, &subject, &extra).await;
        assert_eq!((r.status, r.error()), (status, error), "{case}: {:?}", r.body);
    }
    // The same actor assertion twice: the second is a replay.
    let assertion = w.planner.assertion(&w.app.settings.issuer);
    let params = [
        ("grant_type", EXCHANGE),
        ("subject_token", user_token.as_str()),
        ("subject_token_type", AT),
        ("actor_token", assertion.as_str()),
        ("actor_token_type", JWT),
    ];
    let first = w
        .app
        .post_form("/token", Some(&basic(PLANNER.0, PLANNER.1)), &params)
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let again = w
        .app
        .post_form("/token", Some(&basic(PLANNER.0, PLANNER.1)), &params)
        .await;
    assert_eq!((again.status, again.error()), (400, "invalid_request"));
    // actor_token without its type, and no actor at all.
    let r = w
        .app
        .post_form(
            "/token",
            Some(&basic(PLANNER.0, PLANNER.1)),
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &user_token),
                ("subject_token_type", AT),
                ("actor_token", "x"),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"));
    // Rich authorization details of a known type are still refused when the
    // user's token carries none: it covers none (tests/api/authorization_details.rs).
    let details = r#"[{"type":"tool_invocation","tool":"calendar.create_event"}]"#;
    let r = exchange(
        &w,
        PLANNER,
        &w.planner,
        &user_token,
        &[("authorization_details", details)],
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_authorization_details"),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn withdrawing_consent_revokes_every_derived_token() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    let planner_token = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let booker_token = exchange(&w, BOOKER, &w.booker, &planner_token, &[]).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    // Revoking the planner's token (RFC 7009) takes the booker's, derived from it, along.
    let r = w
        .app
        .post_form(
            "/revoke",
            Some(&basic(PLANNER.0, PLANNER.1)),
            &[("token", &planner_token)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        w.app.introspect(&w.rs, &booker_token).await.body,
        json!({ "active": false })
    );
    // The user withdraws the grant: the rest goes too.
    let grant_id = w.app.introspect(&w.rs, &user_token).await.body["grant_id"]
        .as_str()
        .expect("grant")
        .to_owned();
    let revoked = w
        .app
        .state
        .revocations
        .revoke_grant(&grant_id, deputy::clock::now(), deputy::clock::now() + 3600)
        .await;
    assert!(revoked.expect("revoked"));
    assert_eq!(
        w.app.introspect(&w.rs, &user_token).await.body,
        json!({ "active": false })
    );
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_request"),
        "a revoked subject token is refused"
    );
    let _ = spawn_app;
}

const ADMIN: &str = "admin-token-0123456789-0123456789-abcdef";

#[tokio::test]
async fn the_admin_api_lists_suspends_and_shows_the_audit_and_audit_tail_streams_it() {
    let mut w = world(RedisChoice::ByBackend).await;
    // The same deployment, with a bootstrap admin token configured.
    let mut settings = w.app.settings.clone();
    settings.admin_token = Some(ADMIN.into());
    w.app.settings = settings;
    let app = w.app.spawn_peer().await;
    let user_token = alice_token_for_planner(&w).await;
    let planner_token = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    let get = |path: &'static str, auth: Option<&'static str>| {
        let mut r = app.http.get(format!("{}{path}", app.address));
        if let Some(a) = auth {
            r = r.header("Authorization", format!("Bearer {a}"));
        }
        r.send()
    };
    let r = get("/admin/agents", None).await.expect("sent");
    assert_eq!(r.status(), 401);
    let r = get("/admin/agents", Some("wrong-token")).await.expect("sent");
    assert_eq!(r.status(), 401);
    let agents: Value = get("/admin/agents", Some(ADMIN))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(agents
        .as_array()
        .expect("array")
        .iter()
        .any(|a| a["agent_id"] == "planner" && a["publisher"] == "Acme Agents"));

    let r = app
        .http
        .post(format!("{}/admin/agents/planner/suspend", app.address))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.introspect(&w.rs, &planner_token).await.body,
        json!({ "active": false })
    );

    let events: Value = get("/admin/audit?agent=planner", Some(ADMIN))
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let kinds: Vec<(&str, &str)> = events
        .as_array()
        .expect("array")
        .iter()
        .map(|e| (e["event"].as_str().unwrap_or(""), e["decision"].as_str().unwrap_or("")))
        .collect();
    assert!(kinds.contains(&("consent_given", "given")), "{kinds:?}");
    assert!(kinds.contains(&("token_exchange", "issued")), "{kinds:?}");
    assert!(kinds.contains(&("agent_suspended", "suspended")), "{kinds:?}");

    let out = app
        .cli(&["audit", "tail", "--agent", "planner", "--decision", "issued"])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(!lines.is_empty());
    assert!(lines
        .iter()
        .all(|e| e["agent_id"] == "planner" && e["decision"] == "issued"));
}

#[tokio::test]
async fn the_account_page_shows_what_agents_did_on_the_users_behalf() {
    let w = world(RedisChoice::ByBackend).await;
    let (user_token, browser) = alice_signs_in_for_planner(&w).await;
    let ok = exchange(&w, PLANNER, &w.planner, &user_token, &[("scope", "read")]).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let refused = exchange(&w, PLANNER, &w.planner, &user_token, &[("scope", "admin")]).await;
    assert_eq!(refused.status, 400);
    let (status, _, page) = browser.get("/account").await;
    assert_eq!(status, 200);
    let activity = &page[page.find("id=\"activity\"").expect("activity section")..];
    // In words a person reads: the agent's name, what it asked, the outcome, and why a refusal.
    assert!(
        activity.contains("<strong>Trip planner</strong> asked for a token to act for you: <strong>granted</strong>"),
        "{activity}"
    );
    assert!(activity.contains("<strong>refused</strong>"), "{activity}");
    assert!(activity.contains("Why: invalid_scope"), "{activity}");
    // The booker, acting for the planner; and the planner's suspension.
    let planner_token = ok.body["access_token"].as_str().expect("token").to_owned();
    let booked = exchange(&w, BOOKER, &w.booker, &planner_token, &[]).await;
    assert_eq!(booked.status, 200, "{:?}", booked.body);
    let out = w.app.cli(&["agent", "suspend", "planner"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, _, page) = browser.get("/account").await;
    let activity = &page[page.find("id=\"activity\"").expect("activity section")..];
    assert!(
        activity.contains("<strong>Booker, acting for Trip planner</strong>"),
        "{activity}"
    );
    assert!(
        activity.contains("<strong>Trip planner</strong> was suspended by an administrator"),
        "{activity}"
    );
}

#[tokio::test]
async fn a_chain_deeper_than_an_agent_allows_and_an_expired_subject_are_refused() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    let planner_token = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    // The booker now allows only chains of one: planner → booker is two.
    w.app
        .import(&format!(
            "[[agents]]\nagent_id = \"booker\"\nclient_id = \"booker-client\"\nname = \"Booker\"\npublisher = \"Acme Agents\"\n\
             allowed_scopes = \"read\"\nallowed_audiences = [\"{API}\"]\nmax_token_ttl = 60\nmax_delegation_depth = 1\n\
             jwks = {{ keys = [{}] }}\n",
            toml_inline(&w.booker.public)
        ))
        .await;
    // A registration change reaches a running server within `client_cache_ttl_ms` (1 s).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = exchange(&w, BOOKER, &w.booker, &planner_token, &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert!(
        r.body["error_description"].as_str().unwrap_or("").contains("deeper"),
        "{:?}",
        r.body
    );

    // A delegated token lives 2 s here; once expired it is no subject any more.
    w.app
        .import(&format!(
            "[[agents]]\nagent_id = \"planner\"\nclient_id = \"planner-client\"\nname = \"Trip planner\"\npublisher = \"Acme Agents\"\n\
             allowed_scopes = \"read write\"\nallowed_audiences = [\"{API}\"]\nmax_token_ttl = 2\nmax_delegation_depth = 2\n\
             may_delegate_to = [\"booker\"]\njwks = {{ keys = [{}] }}\n",
            toml_inline(&w.planner.public)
        ))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let short = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert!(short.body["expires_in"].as_i64().expect("expires_in") <= 2);
    let short = short.body["access_token"].as_str().expect("token").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = exchange(&w, BOOKER, &w.booker, &short, &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"), "{:?}", r.body);
}

#[tokio::test]
async fn an_agents_kill_switch_holds_when_redis_restarts_empty() {
    let w = world(RedisChoice::At(crate::helpers::redis_url())).await;
    let user_token = alice_token_for_planner(&w).await;
    let planner_token = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(w
        .app
        .state
        .revocations
        .suspend_agent("planner", deputy::clock::now())
        .await
        .expect("suspended"));
    let prefix = w.app.settings.redis_prefix.clone();
    crate::revocation::delete_keys_under(&prefix).await;
    // Redis is empty: the database answers, and Redis is rebuilt with the kill switch.
    assert_eq!(
        w.app.introspect(&w.rs, &planner_token).await.body,
        json!({ "active": false })
    );
    let mut rebuilt = false;
    for _ in 0..50 {
        if crate::revocation::exists(&format!("{prefix}rev:agent:planner")).await
            && crate::revocation::exists(&format!("{prefix}rev:applied")).await
        {
            rebuilt = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(rebuilt, "Redis was rebuilt with the agent's kill switch");
    assert_eq!(
        w.app.introspect(&w.rs, &planner_token).await.body,
        json!({ "active": false })
    );
    assert_eq!(
        w.app.introspect(&w.rs, &user_token).await.body["active"],
        false,
        "alice's token names the planner (may_act): revoked with it"
    );
}

#[tokio::test]
async fn the_admin_api_answers_bad_input_with_json_errors() {
    let app = crate::helpers::spawn_app_with(RedisChoice::ByBackend, |s| s.admin_token = Some(ADMIN.into())).await;
    let post = |path: String, body: &'static str| {
        app.http
            .post(format!("{}{path}", app.address))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for (path, body, status, error) in [
        ("/admin/agents".to_owned(), "{not json", 400, "invalid_request"),
        (
            "/admin/agents".to_owned(),
            r#"{"agent_id":"x"}"#,
            400,
            "invalid_request",
        ),
        (
            "/admin/agents".to_owned(),
            r#"{"agent_id":"x","client_id":"nobody","name":"X","publisher":"P"}"#,
            400,
            "invalid_request",
        ),
        ("/admin/agents/nobody/suspend".to_owned(), "", 404, "not_found"),
        ("/admin/agents/nobody/explode".to_owned(), "", 404, "not_found"),
        ("/admin/grants/nope/revoke".to_owned(), "", 404, "not_found"),
    ] {
        let r = post(path.clone(), body).await.expect("sent");
        assert_eq!(r.status().as_u16(), status, "{path} {body}");
        let v: Value = r.json().await.expect("a JSON error body");
        assert_eq!(v["error"], error, "{path} {body}: {v}");
    }
    let r = app
        .http
        .get(format!("{}/admin/audit?since=notanumber", app.address))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 400, "a malformed filter is a 400, not a 500");
    let v: Value = r.json().await.expect("a JSON error body");
    assert_eq!(v["error"], "invalid_request");
}

#[tokio::test]
async fn a_consent_that_named_no_resource_lets_the_agent_reach_none() {
    let w = world(RedisChoice::ByBackend).await;
    let scribe = AgentKey::new("scribe");
    w.app
        .import(&format!(
            "[[clients]]\nclient_id = \"scribe-client\"\nclient_name = \"Scribe\"\nclient_secret = \"scribe-secret-0123456789\"\n\
             grant_types = [\"authorization_code\", \"{EXCHANGE}\"]\nredirect_uris = [\"{REDIRECT}\"]\nscope = \"openid read\"\n\n\
             [[agents]]\nagent_id = \"scribe\"\nclient_id = \"scribe-client\"\nname = \"Scribe\"\npublisher = \"Acme Agents\"\n\
             allowed_scopes = \"read\"\nallowed_audiences = [\"{API}\"]\njwks = {{ keys = [{}] }}\n",
            toml_inline(&scribe.public)
        ))
        .await;
    // Alice approves the scribe for sign-in and `read`, on no resource at all.
    let client = ("scribe-client", "scribe-secret-0123456789");
    let (user_token, _) = alice_approves(&w, client, &["openid", "read"], None).await;
    for extra in [vec![], vec![("resource", API)]] {
        let r = exchange(&w, client, &scribe, &user_token, &extra).await;
        assert_eq!(
            (r.status, r.error()),
            (400, "invalid_target"),
            "{extra:?}: {:?}",
            r.body
        );
    }
}
