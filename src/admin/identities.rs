//! The users' and clients' kill switches on the admin API:
//! - `POST /admin/users/{username}/disable`, `POST /admin/users/{username}/enable`
//! - `DELETE /admin/clients/{id}`
//!
//! Each answers once the change is durable (in the database and its revocation
//! log): from then on no instance honours what it revoked. Each is audited
//! with who did it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{authorize, error, unavailable};
use crate::clock;
use crate::domain::ClientId;
use crate::revocation::IdentityChange;
use crate::startup::AppState;

pub async fn post_user_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let who = match authorize(&state, &req).await {
        Ok(w) => w,
        Err(res) => return res,
    };
    let (username, action) = path.into_inner();
    let now = clock::now();
    let result = match action.as_str() {
        "disable" => state.revocations.disable_user(&username, now).await,
        "enable" => state.revocations.enable_user(&username, now).await,
        _ => return error(StatusCode::NOT_FOUND, "not_found", "unknown action"),
    };
    match result {
        Ok(Some(id)) => {
            let change = if action == "disable" {
                IdentityChange::UserDisabled(&id)
            } else {
                IdentityChange::UserEnabled(&id)
            };
            let mut event = change.audit_event(&format!("admin API, {who}"));
            event.request_id = crate::endpoints::request_id(&req);
            state.audit.record(event).await;
            let status = if action == "disable" { "disabled" } else { "active" };
            HttpResponse::Ok().json(json!({ "username": username, "sub": id.as_str(), "status": status }))
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "no such user"),
        Err(_) => unavailable(),
    }
}

pub async fn delete_client(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let who = match authorize(&state, &req).await {
        Ok(w) => w,
        Err(res) => return res,
    };
    let Ok(id) = ClientId::parse(&path.into_inner()) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such client");
    };
    match state.revocations.delete_client(&id, clock::now()).await {
        Ok(true) => {
            let mut event = IdentityChange::ClientDeleted(&id).audit_event(&format!("admin API, {who}"));
            event.request_id = crate::endpoints::request_id(&req);
            state.audit.record(event).await;
            HttpResponse::Ok().json(json!({ "client_id": id.as_str(), "status": "deleted" }))
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "no such client"),
        Err(_) => unavailable(),
    }
}
