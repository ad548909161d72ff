//! Hostile input (STANDARDS rule 10): control characters are refused at the
//! edge, in every query and form parameter, with a 400 (JSON `invalid_request`
//! at the token, introspection and revocation endpoints, an HTML page on the
//! browser pages), before anything reaches the database; and one request's
//! audit event that the database refuses fails that request alone, never the
//! others that share its group commit.

use diesel::connection::SimpleConnection;
use serde_json::Value;

use crate::authorize_errors::{pkce, AuthRequest};
use crate::browser_flow::{hidden, seed, Browser};
use crate::helpers::{basic, db_kind, spawn_app, DbKind, RedisChoice, TestApp};
use crate::token_exchange::{alice_token_for_planner, exchange, world, AT, EXCHANGE, PLANNER};

/// Asserts an HTML error page with status 400 (never a redirect, never a 5xx).
fn assert_refusal_page((status, location, body): (u16, Option<String>, String), what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(location, None, "{what}: no redirect");
    assert!(body.contains("<html"), "{what}: an HTML page: {body}");
    assert!(body.contains("control character"), "{what}: says why: {body}");
}

#[tokio::test]
async fn a_control_character_in_an_authorization_request_gets_an_error_page() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let p = pkce();
    for name in ["state", "nonce", "login_hint", "scope", "client_id", "redirect_uri"] {
        for bad in ["a\u{0}b", "a\u{1f}b", "a\u{7f}b", "a\nb"] {
            let path = AuthRequest::rp(&p.challenge).set(name, bad).path();
            assert_refusal_page(b.get(&path).await, &format!("GET {name}={bad:?}"));
        }
        // The same request as a POST body (OIDC Core §3.1.2.1).
        let (status, location, body) = b
            .post(
                "/authorize",
                &[
                    ("response_type", "code"),
                    ("client_id", "rp"),
                    ("redirect_uri", crate::browser_flow::RP_REDIRECT),
                    ("code_challenge", &p.challenge),
                    ("code_challenge_method", "S256"),
                    (name, "x\u{0}y"),
                ],
            )
            .await;
        assert_eq!((status, location), (400, None), "POST {name}: {body}");
        assert!(body.contains("control character"), "{body}");
    }
    // Nothing was stored, and a clean request still works.
    let (status, _, _) = b.get(&AuthRequest::rp(&p.challenge).path()).await;
    assert!(status < 400, "a clean request is still served");
}

#[tokio::test]
async fn a_control_character_in_a_page_query_gets_an_error_page() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    for path in [
        "/consent?request=%00",
        "/consent?request=a%00b",
        "/login?request=%00",
        "/authorize/continue?request=%01",
        "/logout?state=a%00b",
        "/logout?post_logout_redirect_uri=https://rp.example/bye%0A",
        "/account?x=%7F",
    ] {
        assert_refusal_page(b.get(path).await, path);
    }
}

#[tokio::test]
async fn a_sign_in_with_a_control_character_in_the_username_gets_an_error_page() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let (_, _, page) = b.get("/login").await;
    let csrf = hidden(&page, "csrf");
    for username in ["ali\u{0}ce", "alice\u{0}", "\u{1b}[31malice"] {
        let r = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_refusal_page(r, &format!("username {username:?}"));
    }
    // The password is exempt (only ever hashed): a wrong one with a tab is just wrong.
    let (status, _, body) = b
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "correct\thorse battery"),
            ],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    // And alice still signs in.
    let (status, location, body) = b
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")), "{body}");
}

/// Every parameter of the token, introspection and revocation endpoints.
#[tokio::test]
async fn a_control_character_in_any_token_endpoint_parameter_is_invalid_request() {
    let app = spawn_app().await;
    let client = app.client("svc", "read", &["https://api.example.com"]).await;
    let auth = basic(&client.0, &client.1);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/token",
            vec![("grant_type", "client_credentials"), ("scope", "re\u{0}ad")],
        ),
        (
            "/token",
            vec![
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example.com\u{0}"),
            ],
        ),
        ("/token", vec![("grant_type", "client_credentials\u{7f}")]),
        (
            "/token",
            vec![("grant_type", "client_credentials"), ("unknown", "\u{0}")],
        ),
        ("/token", vec![("grant_type", "client_credentials"), ("x\u{0}", "1")]),
        (
            "/token",
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", "x"),
                ("subject_token_type", AT),
                ("audience", "https://api.example.com/\u{0}"),
            ],
        ),
        ("/introspect", vec![("token", "abc\u{0}")]),
        (
            "/revoke",
            vec![("token", "abc\u{1}"), ("token_type_hint", "access_token")],
        ),
    ];
    for (path, params) in &cases {
        let r = app.post_form(path, Some(&auth), params).await;
        assert_eq!(
            (r.status, r.error()),
            (400, "invalid_request"),
            "{path} {params:?}: {:?}",
            r.body
        );
        assert!(
            r.body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("control character")),
            "{:?}",
            r.body
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // client_secret_post with a NUL in client_id: refused before any lookup.
    let r = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc\u{0}"),
                ("client_secret", &client.1),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"), "{:?}", r.body);
    // A query string on the token endpoint is checked too.
    let r = app
        .post_form("/token?x=%00", Some(&auth), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"), "{:?}", r.body);
    // The client is not harmed.
    app.token(&client, &[]).await;
}

#[tokio::test]
async fn a_control_character_in_an_admin_query_is_invalid_request() {
    let admin = "admin-token-0123456789-0123456789-abcdef";
    let app = crate::helpers::spawn_app_with(RedisChoice::ByBackend, |s| s.admin_token = Some(admin.into())).await;
    let r = app
        .http
        .get(format!("{}/admin/audit?agent=%00", app.address))
        .bearer_auth(admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
}

/// Makes the database refuse the audit event of any request whose
/// `authorization_details` mention "poison" (as PostgreSQL refuses a NUL).
fn poison_audit_details(app: &TestApp) {
    let sql = match db_kind() {
        DbKind::Sqlite => {
            "CREATE TRIGGER no_poison BEFORE INSERT ON audit_events \
             WHEN NEW.authorization_details LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poison'); END;"
        }
        DbKind::Postgres => {
            "ALTER TABLE audit_events ADD CONSTRAINT no_poison \
             CHECK (authorization_details IS NULL OR authorization_details NOT LIKE '%poison%') NOT VALID;"
        }
    };
    app.state
        .db
        .run_blocking(|c| c.batch_execute(sql).map_err(deputy::storage::StorageError::from))
        .expect("test DDL");
}

#[tokio::test]
async fn a_flood_of_requests_whose_audit_is_refused_never_fails_another_clients_exchange() {
    let w = world(RedisChoice::ByBackend).await;
    let user_token = alice_token_for_planner(&w).await;
    poison_audit_details(&w.app);
    let poison = r#"[{"type":"tool_invocation","note":"poison"}]"#;
    let hostile = [
        ("audience", "https://api.example.com/\u{0}"),
        ("scope", "read\u{0}"),
        ("resource", "https://api.example.com\u{0}"),
    ];
    const GOOD: usize = 24;
    let (w, subject) = (&w, user_token.as_str());
    let good = (0..GOOD).map(|_| async move { exchange(w, PLANNER, &w.planner, subject, &[("scope", "read")]).await });
    // Refused exchanges whose audit event the database refuses...
    let bad_audit = (0..GOOD * 2).map(|_| async move {
        exchange(
            w,
            PLANNER,
            &w.planner,
            "not-a-token",
            &[("authorization_details", poison)],
        )
        .await
    });
    // ... and hostile ones that the edge refuses.
    let bad_input = (0..GOOD).map(|i| async move {
        let (k, v) = hostile[i % hostile.len()];
        let auth = basic(PLANNER.0, PLANNER.1);
        let params = [
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", AT),
            (k, v),
        ];
        w.app.post_form("/token", Some(&auth), &params).await
    });
    let (good, bad_audit, bad_input) = tokio::join!(
        futures_util::future::join_all(good),
        futures_util::future::join_all(bad_audit),
        futures_util::future::join_all(bad_input),
    );
    for r in &good {
        assert_eq!(r.status, 200, "every legitimate exchange succeeds: {:?}", r.body);
    }
    for r in &bad_audit {
        assert_eq!(r.status, 400, "{:?}", r.body);
    }
    for r in &bad_input {
        assert_eq!((r.status, r.error()), (400, "invalid_request"), "{:?}", r.body);
    }
    let filter = deputy::storage::audit::AuditFilter {
        decision: Some("issued".into()),
        ..Default::default()
    };
    let issued = w
        .app
        .state
        .db
        .run(move |c| deputy::storage::audit::query(c, &filter))
        .await
        .expect("audit query")
        .into_iter()
        .filter(|e| e.event == "token_exchange")
        .count();
    assert_eq!(issued, GOOD, "every legitimate exchange is audited");
}

/// RFC 6749 §5.2: `%x20-21 / %x23-5B / %x5D-7E`.
fn in_charset(d: &str) -> bool {
    d.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

#[tokio::test]
async fn every_error_description_stays_within_the_rfc_6749_charset() {
    let admin = "admin-token-0123456789-0123456789-abcdef";
    let app = crate::helpers::spawn_app_with(RedisChoice::ByBackend, |s| s.admin_token = Some(admin.into())).await;
    seed(&app).await;
    let client = app.client("svc", "read", &["https://api.example.com"]).await;
    let auth = basic(&client.0, &client.1);
    let mut descriptions: Vec<(String, String)> = Vec::new();
    let hostile = "\"quoted\" back\\slash \u{a7}6 caf\u{e9} \u{2603}";

    let token_cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("grant_type", hostile)],
        vec![("grant_type", "client_credentials"), ("scope", hostile)],
        vec![("grant_type", "client_credentials"), ("resource", hostile)],
        vec![
            ("grant_type", "client_credentials"),
            ("resource", "https://elsewhere.example/\u{e9}"),
        ],
        vec![("grant_type", "refresh_token"), ("refresh_token", hostile)],
        vec![
            ("grant_type", "authorization_code"),
            ("code", hostile),
            ("redirect_uri", "x"),
            ("code_verifier", hostile),
        ],
        vec![
            ("grant_type", EXCHANGE),
            ("subject_token", hostile),
            ("subject_token_type", hostile),
        ],
        vec![
            ("grant_type", EXCHANGE),
            ("subject_token", hostile),
            ("subject_token_type", AT),
            ("actor_token", hostile),
            ("actor_token_type", hostile),
        ],
        vec![
            ("grant_type", EXCHANGE),
            ("subject_token", hostile),
            ("subject_token_type", AT),
            ("actor_token", hostile),
            ("actor_token_type", AT),
            ("authorization_details", r#"[{"type":"\"caf\u00e9\""}]"#),
        ],
        vec![("grant_type", "client_credentials"), ("x", "\u{0}")],
    ];
    for params in &token_cases {
        for a in [Some(auth.as_str()), None] {
            let r = app.post_form("/token", a, params).await;
            descriptions.push((format!("/token {params:?}"), r.body["error_description"].to_string()));
        }
    }
    let r = app
        .post_form(
            "/token",
            None,
            &[("grant_type", "client_credentials"), ("client_id", hostile)],
        )
        .await;
    descriptions.push(("client_id".into(), r.body["error_description"].to_string()));
    for path in ["/introspect", "/revoke"] {
        for params in [vec![], vec![("token", hostile)], vec![("token", "a"), ("token", "b")]] {
            let r = app.post_form(path, Some(&basic(hostile, hostile)), &params).await;
            descriptions.push((path.into(), r.body["error_description"].to_string()));
            let r = app.post_form(path, Some(&auth), &params).await;
            if r.status >= 400 {
                descriptions.push((path.into(), r.body["error_description"].to_string()));
            }
        }
    }
    let r = app.post_raw("/token", Some(&auth), "text/plain", b"x".to_vec()).await;
    descriptions.push(("content type".into(), r.body["error_description"].to_string()));
    let r = app.get("/token").await;
    descriptions.push(("GET /token".into(), r.body["error_description"].to_string()));
    let r = app
        .http
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(hostile.replace(['\u{e9}', '\u{a7}', '\u{2603}'], "x"))
        .send()
        .await
        .expect("sent");
    let body: Value = r.json().await.unwrap_or(Value::Null);
    descriptions.push(("userinfo".into(), body["error_description"].to_string()));
    // The admin API: malformed JSON, a malformed query.
    for (method, path, body) in [
        ("POST", "/admin/agents", "{\"agent_id\": \"\u{e9}\" ".to_owned()),
        ("POST", "/admin/agents", "{\"agent_id\": 5}".to_owned()),
        ("GET", "/admin/audit?since=%22caf%C3%A9%22", String::new()),
    ] {
        let req = match method {
            "POST" => app.http.post(format!("{}{path}", app.address)).body(body),
            _ => app.http.get(format!("{}{path}", app.address)),
        };
        let r = req.bearer_auth(admin).send().await.expect("sent");
        let body: Value = r.json().await.unwrap_or(Value::Null);
        descriptions.push((path.into(), body["error_description"].to_string()));
    }
    // Authorization error responses, by redirect.
    let b = Browser::new(&app);
    let p = pkce();
    for (name, value) in [
        ("prompt", hostile),
        ("scope", hostile),
        ("response_type", hostile),
        ("resource", hostile),
    ] {
        let (_, location, _) = b.get(&AuthRequest::rp(&p.challenge).set(name, value).path()).await;
        let location = location.expect("an error redirect");
        let d = crate::browser_flow::query_param(&location, "error_description").expect("description");
        descriptions.push((format!("/authorize {name}"), format!("{d:?}")));
    }

    assert!(descriptions.len() > 30, "{}", descriptions.len());
    for (case, d) in &descriptions {
        assert!(d != "null", "{case}: no error_description");
        let d: String = serde_json::from_str(d).expect("a JSON string");
        assert!(!d.is_empty(), "{case}");
        assert!(in_charset(&d), "{case}: {d:?}");
    }
}

#[tokio::test]
async fn a_control_character_in_an_admin_json_body_is_invalid_request() {
    let admin = "admin-token-0123456789-0123456789-abcdef";
    let app = crate::helpers::spawn_app_with(RedisChoice::ByBackend, |s| s.admin_token = Some(admin.into())).await;
    app.client("agent-client", "read", &["https://api.example.com"]).await;
    let spec = |name: &str| {
        serde_json::json!({
            "agent_id": "a1", "client_id": "agent-client", "name": name, "publisher": "Acme",
            "allowed_scopes": "read", "allowed_audiences": ["https://api.example.com"],
        })
        .to_string()
    };
    for name in ["nul\u{0}name", "esc\u{1b}[2J", "line\nbreak"] {
        let r = app
            .http
            .post(format!("{}/admin/agents", app.address))
            .bearer_auth(admin)
            .body(spec(name))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 400, "{name:?}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("control character")),
            "{body}"
        );
    }
    let r = app
        .http
        .post(format!("{}/admin/agents", app.address))
        .bearer_auth(admin)
        .body(spec("A clean name"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
}
