//! `POST /introspect` (RFC 7662 §2).

use actix_web::{web, HttpRequest, HttpResponse};

use super::{no_store_json, token_request};
use crate::error::OAuthError;
use crate::introspection::introspect;
use crate::startup::AppState;

pub async fn post_introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let (caller, token, now) = token_request(&state, &req, payload, "introspection").await?;
    let result = introspect(&caller, &token, &state.keys, &state.validator, &state.revocations, now).await?;
    Ok(no_store_json(&result))
}
