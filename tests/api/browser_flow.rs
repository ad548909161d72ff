//! The authorization code flow as a browser and a relying party see it, over
//! HTTP: a cookie-keeping client walks the pages; an `openidconnect` relying
//! party discovers Deputy, redeems the code with PKCE, validates the ID token
//! against the JWKS, and reads userinfo.

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::helpers::{spawn_app, TestApp};

pub const RP_REDIRECT: &str = "https://rp.example/callback";
pub const RP_ID: &str = "rp";
pub const RP_SECRET: &str = "rp-secret-0123456789";

/// A user `alice` (password `correct horse battery`) and a confidential relying party.
pub async fn seed(app: &TestApp) {
    app.import(&format!(
        "[[users]]\nusername = \"alice\"\ndisplay_name = \"Alice Liddell\"\nemail = \"alice@example.com\"\n\
         password = \"correct horse battery\"\n\n\
         [[clients]]\nclient_id = \"{RP_ID}\"\nclient_name = \"Example RP\"\nclient_secret = \"{RP_SECRET}\"\n\
         grant_types = [\"authorization_code\", \"refresh_token\"]\nredirect_uris = [\"{RP_REDIRECT}\"]\n\
         post_logout_redirect_uris = [\"https://rp.example/bye\"]\n\
         scope = \"openid profile email offline_access read\"\nresources = [\"https://api.example.com\"]\n"
    ))
    .await;
}

/// A browser: keeps cookies, does not follow redirects by itself.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser {
            http,
            base: app.address.clone(),
        }
    }

    fn abs(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        }
    }

    /// GET; returns (status, Location, body).
    pub async fn get(&self, url: &str) -> (u16, Option<String>, String) {
        let r = self.http.get(self.abs(url)).send().await.expect("GET");
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (r.status().as_u16(), loc, r.text().await.expect("body"))
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let r = self.http.post(self.abs(url)).form(form).send().await.expect("POST");
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (r.status().as_u16(), loc, r.text().await.expect("body"))
    }

    /// Follows redirects inside Deputy until a page or a redirect to elsewhere.
    pub async fn follow(&self, url: &str) -> (u16, String, String) {
        let mut url = url.to_owned();
        for _ in 0..10 {
            let (status, loc, body) = self.get(&url).await;
            match loc {
                Some(l) if (300..400).contains(&status) && (l.starts_with('/') || l.starts_with(&self.base)) => url = l,
                Some(l) if (300..400).contains(&status) => return (status, l, body),
                _ => return (status, url, body),
            }
        }
        panic!("redirect loop from {url}");
    }
}

/// The value of a hidden input in a page.
pub fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in:\n{body}"))
        + marker.len();
    body[start..].split('"').next().expect("value").to_owned()
}

/// Signs in on the login page at `url` (a /login URL); returns where Deputy sends the browser next.
pub async fn sign_in(b: &Browser, login_url: &str, user: &str, password: &str) -> (u16, Option<String>, String) {
    let (status, _, page) = b.get(login_url).await;
    assert_eq!(status, 200, "login page: {page}");
    let csrf = hidden(&page, "csrf");
    let mut form = vec![("csrf", csrf.as_str()), ("username", user), ("password", password)];
    let request;
    if page.contains("name=\"request\"") {
        request = hidden(&page, "request");
        form.push(("request", request.as_str()));
    }
    b.post("/login", &form).await
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn an_openid_connect_relying_party_signs_a_user_in_and_reads_userinfo() {
    let app = spawn_app().await;
    seed(&app).await;
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.settings.issuer.clone()).expect("issuer"), &http)
            .await
            .expect("OpenID Connect discovery succeeds");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(RP_ID.into()),
        Some(ClientSecret::new(RP_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(RP_REDIRECT.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<openidconnect::core::CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new(&app);
    let (status, at, _) = browser.follow(auth_url.as_str()).await;
    assert_eq!(status, 200);
    assert!(at.contains("/login?request="), "sent to sign in: {at}");
    let (status, next, _) = sign_in(&browser, &at, "alice", "correct horse battery").await;
    assert_eq!(status, 303, "a POST is answered with 303 (RFC 9700 §4.12)");
    let (status, at, consent) = browser.follow(&next.expect("location")).await;
    assert_eq!(status, 200);
    assert!(at.contains("/consent?request="), "{at}");
    assert!(
        consent.contains("Example RP") && consent.contains("See your email address"),
        "{consent}"
    );
    // Approve all but `email`, for 1 day.
    let form: Vec<(&str, String)> = vec![
        ("csrf", hidden(&consent, "csrf")),
        ("request", hidden(&consent, "request")),
        ("scope", "openid".into()),
        ("scope", "profile".into()),
        ("scope", "offline_access".into()),
        ("duration", "86400".into()),
        ("action", "approve".into()),
    ];
    let form_ref: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, _) = browser.post("/consent", &form_ref).await;
    assert_eq!(status, 303);
    let location = location.expect("redirect to the client");
    assert!(location.starts_with(RP_REDIRECT), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(csrf_state.secret().as_str())
    );
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(app.settings.issuer.as_str()),
        "RFC 9207 iss"
    );
    let code = query_param(&location, "code").expect("code");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint configured")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is redeemed");
    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the ID token validates: signature (JWKS), iss, aud, exp, nonce");
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert!(claims.email().is_none(), "email was not approved");
    assert!(claims.auth_time().is_some());
    let granted: Vec<String> = tokens.scopes().expect("scope").iter().map(|s| s.to_string()).collect();
    assert!(!granted.contains(&"email".to_owned()), "{granted:?}");
    assert!(tokens.refresh_token().is_some(), "offline_access gives a refresh token");

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .expect("userinfo configured")
        .request_async(&http)
        .await
        .expect("userinfo answers");
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert!(info.email().is_none());

    // The account page lists the approval.
    let (status, _, account) = browser.get("/account").await;
    assert_eq!(status, 200);
    assert!(
        account.contains("Example RP") && account.contains("offline_access"),
        "{account}"
    );
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

#[tokio::test]
async fn the_authorization_endpoint_accepts_post_and_a_refresh_token_introspects_for_its_client_only() {
    let app = spawn_app().await;
    seed(&app).await;
    let other = app.client("other", "read", &["https://api.example.com"]).await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let (status, location, _) = browser
        .post(
            "/authorize",
            &[
                ("response_type", "code"),
                ("client_id", RP_ID),
                ("redirect_uri", RP_REDIRECT),
                ("scope", "openid offline_access"),
                ("state", "s-post"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, next, _) = sign_in(&browser, &location.expect("to login"), "alice", "correct horse battery").await;
    let (status, _, consent) = browser.follow(&next.expect("location")).await;
    assert_eq!(status, 200, "{consent}");
    let form = [
        ("csrf", hidden(&consent, "csrf")),
        ("request", hidden(&consent, "request")),
        ("scope", "openid".to_owned()),
        ("scope", "offline_access".to_owned()),
        ("duration", "3600".to_owned()),
        ("action", "approve".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, location, _) = browser.post("/consent", &form).await;
    let code = query_param(&location.expect("redirect"), "code").expect("code");
    let rp = crate::helpers::basic(RP_ID, RP_SECRET);
    let r = app
        .post_form(
            "/token",
            Some(&rp),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let refresh = r.body["refresh_token"].as_str().expect("refresh token").to_owned();

    let mine = app.post_form("/introspect", Some(&rp), &[("token", &refresh)]).await;
    assert_eq!(mine.body["active"], true, "{:?}", mine.body);
    assert_eq!(mine.body["token_type"], "refresh_token");
    assert_eq!(mine.body["client_id"], RP_ID);
    let theirs = app.introspect(&other, &refresh).await;
    assert_eq!(theirs.body, serde_json::json!({ "active": false }));
}
