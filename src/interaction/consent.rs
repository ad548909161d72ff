//! `GET|POST /consent`: what the client asks, in plain words; the user approves
//! a subset for a chosen time, or denies. A consent for another user's request,
//! a stale request or a forged form is refused.

use std::collections::BTreeSet;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::pages::{describe_scope, AgentView, ConsentPage, ScopeLine};
use super::{authorize_error, csrf_ok, csrf_refused, csrf_token, current_user, field, html, page_form, see_other};
use crate::authorize::{self, Approval, AuthorizeError, Pending, DURATIONS};
use crate::clock;
use crate::domain::{AuthMethod, Scope};
use crate::startup::AppState;
use crate::storage::audit::AuditEvent;
use crate::storage::interactions;

#[derive(serde::Deserialize)]
pub struct ConsentQuery {
    request: String,
}

/// The pending request, if the signed-in user may act on it.
async fn load_for_user(
    state: &AppState,
    session: &Session,
    request: &str,
    now: i64,
) -> Result<(Pending, crate::domain::User, i64), HttpResponse> {
    let p = authorize::load(&state.db, request, now)
        .await
        .map_err(authorize_error)?;
    let Some((user, auth_time)) = current_user(state, session).await.map_err(authorize_error)? else {
        return Err(see_other(&format!("/login?request={}", p.row.request_id)));
    };
    if p.row.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(authorize_error(AuthorizeError::Page(
            "This sign-in request belongs to another user, or was not started in this browser.".into(),
        )));
    }
    if p.needs_login(Some(auth_time), now) {
        return Err(see_other(&format!("/login?request={}", p.row.request_id)));
    }
    Ok((p, user, auth_time))
}

pub async fn get_consent(state: web::Data<AppState>, q: web::Query<ConsentQuery>, session: Session) -> HttpResponse {
    let now = clock::now();
    let (p, user, _) = match load_for_user(&state, &session, &q.request, now).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let resources: Vec<String> = match &p.resource {
        Some(r) => vec![r.to_string()],
        None => p.client.resources.iter().map(|r| r.to_string()).collect(),
    };
    let scopes = p
        .scope
        .iter()
        .map(|s| ScopeLine {
            name: s.to_owned(),
            description: describe_scope(s, &resources),
        })
        .collect();
    let csrf = csrf_token(&session);
    let kind = match (p.client_is_agent, p.client.auth_method) {
        (true, _) => "AI agent",
        (false, AuthMethod::None) => "public application",
        (false, _) => "application",
    };
    let agent = p.agent.as_ref().map(|a| AgentView {
        id: a.id.clone(),
        name: a.name.clone(),
        publisher: a.publisher.clone(),
        homepage: a.homepage.clone(),
        description: a.description.clone(),
        scopes: a.allowed_scopes.to_string(),
        audiences: a.allowed_audiences.iter().map(|r| r.to_string()).collect(),
        max_token_ttl: a.max_token_ttl,
        max_delegation_depth: a.max_delegation_depth,
        may_delegate_to: a.may_delegate_to.clone(),
    });
    html(
        StatusCode::OK,
        &ConsentPage {
            agent,
            client_is_agent: p.client_is_agent,
            csrf: &csrf,
            request: &p.row.request_id,
            client_name: &p.client.name,
            client_id: p.client.id.as_str(),
            kind,
            username: &user.username,
            scopes,
            details: p.details.as_ref().map(|d| d.describe()).unwrap_or_default(),
            resources,
            durations: DURATIONS,
        },
    )
}

pub async fn post_consent(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    session: Session,
    body: web::Bytes,
) -> HttpResponse {
    let request_id = crate::endpoints::request_id(&req);
    let form = match page_form(&body) {
        Ok(f) => f,
        Err(res) => return res,
    };
    if !csrf_ok(&session, field(&form, "csrf")) {
        return csrf_refused();
    }
    let now = clock::now();
    let Some(request) = field(&form, "request") else {
        return authorize_error(AuthorizeError::Page("The consent form names no request.".into()));
    };
    let (p, user, auth_time) = match load_for_user(&state, &session, request, now).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let issuer = &state.settings.issuer;
    if field(&form, "action") != Some("approve") {
        let rid = p.row.request_id.clone();
        if let Err(e) = state.db.run(move |c| interactions::complete_request(c, &rid)).await {
            return authorize_error(e.into());
        }
        tracing::info!(user_id = %user.id, client_id = %p.client.id, "consent denied");
        state
            .audit
            .record(AuditEvent {
                request_id: request_id.clone(),
                authorization_details: p.details.as_ref().map(|d| d.to_value().to_string()),
                ..consent_event(&p, &user, "consent_denied", "denied", p.scope.to_string())
            })
            .await;
        return authorize_error(p.error(issuer, "access_denied", "the user denied the request"));
    }
    let chosen: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let approved = match Scope::parse(&chosen.join(" ")) {
        Ok(s) => s,
        Err(_) => return authorize_error(AuthorizeError::Page("The consent form was altered.".into())),
    };
    let duration = field(&form, "duration")
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(-1);
    let Ok(details) = form
        .iter()
        .filter(|(k, _)| k == "detail")
        .map(|(_, v)| v.parse::<usize>())
        .collect::<Result<BTreeSet<usize>, _>>()
    else {
        return authorize_error(AuthorizeError::Page("The consent form was altered.".into()));
    };
    let approved_scope = approved.to_string();
    let approved_details = p.details.as_ref().and_then(|d| d.select(&details));
    let approval = Approval {
        scope: approved,
        duration,
        details,
    };
    match authorize::approve(&state.db, issuer, &p, &user, approval, auth_time, now).await {
        Ok(url) => {
            tracing::info!(user_id = %user.id, client_id = %p.client.id, "consent given");
            state
                .audit
                .record(AuditEvent {
                    request_id: request_id.clone(),
                    authorization_details: approved_details.map(|d| d.to_value().to_string()),
                    ..consent_event(&p, &user, "consent_given", "given", approved_scope)
                })
                .await;
            see_other(&url)
        }
        Err(e) => authorize_error(e),
    }
}

fn consent_event(p: &Pending, user: &crate::domain::User, event: &str, decision: &str, scope: String) -> AuditEvent {
    AuditEvent {
        event: event.into(),
        decision: decision.into(),
        agent_id: p.agent.as_ref().map(|a| a.id.clone()),
        user_id: Some(user.id.to_string()),
        client_id: Some(p.client.id.to_string()),
        scope: Some(scope),
        audience: p.row.resource.clone(),
        ..AuditEvent::default()
    }
}
