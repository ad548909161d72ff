//! `GET /authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) and
//! `GET /authorize/continue` (back from sign-in).

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{authorize_error, current_user, see_other};
use crate::authorize::{self, AuthorizeError, Next, Pending};
use crate::clock;
use crate::form::Form;
use crate::startup::AppState;

pub async fn get_authorize(state: web::Data<AppState>, req: HttpRequest, session: Session) -> HttpResponse {
    start(&state, &req, &session, req.query_string().as_bytes()).await
}

/// OIDC Core §3.1.2.1: the authorization endpoint accepts POST (form-encoded) as well.
pub async fn post_authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
) -> HttpResponse {
    if body.len() > 16 * 1024 {
        return authorize_error(AuthorizeError::Page("The request is too large.".into()));
    }
    start(&state, &req, &session, &body).await
}

async fn start(state: &AppState, req: &HttpRequest, session: &Session, params: &[u8]) -> HttpResponse {
    // Every valid request is stored for ten minutes: bound what one address can make us hold.
    if let Some(ip) = req.peer_addr().map(|a| a.ip()) {
        if state.authorize_limits.check_key(&ip).is_err() {
            return super::error_page(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in requests",
                "Too many sign-in requests came from your network. Wait a minute, then try again.",
            );
        }
    }
    let now = clock::now();
    let form = match Form::parse(params) {
        Ok(f) => f,
        Err(e) => return authorize_error(AuthorizeError::Page(format!("The request is malformed: {e}."))),
    };
    let row = match authorize::start(&state.db, &state.settings.issuer, &form, now).await {
        Ok(r) => r,
        Err(e) => return authorize_error(e),
    };
    proceed(state, session, &row.request_id, now).await
}

#[derive(serde::Deserialize)]
pub struct Continue {
    request: String,
}

pub async fn get_continue(state: web::Data<AppState>, q: web::Query<Continue>, session: Session) -> HttpResponse {
    proceed(&state, &session, &q.request, clock::now()).await
}

/// Sign-in if needed, then consent if needed, then the code.
async fn proceed(state: &AppState, session: &Session, request_id: &str, now: i64) -> HttpResponse {
    let issuer = &state.settings.issuer;
    let p: Pending = match authorize::load(&state.db, request_id, now).await {
        Ok(p) => p,
        Err(e) => return authorize_error(e),
    };
    let signed_in = match current_user(state, session).await {
        Ok(u) => u,
        Err(e) => return authorize_error(e),
    };
    let auth_time = signed_in.as_ref().map(|(_, t)| *t);
    if p.needs_login(auth_time, now) {
        if p.prompt.none {
            return authorize_error(p.error(issuer, "login_required", "the user is not signed in"));
        }
        return see_other(&format!("/login?request={}", p.row.request_id));
    }
    let Some((user, auth_time)) = signed_in else {
        return see_other(&format!("/login?request={}", p.row.request_id));
    };
    match authorize::after_login(&state.db, issuer, &state.policy, &p, &user, auth_time, now).await {
        Ok(Next::Redirect(url)) => see_other(&url),
        Ok(Next::Denied { url, verdict }) => {
            state
                .audit
                .record(crate::storage::audit::AuditEvent {
                    event: "consent".into(),
                    decision: "denied".into(),
                    reason: Some(verdict.explain()),
                    agent_id: p.agent.as_ref().map(|a| a.id.clone()),
                    user_id: Some(user.id.to_string()),
                    client_id: Some(p.client.id.to_string()),
                    scope: Some(p.scope.to_string()),
                    audience: p.row.resource.clone(),
                    authorization_details: p.row.authorization_details.clone(),
                    policy_ids: Some(serde_json::Value::from(verdict.policy_ids.clone()).to_string()),
                    policy_version: Some(verdict.version),
                    ..Default::default()
                })
                .await;
            see_other(&url)
        }
        Ok(Next::Consent) => see_other(&format!("/consent?request={}", p.row.request_id)),
        Err(e) => authorize_error(e),
    }
}
