use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use crate::helpers::{spawn_app, verify_with_jwks};

const API: &str = "https://api.example.com";

fn oauth2_client(
    app: &crate::helpers::TestApp,
    id: &str,
    secret: &str,
    auth: AuthType,
) -> oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(id.into()))
        .set_client_secret(ClientSecret::new(secret.into()))
        .set_token_uri(TokenUrl::new(format!("{}/token", app.address)).expect("url"))
        .set_auth_type(auth)
}

#[tokio::test]
async fn oauth2_crate_gets_a_token_with_client_secret_basic() {
    let app = spawn_app().await;
    let (id, secret) = app.client("svc", "read write", &[API]).await;
    let http = oauth2::reqwest::Client::new();
    let token = oauth2_client(&app, &id, &secret, AuthType::BasicAuth)
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .add_extra_param("resource", API)
        .request_async(&http)
        .await
        .expect("token issued");
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["read".to_owned()])
    );
    let expires = token.expires_in().expect("expires_in").as_secs();
    assert_eq!(expires, app.settings.tokens.access_token_ttl as u64);

    let (header, claims) = verify_with_jwks(&app, token.access_token().secret()).await;
    // RFC 9068 §2.1 and §2.2.
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], app.settings.issuer.as_str());
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["scope"], "read");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, app.settings.tokens.access_token_ttl);
    assert!((iat - deputy::clock::now()).abs() <= 5);
}

#[tokio::test]
async fn oauth2_crate_gets_a_token_with_client_secret_post() {
    let app = spawn_app().await;
    app.import(&format!(
        "[[clients]]\nclient_id = \"poster\"\nclient_name = \"Poster\"\nclient_secret = \"poster-secret-0123456789\"\n\
         token_endpoint_auth_method = \"client_secret_post\"\nscope = \"read\"\nresources = [\"{API}\"]\n"
    ))
    .await;
    let http = oauth2::reqwest::Client::new();
    let token = oauth2_client(&app, "poster", "poster-secret-0123456789", AuthType::RequestBody)
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .expect("token issued");
    let (_, claims) = verify_with_jwks(&app, token.access_token().secret()).await;
    assert_eq!(claims["client_id"], "poster");
    // Without `scope`, the registered scope; without `resource`, the only registered resource.
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["aud"], API);
}

#[tokio::test]
async fn token_lifetime_follows_the_client_but_never_passes_the_server_ceiling() {
    let app = spawn_app().await;
    app.import(&format!(
        "[[clients]]\nclient_id = \"short\"\nclient_name = \"Short\"\nclient_secret = \"short-secret-0123456789\"\n\
         scope = \"read\"\nresources = [\"{API}\"]\naccess_token_ttl = 60\n\n\
         [[clients]]\nclient_id = \"long\"\nclient_name = \"Long\"\nclient_secret = \"long-secret-0123456789\"\n\
         scope = \"read\"\nresources = [\"{API}\"]\naccess_token_ttl = 999999\n"
    ))
    .await;
    for (id, expected) in [("short", 60), ("long", app.settings.tokens.max_access_token_ttl)] {
        let r = app
            .post_form(
                "/token",
                Some(&crate::helpers::basic(id, &format!("{id}-secret-0123456789"))),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["expires_in"], expected, "{id}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("pragma"), Some("no-cache"));
    }
}

#[tokio::test]
async fn oauth2_crate_introspects_a_token_active_then_inactive_after_revocation() {
    use oauth2::{AccessToken, IntrospectionUrl, TokenIntrospectionResponse};
    let app = spawn_app().await;
    let (id, secret) = app.client("svc", "read write", &[API]).await;
    let http = oauth2::reqwest::Client::new();
    let client = oauth2_client(&app, &id, &secret, AuthType::BasicAuth)
        .set_introspection_url(IntrospectionUrl::new(format!("{}/introspect", app.address)).expect("url"));
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("write".into()))
        .request_async(&http)
        .await
        .expect("token issued");
    let access = AccessToken::new(token.access_token().secret().clone());

    let info = client
        .introspect(&access)
        .request_async(&http)
        .await
        .expect("introspection answers");
    assert!(info.active());
    assert_eq!(info.client_id().map(|c| c.as_str()), Some("svc"));
    assert_eq!(
        info.scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["write".to_owned()])
    );
    assert_eq!(info.aud(), Some(&vec![API.to_owned()]));
    assert_eq!(info.iss(), Some(app.settings.issuer.as_str()));

    // The oauth2 crate refuses a revocation URL that is not https, so the revoke is plain HTTP.
    let r = app
        .post_form(
            "/revoke",
            Some(&crate::helpers::basic(&id, &secret)),
            &[("token", access.secret())],
        )
        .await;
    assert_eq!(r.status, 200);
    let info = client
        .introspect(&access)
        .request_async(&http)
        .await
        .expect("introspection answers");
    assert!(!info.active(), "a revoked token is inactive");
    assert!(
        info.client_id().is_none() && info.scopes().is_none(),
        "an inactive answer says nothing more"
    );
}
