//! `POST /revoke` (RFC 7009 §2).

use actix_web::{web, HttpRequest, HttpResponse};

use super::token_request;
use crate::error::OAuthError;
use crate::revocation::request::revoke;
use crate::startup::AppState;

pub async fn post_revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let (caller, token, now) = token_request(&state, &req, payload, "revocation").await?;
    let access_until = now + state.settings.tokens.max_access_token_ttl;
    revoke(
        &caller,
        &token,
        &state.keys,
        &state.validator,
        &state.revocations,
        access_until,
        now,
    )
    .await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish())
}
