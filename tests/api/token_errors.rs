//! Every way `POST /token` refuses a request (RFC 6749 §5.2, RFC 8707 §2):
//! a JSON body with `error` and `error_description`, `Cache-Control: no-store`,
//! the status the RFC names, and never a 500.

use base64::Engine;

use crate::helpers::{basic, spawn_app, spawn_app_with, RedisChoice, Reply, TestApp};

const API: &str = "https://api.example.com";
const OTHER: &str = "https://other.example.com";
const FORM: &str = "application/x-www-form-urlencoded";

/// Form parameters of one request.
type Params<'a> = Vec<(&'a str, &'a str)>;

/// The shape every refusal must have.
#[track_caller]
fn assert_refused(r: &Reply, status: u16, error: &str, case: &str) {
    assert_eq!(r.status, status, "{case}: {:?}", r.body);
    assert_eq!(r.error(), error, "{case}: {:?}", r.body);
    assert!(
        r.body["error_description"].as_str().is_some_and(|d| !d.is_empty()),
        "{case}: error_description missing: {:?}",
        r.body
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{case}: {:?}",
        r.header("content-type")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{case}");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn still_gets_a_token(app: &TestApp, client: &(String, String)) {
    let token = app.token(client, &[]).await;
    assert_eq!(token.split('.').count(), 3, "a JWT access token");
}

#[tokio::test]
async fn a_wrong_secret_is_401_invalid_client_with_a_basic_challenge() {
    let app = spawn_app().await;
    let (id, _) = app.client("svc", "read", &[API]).await;
    let r = app
        .post_form(
            "/token",
            Some(&basic(&id, "not-the-secret-0123456789")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_refused(&r, 401, "invalid_client", "wrong secret");
    // RFC 6749 §5.2: a client that tried the Authorization header gets a matching challenge.
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate header");
    assert!(challenge.starts_with("Basic "), "{challenge}");
    assert!(r.body.get("access_token").is_none());
}

#[tokio::test]
async fn an_unknown_client_and_a_wrong_secret_get_the_same_answer() {
    let app = spawn_app().await;
    app.client("known", "read", &[API]).await;
    app.import(&format!(
        "[[clients]]\nclient_id = \"poster\"\nclient_name = \"Poster\"\nclient_secret = \"poster-secret-0123456789\"\n\
         token_endpoint_auth_method = \"client_secret_post\"\nscope = \"read\"\nresources = [\"{API}\"]\n"
    ))
    .await;
    let grant = ("grant_type", "client_credentials");

    let wrong = app
        .post_form("/token", Some(&basic("known", "wrong-secret-0123456789")), &[grant])
        .await;
    let unknown = app
        .post_form("/token", Some(&basic("nobody", "wrong-secret-0123456789")), &[grant])
        .await;
    assert_refused(&wrong, 401, "invalid_client", "wrong secret (basic)");
    assert_refused(&unknown, 401, "invalid_client", "unknown client (basic)");
    assert_eq!(wrong.body, unknown.body, "the body must not tell which clients exist");
    assert_eq!(wrong.header("www-authenticate"), unknown.header("www-authenticate"));

    let post = |id: &'static str| [grant, ("client_id", id), ("client_secret", "wrong-secret-0123456789")];
    let wrong = app.post_form("/token", None, &post("poster")).await;
    let unknown = app.post_form("/token", None, &post("nobody-either")).await;
    assert_refused(&wrong, 400, "invalid_client", "wrong secret (post)");
    assert_refused(&unknown, 400, "invalid_client", "unknown client (post)");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn a_request_without_client_authentication_is_400_invalid_client_without_a_challenge() {
    let app = spawn_app().await;
    let client = app.client("svc", "read", &[API]).await;
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("nothing at all", &[("grant_type", "client_credentials")]),
        (
            "only a client_id (the client is confidential)",
            &[("grant_type", "client_credentials"), ("client_id", "svc")],
        ),
        (
            "a client_secret without a value",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", ""),
            ],
        ),
    ];
    for (case, params) in cases {
        let r = app.post_form("/token", None, params).await;
        // RFC 6749 §5.2: 401 and a challenge only when the Authorization header was tried.
        assert_refused(&r, 400, "invalid_client", case);
        assert_eq!(r.header("www-authenticate"), None, "{case}");
    }
    still_gets_a_token(&app, &client).await;
}

#[tokio::test]
async fn two_client_authentication_methods_in_one_request_are_invalid_request() {
    let app = spawn_app().await;
    let (id, secret) = app.client("svc", "read", &[API]).await;
    let auth = basic(&id, &secret);
    let jwt_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let cases: Vec<(&str, Option<&str>, Params)> = vec![
        (
            "Basic header and client_secret in the body",
            Some(&auth),
            vec![("client_id", "svc"), ("client_secret", &secret)],
        ),
        (
            "Basic header and client_secret without client_id",
            Some(&auth),
            vec![("client_secret", &secret)],
        ),
        (
            "Basic header and a client assertion",
            Some(&auth),
            vec![("client_assertion_type", jwt_type), ("client_assertion", "a.b.c")],
        ),
        (
            "client_secret and a client assertion",
            None,
            vec![
                ("client_id", "svc"),
                ("client_secret", &secret),
                ("client_assertion_type", jwt_type),
                ("client_assertion", "a.b.c"),
            ],
        ),
    ];
    for (case, auth, extra) in cases {
        let mut params = vec![("grant_type", "client_credentials")];
        params.extend(extra);
        let r = app.post_form("/token", auth, &params).await;
        assert_refused(&r, 400, "invalid_request", case);
    }
}

#[tokio::test]
async fn a_client_secret_basic_client_using_client_secret_post_is_invalid_client() {
    let app = spawn_app().await;
    let (id, secret) = app.client("svc", "read", &[API]).await;
    let r = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_refused(&r, 400, "invalid_client", "registered method is client_secret_basic");
    // The registered method still works.
    still_gets_a_token(&app, &(id, secret)).await;
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request_and_an_unknown_one_unsupported_grant_type() {
    let app = spawn_app().await;
    let (id, secret) = app.client("svc", "read", &[API]).await;
    let auth = basic(&id, &secret);

    for (case, params) in [
        ("no grant_type", vec![("scope", "read")]),
        ("grant_type without a value", vec![("grant_type", "")]),
    ] {
        let r = app.post_form("/token", Some(&auth), &params).await;
        assert_refused(&r, 400, "invalid_request", case);
    }
    // RFC 9700 §2.4: no password grant; no implicit flow.
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "CLIENT_CREDENTIALS",
        "client_credentials ",
    ] {
        let r = app.post_form("/token", Some(&auth), &[("grant_type", grant)]).await;
        assert_refused(&r, 400, "unsupported_grant_type", grant);
    }
}

#[tokio::test]
async fn a_scope_beyond_the_registration_or_malformed_is_invalid_scope() {
    let app = spawn_app().await;
    let client = app.client("svc", "read write", &[API]).await;
    let auth = basic(&client.0, &client.1);
    for scope in [
        "admin",
        "read admin",
        "READ",
        "a  b",
        "a\"b",
        "a\\b",
        " read",
        "read ",
        "lecture\u{e9}",
    ] {
        let r = app
            .post_form(
                "/token",
                Some(&auth),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        assert_refused(&r, 400, "invalid_scope", &format!("scope {scope:?}"));
    }
    // A control character is refused at the edge, before the scope is read.
    let r = app
        .post_form(
            "/token",
            Some(&auth),
            &[("grant_type", "client_credentials"), ("scope", "read\twrite")],
        )
        .await;
    assert_refused(&r, 400, "invalid_request", "scope with a tab");
    still_gets_a_token(&app, &client).await;
}

#[tokio::test]
async fn a_resource_that_is_unregistered_relative_fragmented_repeated_or_ambiguous_is_invalid_target() {
    let app = spawn_app().await;
    let one = app.client("one", "read", &[API]).await;
    let two = app.client("two", "read", &[API, OTHER]).await;
    let cc = ("grant_type", "client_credentials");
    let cases: Vec<(&str, &(String, String), Params)> = vec![
        ("not registered", &one, vec![cc, ("resource", OTHER)]),
        (
            "registered by another client",
            &one,
            vec![cc, ("resource", "https://evil.example.com")],
        ),
        (
            "a trailing slash is another resource",
            &one,
            vec![cc, ("resource", "https://api.example.com/")],
        ),
        ("relative", &one, vec![cc, ("resource", "/api")]),
        ("not a URI", &one, vec![cc, ("resource", "api.example.com")]),
        (
            "with a fragment",
            &one,
            vec![cc, ("resource", "https://api.example.com#frag")],
        ),
        (
            "with an empty fragment",
            &one,
            vec![cc, ("resource", "https://api.example.com#")],
        ),
        (
            "repeated, same value",
            &one,
            vec![cc, ("resource", API), ("resource", API)],
        ),
        (
            "repeated, two registered values",
            &two,
            vec![cc, ("resource", API), ("resource", OTHER)],
        ),
        ("absent while two are registered", &two, vec![cc]),
    ];
    for (case, client, params) in cases {
        let r = app
            .post_form("/token", Some(&basic(&client.0, &client.1)), &params)
            .await;
        assert_refused(&r, 400, "invalid_target", case);
    }
    // Naming one of its resources, the client with two is served.
    let token = app.token(&two, &[("resource", OTHER)]).await;
    assert!(!token.is_empty());
    still_gets_a_token(&app, &one).await;
}

#[tokio::test]
async fn any_other_parameter_sent_twice_is_invalid_request() {
    let app = spawn_app().await;
    let (id, secret) = app.client("svc", "read write", &[API]).await;
    app.import(&format!(
        "[[clients]]\nclient_id = \"poster\"\nclient_name = \"Poster\"\nclient_secret = \"poster-secret-0123456789\"\n\
         token_endpoint_auth_method = \"client_secret_post\"\nscope = \"read\"\nresources = [\"{API}\"]\n"
    ))
    .await;
    let auth = basic(&id, &secret);
    let cc = ("grant_type", "client_credentials");
    let post_auth = [("client_id", "poster"), ("client_secret", "poster-secret-0123456789")];
    let cases: Vec<(&str, Option<&str>, Params)> = vec![
        (
            "scope twice",
            Some(&auth),
            vec![cc, ("scope", "read"), ("scope", "write")],
        ),
        (
            "scope twice, same value",
            Some(&auth),
            vec![cc, ("scope", "read"), ("scope", "read")],
        ),
        ("grant_type twice", Some(&auth), vec![cc, cc]),
        (
            "client_id twice",
            Some(&auth),
            vec![cc, ("client_id", "svc"), ("client_id", "svc")],
        ),
        (
            "client_secret twice",
            None,
            vec![
                cc,
                post_auth[0],
                post_auth[1],
                ("client_secret", "poster-secret-0123456789"),
            ],
        ),
        (
            "an unknown parameter twice",
            Some(&auth),
            vec![cc, ("foo", "1"), ("foo", "2")],
        ),
    ];
    for (case, auth, params) in cases {
        let r = app.post_form("/token", auth, &params).await;
        assert_refused(&r, 400, "invalid_request", case);
    }
    // An unknown parameter once is ignored (RFC 6749 §3.2), and so is an empty one twice (§3.1: omitted).
    let r = app
        .post_form("/token", Some(&auth), &[cc, ("foo", "1"), ("scope", ""), ("scope", "")])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn any_method_but_post_is_405_with_allow_post_and_a_json_error() {
    let app = spawn_app().await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let res = app
            .http
            .request(
                method.clone(),
                format!("{}/token?grant_type=client_credentials", app.address),
            )
            .send()
            .await
            .expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body: serde_json::Value = res.json().await.expect("a JSON body");
        let r = Reply { status, headers, body };
        assert_refused(&r, 405, "invalid_request", method.as_str());
        assert_eq!(r.header("allow"), Some("POST"), "{method}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_valid_form_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.client("svc", "read", &[API]).await;
    let auth = basic(&client.0, &client.1);
    let mut big = b"grant_type=client_credentials&pad=".to_vec();
    big.resize(20 * 1024, b'a');
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "JSON",
            "application/json",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        (
            "form fields as text/plain",
            "text/plain",
            b"grant_type=client_credentials".to_vec(),
        ),
        ("multipart", "multipart/form-data; boundary=x", b"--x--".to_vec()),
        ("larger than 16 KiB", FORM, big),
        (
            "%ff decodes to invalid UTF-8",
            FORM,
            b"grant_type=client_credentials&scope=%ff".to_vec(),
        ),
        ("%ff in a name", FORM, b"grant_type=client_credentials&%ff=x".to_vec()),
        (
            "truncated UTF-8 sequence",
            FORM,
            b"grant_type=client_credentials&scope=%e2%82".to_vec(),
        ),
        (
            "raw invalid UTF-8 byte",
            FORM,
            b"grant_type=client_credentials&scope=\xff".to_vec(),
        ),
    ];
    for (case, content_type, body) in cases {
        let r = app.post_raw("/token", Some(&auth), content_type, body).await;
        assert_refused(&r, 400, "invalid_request", case);
    }
    // No Content-Type at all.
    let res = app
        .http
        .post(format!("{}/token", app.address))
        .header("Authorization", &auth)
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status().as_u16(), 400);
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_request");
    // A charset parameter on the right media type is fine.
    let r = app
        .post_raw(
            "/token",
            Some(&auth),
            "application/x-www-form-urlencoded; charset=UTF-8",
            b"grant_type=client_credentials".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn a_malformed_basic_header_is_401_invalid_client_with_a_challenge() {
    let app = spawn_app().await;
    let client = app.client("svc", "read", &[API]).await;
    let cases: Vec<(&str, String)> = vec![
        ("not base64", "Basic !!!not-base64!!!".into()),
        ("no colon", format!("Basic {}", b64(b"svc"))),
        ("empty client id", format!("Basic {}", b64(b":svc-secret-0123456789"))),
        ("empty secret", format!("Basic {}", b64(b"svc:"))),
        ("scheme without credentials", "Basic".into()),
        ("not UTF-8 once decoded", format!("Basic {}", b64(b"\xff\xfe:secret"))),
        ("bad percent-encoding", format!("Basic {}", b64(b"svc:%ff%fe"))),
    ];
    for (case, header) in cases {
        let r = app
            .post_form("/token", Some(&header), &[("grant_type", "client_credentials")])
            .await;
        assert_refused(&r, 401, "invalid_client", case);
        assert!(
            r.header("www-authenticate").is_some_and(|h| h.starts_with("Basic ")),
            "{case}: {:?}",
            r.header("www-authenticate")
        );
    }
    still_gets_a_token(&app, &client).await;
}

#[tokio::test]
async fn another_authorization_scheme_is_invalid_request() {
    let app = spawn_app().await;
    app.client("svc", "read", &[API]).await;
    for header in ["Bearer x", "Digest username=\"svc\"", "Token svc-secret-0123456789"] {
        let r = app
            .post_form("/token", Some(header), &[("grant_type", "client_credentials")])
            .await;
        assert_refused(&r, 400, "invalid_request", header);
    }
}

#[tokio::test]
async fn secret_guessing_is_stopped_per_client_without_locking_out_others() {
    let app = spawn_app_with(RedisChoice::ByBackend, |s| {
        s.client_auth.max_secret_verifications_per_minute = 3;
    })
    .await;
    let victim = app.client("victim", "read", &[API]).await;
    let near = app.client("near", "read", &[API]).await;
    let bystander = app.client("bystander", "read", &[API]).await;
    let cc = [("grant_type", "client_credentials")];

    // Three wrong guesses use up the victim's three verifications this minute...
    for i in 0..3 {
        let r = app
            .post_form("/token", Some(&basic("victim", &format!("guess-{i}-0123456789"))), &cc)
            .await;
        assert_refused(&r, 401, "invalid_client", &format!("guess {i}"));
    }
    // ...so now even the right secret (never verified before) is refused for it.
    let r = app.post_form("/token", Some(&basic(&victim.0, &victim.1)), &cc).await;
    assert_refused(&r, 401, "invalid_client", "right secret after the limit");
    assert!(r.body.get("access_token").is_none());

    // Two wrong guesses stay within the limit: the right secret then works.
    for i in 0..2 {
        let r = app
            .post_form("/token", Some(&basic("near", &format!("guess-{i}-0123456789"))), &cc)
            .await;
        assert_refused(&r, 401, "invalid_client", &format!("near guess {i}"));
    }
    still_gets_a_token(&app, &near).await;
    // Another client is not affected at all.
    still_gets_a_token(&app, &bystander).await;
    // The victim stays refused for the rest of the minute.
    let r = app.post_form("/token", Some(&basic(&victim.0, &victim.1)), &cc).await;
    assert_refused(&r, 401, "invalid_client", "victim still limited");
}

#[tokio::test]
async fn junk_requests_leave_the_client_able_to_get_a_token() {
    let app = spawn_app().await;
    let client = app.client("svc", "read write", &[API]).await;
    let auth = basic(&client.0, &client.1);
    let junk: Vec<(&str, Vec<u8>)> = vec![
        (FORM, b"grant_type=client_credentials&scope=admin".to_vec()),
        (
            FORM,
            b"grant_type=client_credentials&resource=https://evil.example.com".to_vec(),
        ),
        (FORM, b"grant_type=password&username=a&password=b".to_vec()),
        (FORM, b"grant_type=client_credentials&scope=read&scope=write".to_vec()),
        (
            FORM,
            b"grant_type=client_credentials&client_id=svc&client_secret=x".to_vec(),
        ),
        (FORM, b"%ff=%ff".to_vec()),
        (FORM, b"&&&===&&&".to_vec()),
        (FORM, vec![b'a'; 64 * 1024]),
        ("application/json", b"{}".to_vec()),
        (
            FORM,
            b"grant_type=client_credentials&client_id=svc%00&scope=%00".to_vec(),
        ),
    ];
    for (content_type, body) in junk {
        let r = app.post_raw("/token", Some(&auth), content_type, body).await;
        assert!(
            (400..500).contains(&r.status),
            "junk must be refused by a 4xx: {} {:?}",
            r.status,
            r.body
        );
        assert!(r.body["error"].is_string(), "{:?}", r.body);
    }
    // A wrong secret does not change the stored one either.
    let r = app
        .post_form(
            "/token",
            Some(&basic("svc", "wrong-secret-0123456789")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_refused(&r, 401, "invalid_client", "wrong secret");

    let r = app
        .post_form(
            "/token",
            Some(&auth),
            &[("grant_type", "client_credentials"), ("scope", "read write")],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["scope"], "read write");
    assert_eq!(r.body["token_type"], "Bearer");
}
