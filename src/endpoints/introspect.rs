//! `POST /introspect` (RFC 7662 §2).

use actix_web::{web, HttpRequest, HttpResponse};

use super::{authorization_header, no_store_json, read_form};
use crate::client_auth::Credentials;
use crate::clock;
use crate::domain::AuthMethod;
use crate::error::OAuthError;
use crate::introspection::introspect;
use crate::startup::AppState;

pub async fn post_introspect(
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
    // §2.1: the caller must authenticate; a public client's bare client_id is not enough.
    if creds.method() == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "introspection requires client authentication",
            false,
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::InvalidRequest("token is missing".into()))?;
    let now = clock::now();
    let caller = state.client_auth.authenticate(creds, now).await?;
    let result = introspect(&caller, token, &state.keys, &state.validator, &state.revocations, now).await?;
    Ok(no_store_json(&result))
}
