//! `GET|POST /userinfo` (OIDC Core §5.3), bearer token in the header (RFC 6750 §2.1).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::clock;
use crate::error::OAuthError;
use crate::startup::AppState;
use crate::userinfo::userinfo;

pub async fn get_userinfo(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, OAuthError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or(OAuthError::MissingToken)?;
    let body = userinfo(
        token,
        &state.keys,
        &state.validator,
        &state.revocations,
        &state.db,
        clock::now(),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
