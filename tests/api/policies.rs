//! Runtime policy in Cedar, black-box: policies uploaded and activated through
//! the admin API (and the CLI) decide exchanges and consents on every
//! instance, shape lifetimes, are attributed in the audit, roll back, and bad
//! policy input changes nothing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::browser_flow::{pkce, query_param, sign_in, Browser};
use crate::helpers::{RedisChoice, TestApp};
use crate::token_exchange::{alice_token_for_planner, exchange, world, World, API, BOOKER, PLANNER, REDIRECT};

const ADMIN: &str = "admin-token-0123456789-0123456789-policies";
const EXAMPLES: &str = include_str!("../../docs/policies/examples.cedar");

/// The world of the exchange tests, plus a second instance of the same
/// deployment with an admin token configured.
async fn policy_world() -> (World, TestApp) {
    let mut w = world(RedisChoice::ByBackend).await;
    let mut settings = w.app.settings.clone();
    settings.admin_token = Some(ADMIN.into());
    w.app.settings = settings;
    let admin = w.app.spawn_peer().await;
    (w, admin)
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}{path}", app.address))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Uploads and activates a policy set, and waits until every instance polled
/// for it (0.5 s); returns its version.
async fn activate(app: &TestApp, policies: &str, default: &str) -> i64 {
    let version = activate_here(app, policies, default).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    version
}

/// Uploads and activates a policy set on `app` (in force there at once).
async fn activate_here(app: &TestApp, policies: &str, default: &str) -> i64 {
    let (status, body) = admin_post(
        app,
        "/admin/policies",
        json!({"policies": policies, "default": default}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let version = body["version"].as_i64().expect("version");
    let (status, body) = admin_post(app, &format!("/admin/policies/{version}/activate"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    version
}

fn token(r: &crate::helpers::Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().expect("access_token").to_owned()
}

#[tokio::test]
async fn a_forbid_refuses_the_exchange_naming_the_policy_and_the_audit_says_which() {
    let (w, admin) = policy_world().await;
    let user_token = alice_token_for_planner(&w).await;
    token(&exchange(&w, PLANNER, &w.planner, &user_token, &[]).await);
    let version = activate(
        &admin,
        r#"@id("no-planner-writes") @error("invalid_scope")
           forbid (principal == Deputy::Agent::"planner", action == Deputy::Action::"token_exchange", resource)
           when { context.scopes.contains("write") };"#,
        "allow",
    )
    .await;
    // The instance that activated it enforces it at once.
    let params = exchange_params(&w, &user_token, &[("scope", "read write")]);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = admin
        .post_form("/token", Some(&crate::helpers::basic(PLANNER.0, PLANNER.1)), &params)
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_scope"), "{:?}", r.body);
    assert_eq!(r.body["error_description"], "denied by policy no-planner-writes");
    // Reading only is still allowed; the audit names the deciding policy and version.
    let ok = exchange(&w, PLANNER, &w.planner, &user_token, &[("scope", "read")]).await;
    token(&ok);
    let audit = w.app.cli(&["audit", "tail", "--agent", "planner"]).await;
    let lines: Vec<Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let denied = lines
        .iter()
        .find(|e| e["decision"] == "denied" && e["event"] == "token_exchange")
        .expect("the denial is audited");
    assert_eq!(denied["policy_ids"], r#"["no-planner-writes"]"#);
    assert_eq!(denied["policy_version"], version);
    assert_eq!(denied["scope"], "read write", "what was asked is recorded");
    let issued = lines.iter().rev().find(|e| e["decision"] == "issued").expect("issued");
    assert_eq!(issued["policy_version"], version);
}

fn exchange_params<'a>(w: &World, subject: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
    let mut p = vec![
        ("grant_type", crate::token_exchange::EXCHANGE.to_owned()),
        ("subject_token", subject.to_owned()),
        ("subject_token_type", crate::token_exchange::AT.to_owned()),
        ("actor_token", w.planner.assertion(&w.app.settings.issuer)),
        ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt".to_owned()),
    ];
    p.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    p
}

#[tokio::test]
async fn an_activation_on_one_instance_is_enforced_by_another_within_a_second_and_rolls_back() {
    let (w, admin) = policy_world().await;
    let user_token = alice_token_for_planner(&w).await;
    let allow_all = activate(
        &admin,
        r#"@id("audit-only") permit (principal, action, resource);"#,
        "allow",
    )
    .await;
    activate_here(
        &admin,
        r#"@id("stop-planner") forbid (principal == Deputy::Agent::"planner", action, resource);"#,
        "allow",
    )
    .await;
    let activated = Instant::now();
    // `w.app` is the other instance: it learns of the activation from the database.
    loop {
        let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
        if r.status == 400 {
            assert_eq!(r.body["error_description"], "denied by policy stop-planner");
            break;
        }
        assert!(
            activated.elapsed() < Duration::from_secs(1),
            "not enforced within a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Rollback restores the earlier decisions everywhere.
    let (status, body) = admin_post(&admin, "/admin/policies/rollback", json!({})).await;
    assert_eq!((status, body["active"].as_i64()), (200, Some(allow_all)), "{body}");
    let rolled = Instant::now();
    loop {
        let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
        if r.status == 200 {
            break;
        }
        assert!(
            rolled.elapsed() < Duration::from_secs(1),
            "rollback not enforced within a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_ttl_annotation_shortens_the_token_and_delegation_can_be_forbidden() {
    let (w, admin) = policy_world().await;
    let user_token = alice_token_for_planner(&w).await;
    activate(
        &admin,
        &format!(
            r#"@id("api-tokens-20s") @ttl("20")
               permit (principal, action, resource == Deputy::Resource::"{API}");
               @id("acme-keeps-its-tokens")
               forbid (principal, action == Deputy::Action::"delegate", resource)
               when {{ principal.publisher == "Acme Agents" }};"#
        ),
        "allow",
    )
    .await;
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    let planner_token = token(&r);
    assert!(r.body["expires_in"].as_i64().expect("expires_in") <= 20, "{:?}", r.body);
    // The planner (published by Acme Agents) may not hand on to the booker.
    let r = exchange(&w, BOOKER, &w.booker, &planner_token, &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert_eq!(r.body["error_description"], "denied by policy acme-keeps-its-tokens");
}

#[tokio::test]
async fn the_example_guardrails_decide_what_they_should_and_allow_the_rest() {
    let (w, admin) = policy_world().await;
    activate(&admin, EXAMPLES, "allow").await;
    // Money: alice approves 800 EUR; the planner's token may carry 500 at most.
    let details = json!([{"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "800"},
        "creditorAccount": {"iban": "DE02100100109307118603"}}]);
    let user_token = alice_consents_to(&w, &details).await;
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_authorization_details"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["error_description"], "denied by policy max-500-eur-per-token");
    let narrower = json!([{"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "500"},
        "creditorAccount": {"iban": "DE02100100109307118603"}}]);
    token(
        &exchange(
            &w,
            PLANNER,
            &w.planner,
            &user_token,
            &[("authorization_details", &narrower.to_string())],
        )
        .await,
    );

    // The others, asked of `deputy policy check` (its API twin): a hypothetical
    // request, decided and explained, nothing issued.
    let check = |body: Value| admin_post(&admin, "/admin/policies/check", body);
    let saturday = 1_796_472_000; // 2026-12-05 12:00 UTC
    let wednesday = 1_796_212_800; // 2026-12-02 12:00 UTC
    let (_, v) = check(json!({"action": "token_exchange", "agent": "booker", "user": "alice",
        "resource": API, "scope": "read", "at": saturday}))
    .await;
    assert_eq!(
        (v["decision"].as_str(), &v["policy_ids"]),
        (Some("deny"), &json!(["booker-working-days-only"]))
    );
    let (_, v) = check(json!({"action": "token_exchange", "agent": "booker", "user": "alice",
        "resource": API, "scope": "read", "at": wednesday}))
    .await;
    assert_eq!(v["decision"], "allow", "{v}");
    let (_, v) = check(json!({"action": "token_exchange", "agent": "planner", "user": "alice",
        "resource": "https://bank.example", "scope": "read", "at": wednesday}))
    .await;
    assert_eq!(
        (v["decision"].as_str(), v["max_ttl"].as_i64()),
        (Some("allow"), Some(30)),
        "{v}"
    );
    let (_, v) = check(json!({"action": "token_exchange", "agent": "planner", "user": "alice",
        "resource": API, "scope": "payments:initiate", "at": wednesday}))
    .await;
    assert_eq!(
        (v["decision"].as_str(), v["error"].as_str()),
        (Some("deny"), Some("invalid_scope")),
        "{v}"
    );
    // Once alice is in the finance group (CLI), the same request is allowed.
    let out = w.app.cli(&["user", "groups", "alice", "finance"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, v) = check(json!({"action": "token_exchange", "agent": "planner", "user": "alice",
        "resource": API, "scope": "payments:initiate", "at": wednesday}))
    .await;
    assert_eq!(v["decision"], "allow", "{v}");
}

/// Alice approves the planner with these transaction details; its token.
async fn alice_consents_to(w: &World, details: &Value) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(details.to_string().as_bytes()).collect();
    let extra = format!("&resource={API}&authorization_details={encoded}");
    let (tokens, _, _) = crate::token_exchange::alice_approves_details(w, PLANNER, &["read"], &extra, &[0]).await;
    tokens["access_token"].as_str().expect("access_token").to_owned()
}

#[tokio::test]
async fn a_consent_a_policy_forbids_is_access_denied_naming_the_policy() {
    let (w, admin) = policy_world().await;
    activate(
        &admin,
        r#"@id("no-planner-consent") forbid (principal == Deputy::Agent::"planner", action == Deputy::Action::"consent", resource);"#,
        "allow",
    )
    .await;
    let b = Browser::new(&w.app);
    let (_, challenge) = pkce();
    let (_, at, _) = b
        .follow(&format!(
            "/authorize?response_type=code&client_id=planner-client&redirect_uri={REDIRECT}&scope=read\
             &state=st&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let (_, next, _) = sign_in(&b, &at, "alice", "correct horse battery").await;
    let (_, location, _) = b.follow(&next.expect("location")).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied"),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "error_description").as_deref(),
        Some("denied by policy no-planner-consent")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st"));
}

#[tokio::test]
async fn bad_policy_input_is_refused_clearly_and_changes_nothing() {
    let (w, admin) = policy_world().await;
    let user_token = alice_token_for_planner(&w).await;
    let active = activate(&admin, r#"@id("fine") permit (principal, action, resource);"#, "allow").await;
    let many: String = (0..10_000)
        .map(|i| format!("@id(\"p{i}\") forbid (principal, action, resource);\n"))
        .collect();
    for (case, body, status) in [
        ("syntax", json!({"policies": "permit(principal action resource);"}), 400),
        (
            "no id",
            json!({"policies": "forbid(principal, action, resource);"}),
            400,
        ),
        (
            "schema",
            json!({"policies": "@id(\"x\") forbid(principal, action, resource) when { context.nope };"}),
            400,
        ),
        ("ten thousand policies", json!({ "policies": many }), 413),
        ("ten MiB", json!({ "policies": "/".repeat(10 << 20) }), 413),
        ("wrong default", json!({"policies": "", "default": "maybe"}), 400),
        ("not JSON", Value::String("permit".into()), 400),
    ] {
        let (got, reply) = admin_post(&admin, "/admin/policies", body).await;
        assert_eq!(got, status, "{case}: {reply}");
        let description = reply["error_description"].as_str().unwrap_or_default();
        assert!(
            description
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
            "{case}: {description}"
        );
        if reply["error"] == "invalid_policy" {
            assert!(
                reply["diagnostics"].as_array().is_some_and(|d| !d.is_empty()),
                "{case}: {reply}"
            );
        }
    }
    // A check with a huge, deep context is refused, not evaluated.
    let deep = (0..200).fold(json!("x"), |v, _| json!([v]));
    let (got, _) = admin_post(
        &admin,
        "/admin/policies/check",
        json!({"action": "token_exchange", "agent": "planner", "resource": API, "authorization_details": deep}),
    )
    .await;
    assert_eq!(got, 400);
    // Nothing active changed.
    let listed: Value = admin
        .http
        .get(format!("{}/admin/policies", admin.address))
        .header("Authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let active_now: Vec<i64> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter(|v| v["active"] == true)
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(active_now, [active]);
    token(&exchange(&w, PLANNER, &w.planner, &user_token, &[]).await);
}

#[tokio::test]
async fn the_cli_puts_activates_checks_and_prints_the_schema() {
    let (w, admin) = policy_world().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("policies.cedar");
    std::fs::write(&file, EXAMPLES).expect("write");
    let path = file.to_string_lossy().into_owned();
    let out = w.app.cli(&["policy", "put", &path, "--comment", "examples"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = said
        .split_whitespace()
        .find_map(|w| w.parse::<i64>().ok())
        .expect("a version number");
    let out = w.app.cli(&["policy", "activate", &version.to_string()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = w.app.cli(&["policy", "list"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("active"), "{:?}", out);
    let request = dir.path().join("check.json");
    std::fs::write(
        &request,
        json!({"action": "token_exchange", "agent": "booker", "resource": API, "scope": "read", "at": 1_796_472_000})
            .to_string(),
    )
    .expect("write");
    let out = w.app.cli(&["policy", "check", &request.to_string_lossy()]).await;
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json verdict");
    assert_eq!(verdict["decision"], "deny");
    assert_eq!(verdict["policy_ids"], json!(["booker-working-days-only"]));
    let out = w.app.cli(&["policy", "schema"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("action token_exchange"));
    // An invalid file: Cedar's diagnostics, a failed command, nothing stored.
    std::fs::write(
        &file,
        "@id(\"x\") forbid(principal, action, resource) when { context.nope };",
    )
    .expect("write");
    let out = w.app.cli(&["policy", "put", &path]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"), "{:?}", out);
    // The running server picked up the CLI's activation.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, v) = admin_post(
        &admin,
        "/admin/policies/check",
        json!({"action": "token_exchange", "agent": "booker", "resource": API, "scope": "read", "at": 1_796_472_000}),
    )
    .await;
    assert_eq!(v["version"], version);
}
