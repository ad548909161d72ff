//! `POST /revoke` (RFC 7009 §2).

use actix_web::{web, HttpRequest, HttpResponse};

use super::token_request;
use crate::error::OAuthError;
use crate::revocation::request::revoke;
use crate::startup::AppState;
use crate::storage::audit::AuditEvent;

pub async fn post_revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let (caller, token, now) = token_request(&state, &req, payload, "revocation").await?;
    let access_until = now + state.settings.tokens.max_access_token_ttl;
    let revoked = revoke(
        &caller,
        &token,
        &state.keys,
        &state.validator,
        &state.revocations,
        access_until,
        now,
    )
    .await?;
    if let Some(event) = revoked {
        // The revocation already holds; an audit that failed is logged loudly by the writer.
        state
            .audit
            .record(AuditEvent {
                request_id: super::request_id(&req),
                ..event
            })
            .await;
    }
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish())
}
