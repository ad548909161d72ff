//! The admin REST API (JSON). Callers present `Authorization: Bearer <token>`:
//! either the bootstrap `admin_token` from configuration (compared in constant
//! time) or an access token that carries admin authority: Deputy issued it by
//! `client_credentials` to a client acting for itself (`sub` = `client_id`, no
//! `act`, no user grant), for the admin audience `{issuer}/admin` (RFC 8707: the
//! client's registered resources must include it), with the `deputy:admin`
//! scope, and that client is still registered with `deputy:admin`. A user's
//! token, a delegated (exchanged) token or a token for another audience is
//! never an admin token, whatever its scope (RFC 6750 §3.1 errors).
//!
//! - `GET  /admin/agents`, `POST /admin/agents` (register or update, same fields as the import file)
//! - `POST /admin/agents/{id}/suspend` (the kill switch), `POST /admin/agents/{id}/resume`
//! - `POST /admin/grants/{id}/revoke` (withdraw a user's consent)
//! - `POST /admin/users/{username}/disable|enable`, `DELETE /admin/clients/{id}` (see [`identities`])
//! - `GET  /admin/audit?agent=&user=&decision=&since=&until=&after_seq=&limit=`

pub mod identities;
pub mod policies;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::agent_registry::{self, AgentSpec};
use crate::clock;
use crate::revocation::TokenRef;
use crate::startup::AppState;
use crate::storage::audit::{self, AuditEvent, AuditFilter};
use crate::storage::{agents, grants};

pub const ADMIN_SCOPE: &str = "deputy:admin";

/// The audience (RFC 8707 resource) of admin tokens: `{issuer}/admin`.
pub fn admin_audience(issuer: &str) -> String {
    format!("{issuer}/admin")
}

fn error(status: actix_web::http::StatusCode, code: &str, description: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if status == actix_web::http::StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"deputy-admin\""));
    }
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": code, "error_description": crate::error::description_charset(description) }))
}

/// Who the admin caller is, or the response refusing them.
async fn authorize(state: &AppState, req: &HttpRequest) -> Result<String, HttpResponse> {
    use actix_web::http::StatusCode;
    let refuse = || {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "admin credentials are required",
        )
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(refuse)?;
    if let Some(admin) = &state.settings.admin_token {
        if admin.len() == token.len() && bool::from(admin.as_bytes().ct_eq(token.as_bytes())) {
            return Ok("bootstrap admin token".into());
        }
    }
    let now = clock::now();
    let claims = state
        .validator
        .validate(&state.keys, token, now)
        .await
        .map_err(|_| refuse())?;
    if claims.aud != admin_audience(&state.settings.issuer) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "this token is not for the admin API: its audience must be the issuer followed by /admin",
        ));
    }
    let has_scope = |scope: Option<&str>| scope.unwrap_or_default().split(' ').any(|s| s == ADMIN_SCOPE);
    // Admin authority belongs to a client acting for itself, never to a user's
    // token or to a delegation, whatever scope those carry.
    let own_client_token = claims.sub == claims.client_id && claims.act.is_none() && claims.grant_id.is_none();
    if !own_client_token || !has_scope(claims.scope.as_deref()) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the admin API needs a client_credentials token with the deputy:admin scope",
        ));
    }
    let client_id = crate::domain::ClientId::parse(&claims.client_id).map_err(|_| refuse())?;
    match state.client_auth.registration(&client_id).await {
        Ok(Some(c)) if c.scope.contains(ADMIN_SCOPE) => {}
        Ok(_) => {
            return Err(error(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the client is no longer registered with the deputy:admin scope",
            ))
        }
        Err(_) => return Err(unavailable()),
    }
    match state.revocations.is_revoked(&TokenRef::of(&claims)).await {
        Ok(false) => Ok(format!("client {}", claims.client_id)),
        Ok(true) => Err(refuse()),
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "retry shortly",
        )),
    }
}

fn unavailable() -> HttpResponse {
    error(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "retry shortly",
    )
}

fn agent_json(a: &crate::domain::Agent) -> serde_json::Value {
    json!({
        "agent_id": a.id, "client_id": a.client_id.as_str(), "name": a.name, "description": a.description,
        "publisher": a.publisher, "homepage": a.homepage, "status": a.status.as_str(),
        "allowed_scopes": a.allowed_scopes.to_string(),
        "allowed_audiences": a.allowed_audiences.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "max_token_ttl": a.max_token_ttl, "max_delegation_depth": a.max_delegation_depth,
        "may_delegate_to": a.may_delegate_to,
    })
}

pub async fn get_agents(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Err(res) = authorize(&state, &req).await {
        return res;
    }
    match state.db.run(agents::list).await {
        Ok(list) => HttpResponse::Ok().json(list.iter().map(agent_json).collect::<Vec<_>>()),
        Err(_) => unavailable(),
    }
}

pub async fn post_agent(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(res) = authorize(&state, &req).await {
        return res;
    }
    // Control characters are refused at the edge (STANDARDS rule 10), inside JSON
    // strings too (a \u0000 escape decodes to a NUL the database refuses).
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if holds_control_character(&v) {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_request",
                "a string holds a control character, which no field may",
            );
        }
    }
    let spec: AgentSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_request",
                &e.to_string(),
            )
        }
    };
    let now = clock::now();
    // The registry's own verdict travels out of the blocking pool beside storage errors:
    // an invalid agent is the caller's fault (400), a storage failure is not (503).
    let result = state
        .db
        .run(move |c| match agent_registry::upsert(c, &spec, now) {
            Ok(created) => Ok(Ok(created)),
            Err(agent_registry::AgentError::Invalid { agent_id, reason }) => {
                Ok(Err(format!("agent {agent_id}: {reason}")))
            }
            Err(agent_registry::AgentError::Storage(e)) => Err(e),
        })
        .await;
    match result {
        Ok(Ok(created)) => {
            let status = if created { 201 } else { 200 };
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
                .json(json!({ "created": created }))
        }
        Ok(Err(reason)) => error(actix_web::http::StatusCode::BAD_REQUEST, "invalid_request", &reason),
        Err(e) => {
            tracing::warn!(error = %e, "registering an agent failed");
            unavailable()
        }
    }
}

/// True if any string (or object key) in `v` holds a control character.
fn holds_control_character(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => crate::form::has_control(s),
        Value::Array(items) => items.iter().any(holds_control_character),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| crate::form::has_control(k) || holds_control_character(v)),
        _ => false,
    }
}

pub async fn post_agent_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let who = match authorize(&state, &req).await {
        Ok(w) => w,
        Err(res) => return res,
    };
    let (id, action) = path.into_inner();
    let now = clock::now();
    let result = match action.as_str() {
        "suspend" => state.revocations.suspend_agent(&id, now).await,
        "resume" => state.revocations.resume_agent(&id, now).await,
        _ => return error(actix_web::http::StatusCode::NOT_FOUND, "not_found", "unknown action"),
    };
    // Done once durable: every instance honours it from then on (Redis hears of
    // it from the revocation log).
    match result {
        Ok(true) => {
            state
                .audit
                .record(AuditEvent {
                    event: if action == "suspend" {
                        "agent_suspended".into()
                    } else {
                        "agent_resumed".into()
                    },
                    decision: if action == "suspend" {
                        "suspended".into()
                    } else {
                        "resumed".into()
                    },
                    reason: Some(format!("admin API, {who}")),
                    request_id: crate::endpoints::request_id(&req),
                    agent_id: Some(id.clone()),
                    ..AuditEvent::default()
                })
                .await;
            HttpResponse::Ok()
                .json(json!({ "agent_id": id, "status": if action == "suspend" { "suspended" } else { "active" } }))
        }
        Ok(false) => error(actix_web::http::StatusCode::NOT_FOUND, "not_found", "no such agent"),
        Err(_) => unavailable(),
    }
}

pub async fn post_revoke_grant(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let who = match authorize(&state, &req).await {
        Ok(w) => w,
        Err(res) => return res,
    };
    let gid = path.into_inner();
    let lookup = gid.clone();
    let grant = match state.db.run(move |c| grants::get(c, &lookup)).await {
        Ok(Some(g)) => g,
        Ok(None) => return error(actix_web::http::StatusCode::NOT_FOUND, "not_found", "no such grant"),
        Err(_) => return unavailable(),
    };
    let now = clock::now();
    match state
        .revocations
        .revoke_grant(&gid, now, grant.expires_at.max(now) + 60)
        .await
    {
        Ok(_) => {
            state
                .audit
                .record(AuditEvent {
                    event: "consent_withdrawn".into(),
                    decision: "withdrawn".into(),
                    reason: Some(format!("admin API, {who}")),
                    request_id: crate::endpoints::request_id(&req),
                    agent_id: grant.agents.first().cloned(),
                    user_id: Some(grant.user_id.to_string()),
                    client_id: Some(grant.client_id.to_string()),
                    scope: Some(grant.scope.to_string()),
                    grant_id: Some(gid.clone()),
                    ..AuditEvent::default()
                })
                .await;
            HttpResponse::Ok().json(json!({ "grant_id": gid, "status": "revoked" }))
        }
        Err(_) => unavailable(),
    }
}

pub async fn get_audit(state: web::Data<AppState>, req: HttpRequest, q: web::Query<AuditFilter>) -> HttpResponse {
    if let Err(res) = authorize(&state, &req).await {
        return res;
    }
    let filter = q.into_inner();
    match state.db.run(move |c| audit::query(c, &filter)).await {
        Ok(events) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(events),
        Err(_) => unavailable(),
    }
}
