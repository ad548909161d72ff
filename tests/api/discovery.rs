use crate::helpers::{spawn_app, verify_with_jwks};

#[tokio::test]
async fn both_metadata_documents_name_the_issuer_and_the_endpoints() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        let m = &r.body;
        // RFC 8414 §3.3: the issuer is identical to the one the document was fetched for.
        assert_eq!(m["issuer"], app.settings.issuer.as_str(), "{path}");
        assert_eq!(m["token_endpoint"], format!("{}/token", app.address));
        assert_eq!(m["jwks_uri"], format!("{}/jwks.json", app.address));
        assert_eq!(m["introspection_endpoint"], format!("{}/introspect", app.address));
        assert_eq!(m["revocation_endpoint"], format!("{}/revoke", app.address));
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
        assert_eq!(m["authorization_endpoint"], format!("{}/authorize", app.address));
        assert_eq!(m["userinfo_endpoint"], format!("{}/userinfo", app.address));
        assert_eq!(m["end_session_endpoint"], format!("{}/logout", app.address));
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
        // MCP clients refuse an authorization server that does not say S256.
        assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        let methods = m["token_endpoint_auth_methods_supported"].as_array().expect("array");
        for expected in ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"] {
            assert!(methods.iter().any(|v| v == expected), "{expected} advertised");
        }
        // Nothing unimplemented is advertised.
        assert!(m.get("registration_endpoint").is_none());
        assert_eq!(m["request_parameter_supported"], false);
    }
}

#[tokio::test]
async fn jwks_publishes_an_es256_and_an_rs256_public_key_and_no_private_parts() {
    let app = spawn_app().await;
    let r = app.get("/jwks.json").await;
    assert_eq!(r.status, 200);
    let keys = r.body["keys"].as_array().expect("keys");
    let algs: Vec<&str> = keys.iter().filter_map(|k| k["alg"].as_str()).collect();
    assert!(algs.contains(&"ES256") && algs.contains(&"RS256"), "{algs:?}");
    for k in keys {
        assert!(k["kid"].is_string());
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                k.get(private).is_none(),
                "private member {private} must not be published"
            );
        }
    }
}

#[tokio::test]
async fn issued_tokens_verify_against_the_published_jwks() {
    let app = spawn_app().await;
    let client = app.client("svc", "read", &["https://api.example.com"]).await;
    let token = app.token(&client, &[]).await;
    let (header, _) = verify_with_jwks(&app, &token).await;
    assert_eq!(header["alg"], "ES256");
}

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["database"], "ok");
    let client = app.client("svc", "read", &["https://api.example.com"]).await;
    app.token(&client, &[]).await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    let text = r.body.as_str().expect("text body");
    assert!(
        text.contains("deputy_tokens_issued_total{grant_type=\"client_credentials\"}"),
        "{text}"
    );
    assert!(text.contains("deputy_http_requests_total"), "{text}");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_anti_framing_headers() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert!(r.header("x-request-id").is_some_and(|v| v.len() >= 32));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(r
        .header("content-security-policy")
        .is_some_and(|v| v.contains("frame-ancestors 'none'")));
}
