//! Thin HTTP handlers: parse, call one capability, build the response.

pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod token;
pub mod userinfo;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::error::OAuthError;
use crate::form::Form;

/// Largest form body accepted at the token, introspection and revocation endpoints.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Reads a bounded `application/x-www-form-urlencoded` body.
pub async fn read_form(req: &HttpRequest, mut payload: web::Payload) -> Result<Form, OAuthError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| OAuthError::InvalidRequest("the request body could not be read".into()))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(OAuthError::InvalidRequest(format!(
                "the body is larger than {MAX_FORM_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Form::parse(&body).map_err(OAuthError::InvalidRequest)
}

pub fn authorization_header(req: &HttpRequest) -> Result<Option<&str>, OAuthError> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| OAuthError::invalid_client("malformed Authorization header", true))
        })
        .transpose()
}

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store_json(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// Any method but POST at a POST-only endpoint.
pub async fn method_not_allowed() -> Result<HttpResponse, OAuthError> {
    Err(OAuthError::MethodNotAllowed)
}

/// The id tracing-actix-web gave this request (also sent back as `X-Request-Id`).
pub fn request_id(req: &HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string())
}

/// The common front of introspection (RFC 7662 §2.1) and revocation (RFC 7009
/// §2.1): a form with one `token`, from a client that authenticates (a public
/// client's bare `client_id` is not enough). Returns the caller, the token and now.
pub async fn token_request(
    state: &crate::startup::AppState,
    req: &HttpRequest,
    payload: web::Payload,
    what: &str,
) -> Result<(std::sync::Arc<crate::domain::Client>, String, i64), OAuthError> {
    let form = read_form(req, payload).await?;
    if let Some(name) = form.first_repeated() {
        return Err(OAuthError::InvalidRequest(format!(
            "parameter {name} appears more than once"
        )));
    }
    let creds = crate::client_auth::Credentials::extract(authorization_header(req)?, &form)?;
    if creds.method() == crate::domain::AuthMethod::None {
        return Err(OAuthError::invalid_client(
            format!("{what} requires client authentication"),
            false,
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::InvalidRequest("token is missing".into()))?
        .to_owned();
    let now = crate::clock::now();
    let source = req.peer_addr().map(|a| a.ip());
    let caller = state.client_auth.authenticate(creds, source, now).await?;
    Ok((caller, token, now))
}
