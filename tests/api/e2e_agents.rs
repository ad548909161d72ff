//! The whole agent story end to end, with every real piece: alice approves the
//! trip planner in headless Chromium; the planner trades her token for a narrow
//! one (RFC 8693) that the example calendar API (`examples/resource_server.rs`,
//! run as its own process) accepts; the booker re-exchanges for a narrower one
//! with a nested `act`; alice withdraws her approval on the account page; a
//! **second** Deputy instance sharing the database (and Redis) sees every
//! derived token inactive, and the calendar API refuses them; the audit log
//! shows each step in order.
//!
//! Needs `chromium` and `chromedriver` (as `e2e_browser.rs`) and the example
//! binary (`cargo build --examples`; `.ci/test` builds all targets). The
//! example listens on a free port chosen here (`CALENDAR_URL`).

use std::panic::AssertUnwindSafe;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{json, Value};

use crate::browser_flow::pkce;
use crate::e2e_browser::{free_port, required_program, start_relying_party, wait_for};
use crate::helpers::{basic, spawn_app_with, RedisChoice, TestApp};
use crate::token_exchange::{exchange, toml_inline, AgentKey, World};

/// The example calendar API: its address (on a free port) is its resource indicator.
static CALENDAR: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("http://127.0.0.1:{}", free_port()));
/// The client the example introspects as (its constants, as in examples/demo/world.toml).
const CALENDAR_RS: (&str, &str) = ("calendar-api", "calendar-api-secret-0123456789");
const PLANNER: (&str, &str) = ("planner-client", "planner-secret-0123456789");
const BOOKER: (&str, &str) = ("booker-client", "booker-secret-0123456789");
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const PASSWORD: &str = "correct horse battery";
const PAGE_WAIT: Duration = Duration::from_secs(10);

/// The demo world (examples/demo/world.toml) with freshly generated agent keys.
async fn world(app: TestApp) -> World {
    let planner = AgentKey::new("planner");
    let booker = AgentKey::new("booker");
    app.import(&format!(
        r#"
[[users]]
username = "alice"
display_name = "Alice"
email = "alice@example.com"
password = "{PASSWORD}"

[[clients]]
client_id = "{planner_id}"
client_name = "Trip planner"
client_secret = "{planner_secret}"
grant_types = ["authorization_code", "{EXCHANGE}"]
redirect_uris = ["http://127.0.0.1/callback"]
scope = "openid calendar:read calendar:write"
resources = ["{calendar}"]

[[clients]]
client_id = "{booker_id}"
client_name = "Booker"
client_secret = "{booker_secret}"
grant_types = ["{EXCHANGE}"]
scope = "calendar:read"

[[clients]]
client_id = "{rs_id}"
client_name = "Calendar API (resource server)"
client_secret = "{rs_secret}"
grant_types = ["client_credentials"]
resources = ["{calendar}"]

[[agents]]
agent_id = "planner"
client_id = "{planner_id}"
name = "Trip planner"
description = "Plans trips around your calendar."
publisher = "Acme Agents"
allowed_scopes = "calendar:read calendar:write"
allowed_audiences = ["{calendar}"]
max_token_ttl = 120
max_delegation_depth = 2
may_delegate_to = ["booker"]
jwks = {{ keys = [{planner_key}] }}

[[agents]]
agent_id = "booker"
client_id = "{booker_id}"
name = "Booker"
description = "Books the slots the planner picks."
publisher = "Acme Agents"
allowed_scopes = "calendar:read"
allowed_audiences = ["{calendar}"]
max_token_ttl = 60
max_delegation_depth = 2
jwks = {{ keys = [{booker_key}] }}
"#,
        planner_id = PLANNER.0,
        planner_secret = PLANNER.1,
        booker_id = BOOKER.0,
        booker_secret = BOOKER.1,
        calendar = CALENDAR.as_str(),
        rs_id = CALENDAR_RS.0,
        rs_secret = CALENDAR_RS.1,
        planner_key = toml_inline(&planner.public),
        booker_key = toml_inline(&booker.public),
    ))
    .await;
    World {
        app,
        planner,
        booker,
        rs: (CALENDAR_RS.0.into(), CALENDAR_RS.1.into()),
    }
}

/// A JWT's claims, unverified (the resource server and introspection do the verifying).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A child process killed (with its process group) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_in_own_group(mut cmd: Command, what: &str) -> Killed {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Killed(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}")))
}

/// Polls `url` until `ready` says yes, or fails after 15 s (or when `child` has exited).
async fn wait_until_up(child: &mut Killed, what: &str, url: &str, ready: impl Fn(&Value) -> bool) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = http.get(url).send().await {
            if ready(&r.json().await.unwrap_or_default()) {
                return;
            }
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("{what} exited ({status}) before answering on {url}");
        }
        assert!(Instant::now() < deadline, "{what} did not answer on {url} within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_chromedriver() -> (Killed, String) {
    let program = required_program("chromedriver");
    let port = free_port();
    let mut cmd = Command::new(&program);
    cmd.arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = spawn_in_own_group(cmd, "chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    wait_until_up(&mut child, "chromedriver", &format!("{url}/status"), |s| {
        s["value"]["ready"] == json!(true)
    })
    .await;
    (child, url)
}

async fn browser(driver: &str, profile: &tempfile::TempDir) -> Client {
    let chromium = required_program("chromium");
    let args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--window-size=1000,900".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let Value::Object(caps) = caps else { unreachable!() };
    ClientBuilder::native()
        .capabilities(caps)
        .connect(driver)
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"))
}

/// The example calendar API (`examples/resource_server`, built next to this test binary), trusting `app`.
async fn start_calendar_api(app: &TestApp) -> Killed {
    let exe = std::env::current_exe().expect("test binary path");
    let program = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("resource_server"))
        .expect("target directory");
    assert!(
        program.is_file(),
        "{} is missing: build the examples first with `cargo build --examples` (.ci/test runs \
         `cargo build --all-targets`)",
        program.display()
    );
    let mut cmd = Command::new(&program);
    cmd.env("DEPUTY_URL", &app.address)
        .env("CALENDAR_URL", CALENDAR.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = spawn_in_own_group(cmd, "the example resource server");
    wait_until_up(
        &mut child,
        "the example resource server",
        &format!("{}/", *CALENDAR),
        |v| v["resource"] == CALENDAR.as_str(),
    )
    .await;
    child
}

/// `GET /calendar` on the example API with `token`: (status, body).
async fn calendar(token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/calendar", *CALENDAR))
        .bearer_auth(token)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("the calendar API answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn fill(browser: &Client, css: &str, text: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

#[tokio::test]
async fn a_user_approves_an_agent_in_a_browser_and_withdrawing_it_stops_every_derived_token_everywhere() {
    let started = Instant::now();
    let app = spawn_app_with(RedisChoice::ByBackend, |_| {}).await;
    let w = world(app).await;
    let peer = w.app.spawn_peer().await;
    let _calendar_api = start_calendar_api(&w.app).await;
    let (driver, driver_url) = start_chromedriver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = browser(&driver_url, &profile).await;
    // Whatever happens, end the WebDriver session so chromedriver closes Chromium; then report.
    let outcome = AssertUnwindSafe(flow(&w, &peer, &browser)).catch_unwind().await;
    let _ = browser.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    eprintln!("end-to-end agent flow took {:?}", started.elapsed());
}

async fn flow(w: &World, peer: &TestApp, browser: &Client) {
    let app = &w.app;
    let (redirect_uri, mut callbacks) = start_relying_party().await;

    // 1. Alice approves the planner in the browser, with two transactions (RFC 9396).
    let details = json!([
        {"type": "tool_invocation", "tool": "calendar.*", "server": CALENDAR.as_str()},
        {"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "120.00"},
         "creditorName": "Hotel Adlon", "creditorAccount": {"iban": "DE02100100109307118603"}}
    ]);
    let (verifier, challenge) = pkce();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let mut auth_url = url::Url::parse(&format!("{}/authorize", app.address)).expect("url");
    auth_url
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", PLANNER.0)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid calendar:read calendar:write")
        .append_pair("resource", &CALENDAR)
        .append_pair("authorization_details", &details.to_string())
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    browser
        .goto(auth_url.as_str())
        .await
        .expect("open the authorization URL");
    wait_for(browser, "#username").await;
    fill(browser, "#username", "alice").await;
    fill(browser, "#password", PASSWORD).await;
    browser
        .find(Locator::Css("#sign-in"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");
    let approve = wait_for(browser, "#approve").await;
    let at = browser.current_url().await.expect("url");
    assert_eq!(at.path(), "/consent", "{at}");
    let agent = wait_for(browser, "#agent").await.text().await.expect("text");
    assert!(
        agent.contains("This is a registered AI agent: Trip planner") && agent.contains("Published by Acme Agents"),
        "the consent screen says it is a registered agent and names its publisher: {agent}"
    );
    // The transactions, in words; alice unticks the payment.
    let asked = wait_for(browser, "#details").await.text().await.expect("text");
    assert!(
        asked.contains(&format!(
            "Use any tool whose name starts with calendar. on {}",
            CALENDAR.as_str()
        )) && asked.contains("Pay up to 120.00 EUR to Hotel Adlon (account DE02100100109307118603)")
            && !asked.contains("instructedAmount"),
        "the consent screen shows each transaction in words: {asked}"
    );
    browser
        .find(Locator::Css("input[name=detail][value=\"1\"]"))
        .await
        .expect("the payment's checkbox")
        .click()
        .await
        .expect("untick the payment");
    approve.click().await.expect("approve");
    let callback = tokio::time::timeout(PAGE_WAIT, callbacks.recv())
        .await
        .expect("the browser reaches the planner's callback")
        .expect("callback");
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("error"), None, "{callback}");
    assert_eq!(param("state").as_deref(), Some(state.as_str()), "state comes back");
    let code = param("code").expect("a code");
    let r = app
        .post_form(
            "/token",
            Some(&basic(PLANNER.0, PLANNER.1)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let alice_token = r.body["access_token"].as_str().expect("token").to_owned();
    let alice = claims(&alice_token);
    assert_eq!(alice["may_act"], json!({ "sub": "planner" }), "{alice}");
    assert_eq!(alice["aud"], CALENDAR.as_str(), "{alice}");
    assert_eq!(
        alice["authorization_details"],
        json!([details[0]]),
        "only what alice kept: {alice}"
    );

    // 2. The planner exchanges; the calendar API accepts its token.
    let r = exchange(
        w,
        PLANNER,
        &w.planner,
        &alice_token,
        &[
            ("scope", "calendar:read calendar:write"),
            ("resource", CALENDAR.as_str()),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let planner_token = r.body["access_token"].as_str().expect("token").to_owned();
    let planner = claims(&planner_token);
    assert_eq!(planner["act"], json!({ "sub": "planner" }), "{planner}");
    let (status, body) = calendar(&planner_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["acting"], json!(["planner"]), "{body}");
    assert_eq!(body["user"], alice["sub"], "{body}");

    // 3. The booker re-exchanges for less: one scope, a shorter life, a nested act.
    let r = exchange(w, BOOKER, &w.booker, &planner_token, &[("scope", "calendar:read")]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let booker_token = r.body["access_token"].as_str().expect("token").to_owned();
    let booker = claims(&booker_token);
    assert_eq!(
        booker["act"],
        json!({ "sub": "booker", "act": { "sub": "planner" } }),
        "{booker}"
    );
    assert_eq!(booker["scope"], "calendar:read", "{booker}");
    assert_eq!(planner["scope"], "calendar:read calendar:write", "{planner}");
    assert!(
        booker["exp"].as_i64() <= planner["exp"].as_i64(),
        "never outlives its subject: {booker} {planner}"
    );
    let (status, body) = calendar(&booker_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["acting"], json!(["booker", "planner"]), "{body}");

    // 4. Alice withdraws her approval on the account page.
    browser
        .goto(&format!("{}/account", app.address))
        .await
        .expect("open the account page");
    wait_for(browser, "#sign-out").await;
    let cards = browser
        .find_all(Locator::Css("div[id^='grant-']"))
        .await
        .expect("grants");
    let mut planner_card = None;
    for c in cards {
        if c.text().await.expect("text").contains("Trip planner") {
            planner_card = Some(c);
        }
    }
    planner_card
        .expect("the planner's approval is listed")
        .find(Locator::Css("button.danger"))
        .await
        .expect("a Revoke button in the approval")
        .click()
        .await
        .expect("revoke");
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let left = browser
            .find_all(Locator::Css("div[id^='grant-']"))
            .await
            .expect("grants");
        let on_account = browser.current_url().await.expect("url").path() == "/account";
        if left.is_empty() && on_account && browser.find(Locator::Css("#sign-out")).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the approval is still listed after Revoke:\n{}",
            browser.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 5. Every derived token is inactive on the other instance; the calendar API refuses them.
    for (who, t) in [
        ("alice", &alice_token),
        ("planner", &planner_token),
        ("booker", &booker_token),
    ] {
        let seen = peer.introspect(&w.rs, t).await;
        assert_eq!(seen.status, 200, "{who}: {:?}", seen.body);
        assert_eq!(seen.body, json!({ "active": false }), "{who}'s token on instance 2");
    }
    for (who, t) in [("planner", &planner_token), ("booker", &booker_token)] {
        let (status, body) = calendar(t).await;
        assert_eq!(status, 401, "{who}: {body}");
        assert_eq!(body["failed_check"], "introspection", "{who}: {body}");
    }

    // 6. The audit log shows each step, in order.
    let db = app.state.db.clone();
    let mut events = db
        .run(|c| deputy::storage::audit::query(c, &deputy::storage::audit::AuditFilter::default()))
        .await
        .expect("audit readable");
    events.sort_by_key(|e| e.seq);
    let steps: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .filter(|e| {
            matches!(
                e.event.as_str(),
                "consent_given" | "token_exchange" | "consent_withdrawn"
            )
        })
        .map(|e| (e.event.as_str(), e.decision.as_str(), e.agent_id.as_deref()))
        .collect();
    let expected = [
        ("consent_given", "given"),
        ("token_exchange", "issued"),
        ("token_exchange", "issued"),
        ("consent_withdrawn", "withdrawn"),
    ];
    let kinds: Vec<(&str, &str)> = steps.iter().map(|(e, d, _)| (*e, *d)).collect();
    assert_eq!(kinds, expected, "{steps:?}");
    assert_eq!(steps[1].2, Some("planner"), "{steps:?}");
    assert_eq!(steps[2].2, Some("booker"), "{steps:?}");
    let booker_issue = events
        .iter()
        .find(|e| e.event == "token_exchange" && e.agent_id.as_deref() == Some("booker"))
        .expect("the booker's exchange");
    assert_eq!(booker_issue.chain.as_deref(), Some(r#"["booker","planner"]"#));
}
