//! `POST /revoke` (RFC 7009 §2).

use actix_web::{web, HttpRequest, HttpResponse};

use super::{authorization_header, read_form};
use crate::client_auth::Credentials;
use crate::clock;
use crate::domain::AuthMethod;
use crate::error::OAuthError;
use crate::revocation::request::revoke;
use crate::startup::AppState;

pub async fn post_revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = read_form(&req, payload).await?;
    if let Some(name) = form.first_repeated() {
        return Err(OAuthError::InvalidRequest(format!(
            "parameter {name} appears more than once"
        )));
    }
    let creds = Credentials::extract(authorization_header(&req)?, &form)?;
    if creds.method() == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "revocation requires client authentication",
            false,
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::InvalidRequest("token is missing".into()))?;
    let now = clock::now();
    let caller = state.client_auth.authenticate(creds, now).await?;
    let access_until = now + state.settings.tokens.max_access_token_ttl;
    revoke(
        &caller,
        token,
        &state.keys,
        &state.validator,
        &state.revocations,
        access_until,
        now,
    )
    .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish())
}
