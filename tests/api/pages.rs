//! The browser pages' protections: no framing and no caching (RFC 9700 §4.16),
//! the session cookie's flags, CSRF on every form (RFC 6749 §10.12), sign-in
//! throttling, consent that only its own user can give, once, for what was
//! asked; the account page's ownership checks; and RP-initiated logout.

use crate::authorize_errors::{
    authorize_in, consent_form, pkce, post_owned, rp, rp_tokens, str_of, AuthRequest, PASSWORD,
};
use crate::browser_flow::{hidden, query_param, seed, sign_in, Browser, RP_REDIRECT};
use crate::helpers::{spawn_app, TestApp};

const BOB_PASSWORD: &str = "bob's quite secret passphrase";

async fn seed_bob(app: &TestApp) {
    app.import(&format!(
        "[[users]]\nusername = \"bob\"\ndisplay_name = \"Bob\"\nemail = \"bob@example.com\"\n\
         password = {BOB_PASSWORD:?}\n"
    ))
    .await;
}

/// A GET with the browser's cookies, keeping the headers.
async fn get_raw(b: &Browser, path: &str) -> reqwest::Response {
    b.http.get(format!("{}{path}", b.base)).send().await.expect("GET")
}

async fn post_raw(b: &Browser, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.http
        .post(format!("{}{path}", b.base))
        .form(form)
        .send()
        .await
        .expect("POST")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header on {} {}", r.status(), r.url()))
}

fn assert_protected(what: &str, r: &reqwest::Response) {
    let csp = header(r, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: CSP {csp}");
    assert_eq!(header(r, "x-frame-options"), "DENY", "{what}");
    assert!(header(r, "cache-control").contains("no-store"), "{what}");
    assert!(header(r, "content-type").starts_with("text/html"), "{what}");
}

/// The `deputy_session` cookie set by this response, if any.
fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("deputy_session="))
        .map(str::to_owned)
}

fn assert_cookie_flags(what: &str, cookie: &str) {
    let attrs: Vec<String> = cookie.split(';').skip(1).map(|a| a.trim().to_lowercase()).collect();
    assert!(attrs.iter().any(|a| a == "httponly"), "{what}: {cookie}");
    assert!(attrs.iter().any(|a| a == "samesite=lax"), "{what}: {cookie}");
    assert!(
        !attrs.iter().any(|a| a == "secure"),
        "{what}: not Secure on http: {cookie}"
    );
}

/// Is this browser signed in? (`/account` shows the page, or sends to `/login`.)
async fn signed_in(b: &Browser) -> bool {
    match b.get("/account").await {
        (200, _, _) => true,
        (303, Some(l), _) if l == "/login" => false,
        other => panic!("unexpected /account answer {other:?}"),
    }
}

#[tokio::test]
async fn every_page_forbids_framing_and_caching_and_the_session_cookie_is_httponly_and_lax() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);

    let login = get_raw(&b, "/login").await;
    assert_eq!(login.status(), 200);
    assert_protected("login page", &login);
    let cookie = session_cookie(&login).expect("the login page starts a session (for its CSRF token)");
    assert_cookie_flags("login page", &cookie);
    let csrf = hidden(&login.text().await.expect("body"), "csrf");

    let wrong = post_raw(
        &b,
        "/login",
        &[("csrf", &csrf), ("username", "alice"), ("password", "not it")],
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert_protected("failed sign-in page", &wrong);

    let forged = post_raw(&b, "/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(forged.status(), 403);
    assert_protected("CSRF refusal page", &forged);

    let ok = post_raw(
        &b,
        "/login",
        &[("csrf", &csrf), ("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(ok.status(), 303);
    let cookie = session_cookie(&ok).expect("signing in renews the session");
    assert_cookie_flags("sign-in", &cookie);

    let p = pkce();
    let (status, at, _) = b.follow(&AuthRequest::rp(&p.challenge).path()).await;
    assert!(status == 200 && at.contains("/consent?"), "{status} {at}");
    let consent = get_raw(&b, &at).await;
    assert_eq!(consent.status(), 200);
    assert_protected("consent page", &consent);

    let account = get_raw(&b, "/account").await;
    assert_eq!(account.status(), 200);
    assert_protected("account page", &account);

    let logout = get_raw(&b, "/logout").await;
    assert_eq!(logout.status(), 200);
    assert_protected("logout page", &logout);

    let error = get_raw(&b, "/authorize?client_id=nobody&response_type=code").await;
    assert_eq!(error.status(), 400);
    assert_protected("error page", &error);

    let authorize = get_raw(&b, &AuthRequest::rp(&p.challenge).set("state", "x").path()).await;
    assert_eq!(authorize.status(), 303);
    assert!(header(&authorize, "cache-control").contains("no-store"));
}

#[tokio::test]
async fn a_sign_in_without_this_sessions_csrf_token_is_refused_and_signs_nobody_in() {
    let app = spawn_app().await;
    seed(&app).await;
    let victim = Browser::new(&app);
    let attacker = Browser::new(&app);
    let (_, _, page) = attacker.get("/login").await;
    let attackers_csrf = hidden(&page, "csrf");
    let (_, _, _) = victim.get("/login").await;

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no csrf", vec![("username", "alice"), ("password", PASSWORD)]),
        (
            "an empty csrf",
            vec![("csrf", ""), ("username", "alice"), ("password", PASSWORD)],
        ),
        (
            "another session's csrf",
            vec![("csrf", &attackers_csrf), ("username", "alice"), ("password", PASSWORD)],
        ),
    ];
    for (what, form) in cases {
        let (status, location, body) = victim.post("/login", &form).await;
        assert_eq!((status, location), (403, None), "{what}: {body}");
        assert!(!body.contains(PASSWORD), "{what}");
        assert!(!signed_in(&victim).await, "{what}: no session was created");
    }
    // A browser with no session at all.
    let blank = Browser::new(&app);
    let (status, _, _) = blank
        .post(
            "/login",
            &[("csrf", &attackers_csrf), ("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 403);
    assert!(!signed_in(&blank).await);
    // The attacker's own session is not signed in either.
    assert!(!signed_in(&attacker).await);
}

#[tokio::test]
async fn wrong_passwords_get_a_401_page_and_ten_failures_throttle_that_username_from_that_address_only() {
    let app = spawn_app().await;
    seed(&app).await;
    seed_bob(&app).await;
    let b = Browser::new(&app);
    let (_, _, page) = b.get("/login").await;
    let csrf = hidden(&page, "csrf");

    let wrong = "Tr0ub4dor&3-not-the-password";
    let (status, _, page) = b
        .post("/login", &[("csrf", &csrf), ("username", "alice"), ("password", wrong)])
        .await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("Wrong username or password"), "{page}");
    assert!(!page.contains(wrong), "the page never echoes the password");

    // Nine more at once (so the limiter's one-per-six-seconds refill cannot add one).
    let form = [("csrf", csrf.as_str()), ("username", "alice"), ("password", wrong)];
    let attempts = (0..9).map(|_| b.post("/login", &form));
    for (status, _, page) in futures_util::future::join_all(attempts).await {
        assert_eq!(status, 401, "{page}");
    }

    let (status, location, page) = b
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        (status, location),
        (429, None),
        "throttled even with the right password: {page}"
    );
    assert!(!page.contains(PASSWORD), "{page}");
    assert!(!signed_in(&b).await);

    // Another username from the same address is not affected (12 attempts < 30 per address).
    let (status, location, page) = b
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "bob"), ("password", BOB_PASSWORD)],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")), "{page}");

    // alice herself, from another address, is not locked out by those failures.
    let elsewhere = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .expect("client"),
        base: app.address.clone(),
    };
    let (_, _, page) = elsewhere.get("/login").await;
    let csrf = hidden(&page, "csrf");
    let (status, location, page) = elsewhere
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")), "{page}");
}

#[tokio::test]
async fn login_and_error_pages_never_contain_the_submitted_password() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let (_, _, page) = b.get("/login").await;
    let csrf = hidden(&page, "csrf");
    let secret = "S3cret-Passw0rd-that-must-not-echo";
    let long_name = "u".repeat(65);
    // (what, form, expected status)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case> = vec![
        (
            "a wrong password",
            vec![("csrf", &csrf), ("username", "alice"), ("password", secret)],
            401,
        ),
        (
            "an unknown user",
            vec![("csrf", &csrf), ("username", "mallory"), ("password", secret)],
            401,
        ),
        (
            "no username",
            vec![("csrf", &csrf), ("username", ""), ("password", secret)],
            400,
        ),
        (
            "an overlong username",
            vec![("csrf", &csrf), ("username", &long_name), ("password", secret)],
            400,
        ),
        ("no csrf", vec![("username", "alice"), ("password", secret)], 403),
        (
            "an unknown request",
            vec![
                ("csrf", &csrf),
                ("request", "no-such-request"),
                ("username", "alice"),
                ("password", secret),
            ],
            401,
        ),
    ];
    for (what, form, status) in cases {
        let (got, _, page) = b.post("/login", &form).await;
        assert_eq!(got, status, "{what}: {page}");
        assert!(!page.contains(secret), "{what}: the page contains the password");
        assert!(!page.contains("S3cret"), "{what}: nor any part of it");
    }
}

#[tokio::test]
async fn another_signed_in_user_cannot_act_on_someone_elses_consent_request() {
    let app = spawn_app().await;
    seed(&app).await;
    seed_bob(&app).await;
    let alice = Browser::new(&app);
    let p = pkce();
    let (_, at, _) = alice.follow(&AuthRequest::rp(&p.challenge).path()).await;
    let (status, next, _) = sign_in(&alice, &at, "alice", PASSWORD).await;
    assert_eq!(status, 303);
    let (status, at, alices_page) = alice.follow(&next.expect("location")).await;
    assert!(status == 200 && at.contains("/consent?"), "{status} {at}");
    let request = hidden(&alices_page, "request");

    let bob = Browser::new(&app);
    let (status, _, body) = sign_in(&bob, "/login", "bob", BOB_PASSWORD).await;
    assert_eq!(status, 303, "{body}");
    let (_, _, bobs_account) = bob.get("/account").await;
    let bobs_csrf = hidden(&bobs_account, "csrf");

    let (status, location, page) = bob.get(&format!("/consent?request={request}")).await;
    assert_eq!(
        (status, location),
        (400, None),
        "bob may not see alice's consent page: {page}"
    );
    for action in ["approve", "deny"] {
        let form = [
            ("csrf", bobs_csrf.as_str()),
            ("request", request.as_str()),
            ("scope", "openid"),
            ("scope", "read"),
            ("duration", "86400"),
            ("action", action),
        ];
        let (status, location, page) = bob.post("/consent", &form).await;
        assert_eq!((status, location), (400, None), "bob's {action}: {page}");
    }
    // Signing in as bob with alice's request does not take it over either.
    let (status, next, _) = bob
        .post(
            "/login",
            &[
                ("csrf", bobs_csrf.as_str()),
                ("request", request.as_str()),
                ("username", "bob"),
                ("password", BOB_PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, at, page) = bob.follow(&next.expect("location")).await;
    assert!(status == 400 && !at.starts_with(RP_REDIRECT), "{status} {at}: {page}");

    // Alice still finishes.
    let (status, location, body) = post_owned(&alice, "/consent", &consent_form(&alices_page, "approve")).await;
    assert_eq!(status, 303, "{body}");
    let location = location.expect("Location");
    assert!(location.starts_with(RP_REDIRECT), "{location}");
    assert!(query_param(&location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn an_altered_consent_form_is_refused_and_a_completed_one_cannot_be_posted_again() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let p = pkce();
    let request = AuthRequest::rp(&p.challenge).set("scope", "openid read");
    let (_, at, _) = b.follow(&request.path()).await;
    let (_, next, _) = sign_in(&b, &at, "alice", PASSWORD).await;
    let (status, at, page) = b.follow(&next.expect("location")).await;
    assert!(status == 200 && at.contains("/consent?"), "{status} {at}");
    let good = consent_form(&page, "approve");

    let with = |name: &str, value: &str| {
        let mut f = good.clone();
        f.push((name.to_owned(), value.to_owned()));
        f
    };
    let with_duration = |d: &str| {
        let mut f: Vec<(String, String)> = good.iter().filter(|(k, _)| k != "duration").cloned().collect();
        f.push(("duration".to_owned(), d.to_owned()));
        f
    };
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("a scope registered but not requested", with("scope", "email")),
        ("a scope not registered at all", with("scope", "admin")),
        ("a duration not offered (one year)", with_duration("31536000")),
        ("a negative duration", with_duration("-1")),
        (
            "no duration",
            good.iter().filter(|(k, _)| k != "duration").cloned().collect(),
        ),
    ];
    for (what, form) in cases {
        let (status, location, page) = post_owned(&b, "/consent", &form).await;
        assert_eq!((status, location), (400, None), "{what}: {page}");
        assert!(page.contains("role=\"alert\""), "{what}: {page}");
    }
    let (_, _, account) = b.get("/account").await;
    assert!(!account.contains("grant_id"), "no approval was stored: {account}");

    let (status, location, _) = post_owned(&b, "/consent", &good).await;
    assert_eq!(status, 303);
    let location = location.expect("Location");
    assert!(query_param(&location, "code").is_some(), "{location}");
    assert_eq!(query_param(&location, "scope"), None);

    let (status, location, page) = post_owned(&b, "/consent", &good).await;
    assert_eq!((status, location), (400, None), "the request was completed: {page}");
    let deny: Vec<(String, String)> = good
        .iter()
        .map(|(k, v)| match k.as_str() {
            "action" => (k.clone(), "deny".to_owned()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let (status, location, _) = post_owned(&b, "/consent", &deny).await;
    assert_eq!((status, location), (400, None), "nor denied afterwards");
}

#[tokio::test]
async fn denying_consent_sends_access_denied_with_the_state_back_to_the_client() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let p = pkce();
    let (_, at, _) = b
        .follow(&AuthRequest::rp(&p.challenge).set("state", "deny-me").path())
        .await;
    let (_, next, _) = sign_in(&b, &at, "alice", PASSWORD).await;
    let (_, _, page) = b.follow(&next.expect("location")).await;
    let (status, location, _) = post_owned(&b, "/consent", &consent_form(&page, "deny")).await;
    assert_eq!(status, 303);
    let location = location.expect("Location");
    assert!(location.starts_with(&format!("{RP_REDIRECT}?")), "{location}");
    assert_eq!(query_param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("deny-me"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(app.settings.issuer.as_str())
    );
    assert_eq!(query_param(&location, "code"), None);
    let (_, _, account) = b.get("/account").await;
    assert!(!account.contains("grant_id"), "nothing was approved: {account}");
}

#[tokio::test]
async fn the_account_page_needs_a_session_and_a_user_can_only_revoke_their_own_approvals() {
    let app = spawn_app().await;
    seed(&app).await;
    seed_bob(&app).await;
    let anonymous = Browser::new(&app);
    let (status, location, _) = anonymous.get("/account").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));

    let alice = Browser::new(&app);
    let tokens = rp_tokens(&app, &alice).await;
    let (_, _, account) = alice.get("/account").await;
    let alices_grant = hidden(&account, "grant_id");

    let bob = Browser::new(&app);
    let (status, _, _) = sign_in(&bob, "/login", "bob", BOB_PASSWORD).await;
    assert_eq!(status, 303);
    let (_, _, bobs_account) = bob.get("/account").await;
    assert!(!bobs_account.contains(&alices_grant));
    let bobs_csrf = hidden(&bobs_account, "csrf");
    for grant in [alices_grant.as_str(), "no-such-grant", ""] {
        let (status, location, page) = bob
            .post(
                "/account/grants/revoke",
                &[("csrf", bobs_csrf.as_str()), ("grant_id", grant)],
            )
            .await;
        assert_eq!((status, location), (404, None), "grant {grant:?}: {page}");
    }
    // With alice's grant id but no CSRF token of the session.
    let (status, _, _) = alice
        .post("/account/grants/revoke", &[("grant_id", alices_grant.as_str())])
        .await;
    assert_eq!(status, 403);

    let (_, _, account) = alice.get("/account").await;
    assert!(account.contains(&alices_grant), "alice's approval stays: {account}");
    assert!(crate::authorize_errors::active(&app, &rp(), str_of(&tokens, "access_token")).await);
}

#[tokio::test]
async fn logging_out_needs_a_confirmation_or_a_valid_id_token_hint_with_a_registered_uri() {
    let app = spawn_app().await;
    seed(&app).await;

    // GET shows a confirm page; POST with the CSRF token signs out.
    let b = Browser::new(&app);
    let (status, _, _) = sign_in(&b, "/login", "alice", PASSWORD).await;
    assert_eq!(status, 303);
    let (status, location, page) = b.get("/logout").await;
    assert_eq!((status, location), (200, None));
    assert!(page.contains("action=\"/logout\""), "{page}");
    assert!(signed_in(&b).await, "showing the page signs nobody out");
    let (status, _, _) = b.post("/logout", &[]).await;
    assert_eq!(status, 403, "no CSRF token, no sign-out");
    assert!(signed_in(&b).await);
    let (status, _, _) = b.post("/logout", &[("csrf", &hidden(&page, "csrf"))]).await;
    assert_eq!(status, 200);
    assert!(!signed_in(&b).await, "signed out");

    // With an ID token as hint and a registered post_logout_redirect_uri: straight back to the RP.
    let b = Browser::new(&app);
    let tokens = rp_tokens(&app, &b).await;
    let hint = str_of(&tokens, "id_token");
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();

    let unregistered = format!(
        "/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
        enc("https://evil.example/bye")
    );
    let (status, location, page) = b.get(&unregistered).await;
    assert_eq!(
        (status, location),
        (200, None),
        "an unregistered URI gets the confirm page"
    );
    assert!(page.contains("action=\"/logout\""), "{page}");
    assert!(signed_in(&b).await);

    let no_hint = format!(
        "/logout?post_logout_redirect_uri={}&state=bye",
        enc("https://rp.example/bye")
    );
    let (status, location, _) = b.get(&no_hint).await;
    assert_eq!((status, location), (200, None), "without a hint, confirm");
    assert!(signed_in(&b).await);

    let registered = format!(
        "/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
        enc("https://rp.example/bye")
    );
    let (status, location, _) = b.get(&registered).await;
    assert_eq!(status, 303);
    let location = location.expect("Location");
    assert!(location.starts_with("https://rp.example/bye?"), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("bye"));
    assert!(!signed_in(&b).await, "signed out");

    // Signing in again works (and needs no new consent).
    let p = pkce();
    let location = authorize_in(&b, &AuthRequest::rp(&p.challenge)).await;
    assert!(query_param(&location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn an_id_token_hint_of_another_user_gets_the_confirm_page_not_a_silent_sign_out() {
    let app = spawn_app().await;
    seed(&app).await;
    seed_bob(&app).await;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let logout = |hint: &str| {
        format!(
            "/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
            enc("https://rp.example/bye")
        )
    };
    // Bob's ID token, from his own browser.
    let bob = Browser::new(&app);
    let p = pkce();
    let location =
        crate::authorize_errors::authorize_as(&bob, &AuthRequest::rp(&p.challenge), "bob", BOB_PASSWORD).await;
    let r =
        crate::authorize_errors::redeem(&app, &crate::authorize_errors::code_of(&app, &location), &p.verifier).await;
    let bobs_hint = str_of(&r.body, "id_token").to_owned();

    // Alice is signed in; a link with Bob's ID token does not sign her out.
    let alice = Browser::new(&app);
    let tokens = rp_tokens(&app, &alice).await;
    let (status, location, page) = alice.get(&logout(&bobs_hint)).await;
    assert_eq!((status, location), (200, None), "{page}");
    assert!(page.contains("action=\"/logout\""), "{page}");
    assert!(signed_in(&alice).await, "still signed in");

    // Her own ID token does, straight back to the RP.
    let (status, location, _) = alice.get(&logout(str_of(&tokens, "id_token"))).await;
    assert_eq!(status, 303);
    assert!(location.expect("Location").starts_with("https://rp.example/bye?"));
    assert!(!signed_in(&alice).await, "signed out");
}

#[tokio::test]
async fn a_page_missing_its_parameters_answers_with_an_error_page() {
    let app = crate::helpers::spawn_app().await;
    for path in ["/consent", "/authorize/continue", "/consent?request="] {
        let r = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = r.text().await.expect("body");
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(ctype.starts_with("text/html"), "{path}: an HTML page, not {ctype:?}");
        assert!(body.contains("<main>"), "{path}: {body}");
    }
}

#[tokio::test]
async fn authorization_requests_are_limited_per_address() {
    let app = crate::helpers::spawn_app_with(crate::helpers::RedisChoice::ByBackend, |s| {
        s.max_authorization_requests_per_minute_per_address = 3;
    })
    .await;
    seed(&app).await;
    let b = Browser::new(&app);
    let p = pkce();
    let path = AuthRequest::rp(&p.challenge).path();
    for i in 0..3 {
        let (status, location, page) = b.get(&path).await;
        assert_eq!(status, 303, "request {i}: {page}");
        assert!(location.is_some_and(|l| l.starts_with("/login?request=")));
    }
    let (status, location, page) = b.get(&path).await;
    assert_eq!((status, location), (429, None), "{page}");
    assert!(page.contains("Too many sign-in requests"), "{page}");

    // Another address is not affected.
    let elsewhere = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
            .build()
            .expect("client"),
        base: app.address.clone(),
    };
    let (status, _, page) = elsewhere.get(&path).await;
    assert_eq!(status, 303, "{page}");
}
