//! The admin API for policies (JSON):
//! - `GET  /admin/policies` (versions, newest first), `GET /admin/policies/{version}` (its source)
//! - `POST /admin/policies` `{"policies": "<Cedar>", "default": "allow"|"deny", "comment": "…"}`:
//!   a new version, validated against the schema (400 `invalid_policy` with Cedar's diagnostics)
//! - `POST /admin/policies/{version}/activate`, `POST /admin/policies/rollback`
//! - `POST /admin/policies/check`: a hypothetical request's decision and the deciding policy ids
//! - `GET  /admin/policies/schema`: the Cedar schema policies are validated against

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{authorize, error, unavailable};
use crate::clock;
use crate::policy::manage::{self, CheckRequest, PolicyError};
use crate::policy::{schema, set};
use crate::startup::AppState;

/// Largest request body (a policy source is at most [`set::MAX_SOURCE_BYTES`]).
const MAX_BODY: usize = set::MAX_SOURCE_BYTES + 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upload {
    policies: String,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    comment: String,
}

fn refused(e: PolicyError) -> HttpResponse {
    match e {
        PolicyError::Invalid(diagnostics) => HttpResponse::BadRequest()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({
                "error": "invalid_policy",
                "error_description": "the policy set is invalid; nothing was changed (see diagnostics)",
                "diagnostics": diagnostics,
            })),
        PolicyError::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", &m),
        PolicyError::BadRequest(m) => error(StatusCode::BAD_REQUEST, "invalid_request", &m),
        PolicyError::Storage(e) => {
            tracing::warn!(error = %e, "policy storage failed");
            unavailable()
        }
    }
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes (a larger one is refused
/// as soon as it passes the limit, without reading the rest).
async fn json_body<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, HttpResponse> {
    let body = match payload.to_bytes_limited(MAX_BODY).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body could not be read",
            ))
        }
        Err(_) => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is too large",
            ))
        }
    };
    serde_json::from_slice(&body).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be a JSON object with the documented fields",
        )
    })
}

pub async fn get_policies(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Err(res) = authorize(&state, &req).await {
        return res;
    }
    match manage::list(&state.db).await {
        Ok(list) => HttpResponse::Ok().json(list),
        Err(e) => refused(e),
    }
}

pub async fn get_schema(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Err(res) = authorize(&state, &req).await {
        return res;
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(schema::source())
}

pub async fn get_policy(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(res) = authorize(&state, &req).await {
        return res;
    }
    let version = match path.as_str() {
        "active" => None,
        v => match v.parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => return error(StatusCode::NOT_FOUND, "not_found", "no such policy version"),
        },
    };
    match manage::show(&state.db, version).await {
        Ok(row) => HttpResponse::Ok().json(row),
        Err(e) => refused(e),
    }
}

pub async fn post_policies(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let who = match authorize(&state, &req).await {
        Ok(w) => w,
        Err(res) => return res,
    };
    let upload: Upload = match json_body(body).await {
        Ok(u) => u,
        Err(res) => return res,
    };
    let default_deny = match upload.default.as_deref() {
        None | Some("allow") => false,
        Some("deny") => true,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "default must be allow or deny",
            )
        }
    };
    match manage::put(
        &state.db,
        upload.policies,
        default_deny,
        upload.comment,
        &who,
        clock::now(),
    )
    .await
    {
        Ok(version) => HttpResponse::Created().json(json!({ "version": version, "active": false })),
        Err(e) => refused(e),
    }
}

pub async fn post_activate(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let who = match authorize(&state, &req).await {
        Ok(w) => w,
        Err(res) => return res,
    };
    let Ok(version) = path.parse::<i64>() else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such policy version");
    };
    match manage::activate(&state.db, Some(&state.policy), version, &who, clock::now()).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "active": version })),
        Err(e) => refused(e),
    }
}

pub async fn post_rollback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let who = match authorize(&state, &req).await {
        Ok(w) => w,
        Err(res) => return res,
    };
    match manage::rollback(&state.db, Some(&state.policy), &who, clock::now()).await {
        Ok(version) => HttpResponse::Ok().json(json!({ "active": version })),
        Err(e) => refused(e),
    }
}

pub async fn post_check(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    if let Err(res) = authorize(&state, &req).await {
        return res;
    }
    let check: CheckRequest = match json_body(body).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    match manage::check(&state.db, &state.policy, check, clock::now()).await {
        Ok(v) => HttpResponse::Ok().json(v.to_json()),
        Err(e) => refused(e),
    }
}
