//! RFC 7662 token introspection: an authenticated caller, and `{"active": false}`
//! with nothing more for any token that is not valid, not ours or not theirs.

use base64::Engine;
use deputy::tokens::Alg;
use serde_json::{json, Map, Value};

use crate::helpers::{basic, spawn_app, spawn_app_with, verify_with_jwks, RedisChoice, TestApp};

const API: &str = "https://api.example.com";
const OTHER_API: &str = "https://other.example.com";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// The JSON of one part of a compact JWS (0: header, 1: claims).
fn part(jwt: &str, i: usize) -> Value {
    let p = jwt.split('.').nth(i).expect("JWS part");
    serde_json::from_slice(&b64().decode(p).expect("base64url")).expect("JSON")
}

async fn assert_inactive(app: &TestApp, caller: &(String, String), token: &str, case: &str) {
    let r = app.introspect(caller, token).await;
    assert_eq!(r.status, 200, "{case}: {:?}", r.body);
    // §2.2: an inactive token gets `active: false` and no other member.
    assert_eq!(r.body, json!({ "active": false }), "{case}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{case}");
}

#[tokio::test]
async fn an_active_token_is_described_by_its_claims_and_the_answer_is_not_cached() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read write", &[API]).await;
    let r = app
        .post_form(
            "/token",
            Some(&basic(&svc.0, &svc.1)),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let token = r.body["access_token"].as_str().expect("access_token");
    let (_, claims) = verify_with_jwks(&app, token).await;

    let i = app.introspect(&svc, token).await;
    assert_eq!(i.status, 200, "{:?}", i.body);
    assert_eq!(i.header("cache-control"), Some("no-store"));
    assert_eq!(i.header("pragma"), Some("no-cache"));
    assert_eq!(
        i.body,
        json!({
            "active": true,
            "scope": "read",
            "client_id": "svc",
            "sub": "svc",
            "aud": API,
            "iss": app.settings.issuer,
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": claims["jti"],
            "token_type": r.body["token_type"],
        })
    );
    assert_eq!(i.body["token_type"], "Bearer");
}

#[tokio::test]
async fn an_expired_token_is_inactive_and_nothing_more() {
    let app = spawn_app().await;
    app.import(&format!(
        "[[clients]]\nclient_id = \"brief\"\nclient_name = \"Brief\"\nclient_secret = \"brief-secret-0123456789\"\n\
         scope = \"read\"\nresources = [\"{API}\"]\naccess_token_ttl = 2\n"
    ))
    .await;
    let brief = ("brief".to_owned(), "brief-secret-0123456789".to_owned());
    let token = app.token(&brief, &[]).await;
    assert_eq!(
        part(&token, 1)["exp"].as_i64().expect("exp") - part(&token, 1)["iat"].as_i64().expect("iat"),
        2
    );
    // Introspected while alive (so the validated-token cache holds it), then after expiry.
    let r = app.introspect(&brief, &token).await;
    assert_eq!(r.body["active"], true, "{:?}", r.body);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_inactive(&app, &brief, &token, "expired").await;
}

#[tokio::test]
async fn malformed_strings_are_inactive_and_nothing_more() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let real = app.token(&svc, &[]).await;
    let mut parts = real.split('.');
    let (h, c) = (parts.next().expect("header"), parts.next().expect("claims"));
    let long = "a".repeat(9000);
    for (case, token) in [
        ("garbage", "not-a-token"),
        ("two parts", &format!("{h}.{c}") as &str),
        ("empty signature", &format!("{h}.{c}.")),
        ("bad base64", "!!!.@@@.###"),
        ("header is not JSON", &format!("{}.{c}.AAAA", b64().encode("nope"))),
        ("longer than any token", &long),
    ] {
        assert_inactive(&app, &svc, token, case).await;
    }
}

#[tokio::test]
async fn a_token_signed_by_a_key_this_server_does_not_have_is_inactive() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    // Another deployment with its own database and keys, even claiming our issuer:
    // everything in its token matches except the key that signed it.
    let issuer = app.settings.issuer.clone();
    let stranger = spawn_app_with(RedisChoice::ByBackend, move |s| s.issuer = issuer).await;
    let twin = stranger.client("svc", "read", &[API]).await;
    let foreign = stranger.token(&twin, &[]).await;
    assert_eq!(part(&foreign, 1)["iss"], app.settings.issuer.as_str());
    assert!(!app
        .state
        .keys
        .current()
        .has_kid(part(&foreign, 0)["kid"].as_str().expect("kid")));
    assert_inactive(&app, &svc, &foreign, "unknown key").await;
}

#[tokio::test]
async fn a_token_whose_payload_was_changed_after_signing_is_inactive() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read write", &[API]).await;
    let token = app.token(&svc, &[("scope", "read")]).await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = part(&token, 1);
    claims["scope"] = json!("read write");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64().encode(serde_json::to_vec(&claims).expect("json")),
        parts[2]
    );
    assert_ne!(tampered, token);
    assert_inactive(&app, &svc, &tampered, "tampered payload").await;
    // The untouched token is still good: only the change made it inactive.
    assert_eq!(app.introspect(&svc, &token).await.body["active"], true);
}

#[tokio::test]
async fn another_clients_token_is_inactive_unless_the_caller_serves_its_audience() {
    let app = spawn_app().await;
    let owner = app.client("owner", "read", &[API]).await;
    let bystander = app.client("bystander", "read", &[OTHER_API]).await;
    let resource_server = app.client("api-server", "introspect", &[API]).await;
    let token = app.token(&owner, &[]).await;

    assert_inactive(&app, &bystander, &token, "bystander").await;

    let r = app.introspect(&resource_server, &token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["active"], true, "{:?}", r.body);
    assert_eq!(r.body["client_id"], "owner");
    assert_eq!(r.body["aud"], API);
}

#[tokio::test]
async fn introspection_requires_an_authenticated_client() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    for (case, auth, params) in [
        ("no credentials", None, vec![("token", token.as_str())]),
        // §2.1: a bare client_id (a public client) is not authentication.
        (
            "bare client_id",
            None,
            vec![("token", token.as_str()), ("client_id", "svc")],
        ),
        (
            "wrong secret",
            Some(basic("svc", "not-the-secret-0123456789")),
            vec![("token", token.as_str())],
        ),
        (
            "unknown client",
            Some(basic("nobody", "nobody-secret-0123456789")),
            vec![("token", token.as_str())],
        ),
        (
            "wrong secret in the body",
            None,
            vec![
                ("token", token.as_str()),
                ("client_id", "svc"),
                ("client_secret", "not-the-secret-0123456789"),
            ],
        ),
    ] {
        let r = app.post_form("/introspect", auth.as_deref(), &params).await;
        // RFC 6749 §5.2: 401 with a challenge after HTTP Basic, else 400 without.
        let basic_tried = auth.is_some();
        assert_eq!(r.status, if basic_tried { 401 } else { 400 }, "{case}: {:?}", r.body);
        assert_eq!(r.error(), "invalid_client", "{case}");
        assert_eq!(r.header("www-authenticate").is_some(), basic_tried, "{case}");
        assert!(r.body.get("active").is_none(), "{case}: nothing about the token");
    }
}

#[tokio::test]
async fn introspection_refuses_a_request_without_exactly_one_token() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let token = app.token(&svc, &[]).await;
    let auth = basic(&svc.0, &svc.1);
    for (case, params) in [
        ("no token", vec![]),
        ("empty token", vec![("token", "")]),
        ("only a hint", vec![("token_type_hint", "access_token")]),
        (
            "token twice",
            vec![("token", token.as_str()), ("token", token.as_str())],
        ),
    ] {
        let r = app.post_form("/introspect", Some(&auth), &params).await;
        assert_eq!(r.status, 400, "{case}: {:?}", r.body);
        assert_eq!(r.error(), "invalid_request", "{case}");
    }
}

#[tokio::test]
async fn introspection_accepts_post_only() {
    let app = spawn_app().await;
    let r = app.get("/introspect").await;
    assert_eq!(r.status, 405, "{:?}", r.body);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.error(), "invalid_request");
}

/// Claims of a token Deputy would issue to `svc` for `API` right now.
fn good_claims(app: &TestApp) -> Map<String, Value> {
    let now = deputy::clock::now();
    let Value::Object(m) = json!({
        "iss": app.settings.issuer,
        "sub": "svc",
        "aud": API,
        "client_id": "svc",
        "scope": "read",
        "iat": now,
        "exp": now + 300,
        "jti": deputy::tokens::random_id(),
    }) else {
        unreachable!()
    };
    m
}

/// Signs with the server's active ES256 key, through `KeySet::sign`.
pub(crate) fn sign(app: &TestApp, typ: &str, claims: Map<String, Value>) -> String {
    match app.state.keys.current().sign(Alg::ES256, typ, claims.clone()) {
        Ok(token) => token,
        // `KeySet::sign` refuses registered claims of the wrong JSON type; the
        // validator must not rely on that, so such tokens are signed raw.
        Err(deputy::tokens::TokenError::Claims(_)) => sign_raw(app, typ, &claims),
        Err(e) => panic!("cannot sign: {e}"),
    }
}

/// Signs the claims' JSON bytes as they are with the same stored key.
fn sign_raw(app: &TestApp, typ: &str, claims: &Map<String, Value>) -> String {
    use josekit::jws::{JwsHeader, ES256};
    let kid = app
        .state
        .keys
        .current()
        .active_kid(Alg::ES256)
        .expect("active ES256 key")
        .to_owned();
    let rows = app.state.db.run_blocking(deputy::storage::keys::all).expect("keys");
    let row = rows.iter().find(|r| r.kid == kid).expect("stored key");
    // Stored sealed under the deployment's key-encryption key (tokens::at_rest).
    let enc = deputy::tokens::at_rest::KeyEncryption::from_settings(&app.settings).expect("kek");
    let private = enc
        .open(&format!("signing_key:{kid}"), &row.private_jwk)
        .expect("opens")
        .value;
    let jwk = josekit::jwk::Jwk::from_bytes(private.as_bytes()).expect("jwk");
    let signer = ES256.signer_from_jwk(&jwk).expect("signer");
    let mut header = JwsHeader::new();
    header.set_token_type(typ);
    header.set_key_id(kid);
    let payload = serde_json::to_vec(claims).expect("json");
    josekit::jws::serialize_compact(&payload, &header, &signer).expect("signed")
}

#[tokio::test]
async fn tokens_signed_with_the_servers_key_but_wrong_claims_are_inactive() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let now = deputy::clock::now();

    // The crafting is faithful: the same claims, untouched, are active, and so is
    // an `iat` a few seconds ahead (clock skew is allowed up to 10 s).
    for (case, typ, edit) in [
        ("as issued", "at+jwt", json!({})),
        ("full media type", "application/at+jwt", json!({})),
        ("iat 5 s ahead", "at+jwt", json!({ "iat": now + 5 })),
    ] {
        let mut claims = good_claims(&app);
        claims.extend(edit.as_object().expect("object").clone());
        let r = app.introspect(&svc, &sign(&app, typ, claims)).await;
        assert_eq!(r.body["active"], true, "{case}: {:?}", r.body);
    }
    let raw = sign_raw(&app, "at+jwt", &good_claims(&app));
    assert_eq!(
        app.introspect(&svc, &raw).await.body["active"],
        true,
        "raw signing is faithful"
    );

    let cases: Vec<(&str, &str, Value, &[&str])> = vec![
        ("typ JWT", "JWT", json!({}), &[]),
        (
            "typ of another kind of token",
            "client-authentication+jwt",
            json!({}),
            &[],
        ),
        ("empty typ", "", json!({}), &[]),
        (
            "foreign iss",
            "at+jwt",
            json!({ "iss": "https://evil.example.com" }),
            &[],
        ),
        (
            "iss with a trailing slash",
            "at+jwt",
            json!({ "iss": format!("{}/", app.settings.issuer) }),
            &[],
        ),
        (
            "exp in the past",
            "at+jwt",
            json!({ "exp": now - 10, "iat": now - 310 }),
            &[],
        ),
        ("exp is now", "at+jwt", json!({ "exp": now }), &[]),
        ("iat 120 s ahead", "at+jwt", json!({ "iat": now + 120 }), &[]),
        ("nbf 120 s ahead", "at+jwt", json!({ "nbf": now + 120 }), &[]),
        (
            "exp as a string",
            "at+jwt",
            json!({ "exp": (now + 300).to_string() }),
            &[],
        ),
        (
            "exp as a float",
            "at+jwt",
            json!({ "exp": (now + 300) as f64 + 0.5 }),
            &[],
        ),
        ("iat as a string", "at+jwt", json!({ "iat": now.to_string() }), &[]),
        ("nbf as a string", "at+jwt", json!({ "nbf": now.to_string() }), &[]),
        ("aud as a number", "at+jwt", json!({ "aud": 7 }), &[]),
        ("client_id as an array", "at+jwt", json!({ "client_id": ["svc"] }), &[]),
        ("empty aud", "at+jwt", json!({ "aud": "" }), &[]),
        ("missing aud", "at+jwt", json!({}), &["aud"]),
        ("missing exp", "at+jwt", json!({}), &["exp"]),
        ("missing iss", "at+jwt", json!({}), &["iss"]),
        ("missing jti", "at+jwt", json!({}), &["jti"]),
        ("missing sub", "at+jwt", json!({}), &["sub"]),
        ("missing client_id", "at+jwt", json!({}), &["client_id"]),
    ];
    for (case, typ, edit, remove) in cases {
        let mut claims = good_claims(&app);
        claims.extend(edit.as_object().expect("object").clone());
        for name in remove {
            claims.remove(*name);
        }
        assert_inactive(&app, &svc, &sign(&app, typ, claims), case).await;
    }
}

#[tokio::test]
async fn an_unsigned_token_naming_the_servers_key_is_inactive() {
    let app = spawn_app().await;
    let svc = app.client("svc", "read", &[API]).await;
    let kid = app
        .state
        .keys
        .current()
        .active_kid(Alg::ES256)
        .expect("active key")
        .to_owned();
    let claims = b64().encode(serde_json::to_vec(&good_claims(&app)).expect("json"));
    for alg in ["none", "None", "HS256"] {
        let header =
            b64().encode(serde_json::to_vec(&json!({ "alg": alg, "typ": "at+jwt", "kid": kid })).expect("json"));
        // RFC 8725 §3.1: the algorithm is the key's (ES256), never the one the token names.
        assert_inactive(&app, &svc, &format!("{header}.{claims}."), alg).await;
        assert_inactive(&app, &svc, &format!("{header}.{claims}.AAAA"), alg).await;
    }
}
