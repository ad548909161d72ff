//! The authorization code flow in a real browser: headless Chromium driven
//! through WebDriver (Debian's `chromium` and `chromium-driver`, from Rust with
//! fantoccini). A person signs in, approves part of what a relying party asks,
//! and the browser is sent back to a real loopback relying party; the relying
//! party (the `openidconnect` crate) redeems the code with PKCE, validates the
//! ID token and reads userinfo. Then the person withdraws the approval on the
//! account page and introspection turns inactive.
//!
//! It takes screenshots of the sign-in, consent and account pages, and saves
//! them where `DEPUTY_TEST_SCREENSHOTS` says (the README's, in
//! `docs/screenshots/`, are refreshed that way). Without Chromium or chromedriver
//! it fails, saying what to install; it never skips.

use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::helpers::{basic, spawn_app, TestApp};

const API: &str = "https://api.example.com";
const RP_ID: &str = "rp";
const RP_SECRET: &str = "rp-secret-0123456789";
const PASSWORD: &str = "correct horse battery";
/// Where screenshots go: only when `DEPUTY_TEST_SCREENSHOTS` names a folder (the README's are
/// refreshed with `DEPUTY_TEST_SCREENSHOTS=docs/screenshots cargo test --test api e2e_browser`),
/// so that a test run never changes the repository.
fn screenshots_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("DEPUTY_TEST_SCREENSHOTS")?;
    let dir = std::path::PathBuf::from(dir);
    Some(if dir.is_relative() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
    } else {
        dir
    })
}
/// How long the browser may take to show an expected page.
const PAGE_WAIT: Duration = Duration::from_secs(10);
const SEVEN_DAYS: i64 = 7 * 86_400;
const WINDOW_WIDTH: u32 = 1000;

/// `alice` and a confidential relying party whose redirect is a loopback URI (any port, RFC 8252 §7.3).
async fn seed(app: &TestApp) {
    app.import(&format!(
        "[[users]]\nusername = \"alice\"\ndisplay_name = \"Alice Liddell\"\nemail = \"alice@example.com\"\n\
         password = \"{PASSWORD}\"\n\n\
         [[clients]]\nclient_id = \"{RP_ID}\"\nclient_name = \"Example RP\"\nclient_secret = \"{RP_SECRET}\"\n\
         grant_types = [\"authorization_code\", \"refresh_token\"]\nredirect_uris = [\"http://127.0.0.1/callback\"]\n\
         scope = \"openid profile email offline_access read\"\nresources = [\"{API}\"]\n"
    ))
    .await;
}

/// A program on `PATH`, or a failure that says what to install.
pub(crate) fn required_program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: this test needs a real browser. Install Debian's packages with \
                 `apt-get install -y chromium chromium-driver` (.ci/test does it when they are missing)."
            )
        })
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// chromedriver on a free loopback port; dropping it kills it (and its process group).
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start() -> Chromedriver {
        let program = required_program("chromedriver");
        let port = free_port();
        let mut cmd = Command::new(&program);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await {
                let status: Value = r.json().await.unwrap_or_default();
                if status["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {} within 15 s",
                driver.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A WebDriver session with a headless Chromium of its own (a fresh profile in `profile`).
    async fn browser(&self, profile: &tempfile::TempDir) -> Client {
        let chromium = required_program("chromium");
        let args = vec![
            "--headless".to_owned(),
            // Chromium refuses to run as root with its sandbox on (containers, CI).
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            // No calls home: the test machine's network is closed.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--window-size={WINDOW_WIDTH},900"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::native()
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"))
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and anything it left behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relying party's redirect endpoint on a loopback port: it answers a small page and hands the
/// callback URL to the test, which plays the relying party's back end.
pub(crate) async fn start_relying_party() -> (String, mpsc::UnboundedReceiver<url::Url>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let (tx, rx) = mpsc::unbounded_channel();
    let origin = base.clone();
    let server = HttpServer::new(move || {
        let (tx, origin) = (tx.clone(), origin.clone());
        App::new().route(
            "/callback",
            web::get().to(move |req: HttpRequest| {
                let (tx, origin) = (tx.clone(), origin.clone());
                async move {
                    let url = url::Url::parse(&format!("{origin}{}", req.uri())).expect("callback URL");
                    let _ = tx.send(url);
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body("<!doctype html><title>Example RP</title><h1>Signed in to Example RP</h1>")
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    (format!("{base}/callback"), rx)
}

/// Takes a screenshot of the whole page (the window grows to fit it), with no focus ring, and
/// saves it as `{name}` in [`screenshots_dir`] when one is set.
async fn screenshot(browser: &Client, name: &str) {
    // Small first: a page is never measured shorter than the window showing it.
    browser
        .set_window_size(WINDOW_WIDTH, 400)
        .await
        .expect("resize the window");
    let sizes = browser
        .execute(
            "if (document.activeElement) { document.activeElement.blur(); } \
             return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .expect("measure the page");
    let (page, frame) = (sizes[0].as_u64().expect("height"), sizes[1].as_u64().expect("frame"));
    browser
        .set_window_size(WINDOW_WIDTH, (page + frame).clamp(400, 4000) as u32)
        .await
        .expect("fit the window to the page");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
    if let Some(dir) = screenshots_dir() {
        std::fs::create_dir_all(&dir).expect("create the screenshot folder");
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

pub(crate) async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    let found = browser.wait().at_most(PAGE_WAIT).for_element(Locator::Css(css)).await;
    match found {
        Ok(e) => e,
        Err(e) => {
            let at = browser.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let page = browser.source().await.unwrap_or_default();
            panic!("no `{css}` on the page within {PAGE_WAIT:?} ({e}); at {at}:\n{page}");
        }
    }
}

/// "2026-11-26 14:47:31 UTC" (the account page's format) as a Unix time.
fn page_time(s: &str) -> i64 {
    let n: Vec<i64> = s
        .trim()
        .trim_end_matches("UTC")
        .split(['-', ' ', ':'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("a time on the account page: {s:?}"))
        })
        .collect();
    let [y, mo, d, h, mi, sec] = n[..] else {
        panic!("a time on the account page: {s:?}")
    };
    let month = time::Month::try_from(mo as u8).expect("month");
    let date = time::Date::from_calendar_date(y as i32, month, d as u8).expect("date");
    let t = time::Time::from_hms(h as u8, mi as u8, sec as u8).expect("time");
    time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp()
}

/// The text of the table cell after the header `label` inside `card`.
async fn row(card: &fantoccini::elements::Element, label: &str) -> String {
    let xpath = format!(".//tr[th[normalize-space()='{label}']]/td");
    card.find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no {label} row in the grant: {e}"))
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn a_person_approves_part_of_a_request_in_a_real_browser_and_later_withdraws_it() {
    let started = Instant::now();
    let app = spawn_app().await;
    seed(&app).await;
    let driver = Chromedriver::start().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(&profile).await;
    // Whatever happens, end the WebDriver session so chromedriver closes Chromium; then report.
    let outcome = AssertUnwindSafe(flow(&app, &browser)).catch_unwind().await;
    let _ = browser.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    eprintln!("real-browser flow took {:?}", started.elapsed());
}

async fn flow(app: &TestApp, browser: &Client) {
    let (redirect_uri, mut callbacks) = start_relying_party().await;

    // The relying party discovers Deputy and builds the authorization request.
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.settings.issuer.clone()).expect("issuer"), &http)
            .await
            .expect("OpenID Connect discovery succeeds");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(RP_ID.into()),
        Some(ClientSecret::new(RP_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.clone()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();

    // Sign in.
    browser
        .goto(auth_url.as_str())
        .await
        .expect("open the authorization URL");
    wait_for(browser, "#username").await;
    let at = browser.current_url().await.expect("url");
    assert_eq!(at.path(), "/login", "sent to sign in first: {at}");
    let card = wait_for(browser, ".card").await.text().await.expect("text");
    assert!(card.contains("to continue to Example RP"), "{card}");
    screenshot(browser, "sign-in.png").await;
    browser
        .find(Locator::Css("#username"))
        .await
        .expect("username")
        .send_keys("alice")
        .await
        .expect("type username");
    browser
        .find(Locator::Css("#password"))
        .await
        .expect("password")
        .send_keys(PASSWORD)
        .await
        .expect("type password");
    browser
        .find(Locator::Css("#sign-in"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");

    // Consent: everything is ticked; untick `email`, choose 7 days, allow.
    let approve = wait_for(browser, "#approve").await;
    let at = browser.current_url().await.expect("url");
    assert_eq!(at.path(), "/consent", "{at}");
    let boxes = browser
        .find_all(Locator::Css("input[name=scope]"))
        .await
        .expect("scope boxes");
    let mut offered = Vec::new();
    for b in &boxes {
        assert!(b.is_selected().await.expect("checked?"), "every scope starts ticked");
        offered.push(b.attr("value").await.expect("value").expect("a value"));
    }
    offered.sort();
    assert_eq!(
        offered,
        ["email", "offline_access", "openid", "profile", "read"],
        "what was asked"
    );
    let page = browser
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("Example RP wants to act on your behalf") && page.contains("See your email address"),
        "{page}"
    );
    let email = browser
        .find(Locator::Css("input[name=scope][value=email]"))
        .await
        .expect("email box");
    email.click().await.expect("untick email");
    assert!(!email.is_selected().await.expect("checked?"), "email is unticked");
    browser
        .find(Locator::Css("select#duration"))
        .await
        .expect("duration")
        .select_by_value(&SEVEN_DAYS.to_string())
        .await
        .expect("choose 7 days");
    screenshot(browser, "consent.png").await;
    approve.click().await.expect("allow");

    // The browser lands on the relying party with the code.
    let callback = tokio::time::timeout(PAGE_WAIT, callbacks.recv())
        .await
        .expect("the browser reaches the relying party's callback")
        .expect("callback");
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert!(callback.as_str().starts_with(&redirect_uri), "{callback}");
    assert_eq!(
        param("state").as_deref(),
        Some(state.secret().as_str()),
        "state comes back"
    );
    assert_eq!(
        param("iss").as_deref(),
        Some(app.settings.issuer.as_str()),
        "RFC 9207 iss"
    );
    assert_eq!(param("error"), None, "{callback}");
    let code = param("code").expect("a code");
    wait_for(browser, "h1").await;
    let shown = browser.current_url().await.expect("url");
    assert_eq!(
        shown.path(),
        "/callback",
        "the browser shows the relying party: {shown}"
    );

    // The relying party's back end: code + PKCE verifier → tokens; the ID token validates.
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint configured")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is redeemed");
    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("the ID token validates: signature (JWKS), iss, aud, exp, nonce");
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert!(claims.email().is_none(), "email was unticked");
    let granted: Vec<String> = tokens.scopes().expect("scope").iter().map(|s| s.to_string()).collect();
    assert!(!granted.contains(&"email".to_owned()), "{granted:?}");
    for s in ["openid", "profile", "offline_access", "read"] {
        assert!(granted.contains(&s.to_owned()), "{s} granted: {granted:?}");
    }
    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .secret()
        .clone();
    let access = tokens.access_token().secret().clone();
    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .expect("userinfo configured")
        .request_async(&http)
        .await
        .expect("userinfo answers");
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert!(info.email().is_none(), "email was unticked");

    // The resource server sees the access token as active.
    let rs = app.client("api", "read", &[API]).await;
    let i = app.introspect(&rs, &access).await;
    assert_eq!(i.status, 200, "{:?}", i.body);
    assert_eq!(i.body["active"], json!(true), "{:?}", i.body);
    assert_eq!(i.body["aud"], json!(API), "{:?}", i.body);

    // The account page lists the approval: what was allowed, for 7 days.
    browser
        .goto(&format!("{}/account", app.address))
        .await
        .expect("open the account page");
    wait_for(browser, "#sign-out").await;
    let cards = browser
        .find_all(Locator::Css("div[id^='grant-']"))
        .await
        .expect("grants");
    assert_eq!(cards.len(), 1, "one approval listed");
    let card = &cards[0];
    let text = card.text().await.expect("text");
    assert!(text.contains("Example RP"), "{text}");
    let may = row(card, "May").await;
    let mut may: Vec<&str> = may.split_whitespace().collect();
    may.sort_unstable();
    assert_eq!(
        may,
        ["offline_access", "openid", "profile", "read"],
        "what was approved, without email"
    );
    assert_eq!(row(card, "On").await.trim(), API);
    let (since, until) = (
        page_time(&row(card, "Since").await),
        page_time(&row(card, "Until").await),
    );
    assert_eq!(until - since, SEVEN_DAYS, "the chosen duration");
    screenshot(browser, "account.png").await;

    // Revoke it in the browser.
    card.find(Locator::Css("button.danger"))
        .await
        .expect("a Revoke button in the grant")
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

    // Every token under it is inactive at once: introspection, and the refresh token.
    let i = app.introspect(&rs, &access).await;
    assert_eq!(i.status, 200, "{:?}", i.body);
    assert_eq!(i.body, json!({ "active": false }), "revoked on the account page");
    let r = app
        .post_form(
            "/token",
            Some(&basic(RP_ID, RP_SECRET)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.error(), "invalid_grant", "{:?}", r.body);
}
