//! `GET /account`: the user's approvals (with Revoke), sessions (with Sign
//! out, see [`super::session_list`]) and recent sign-ins.
//! `POST /account/grants/revoke`: withdraws a grant; every token issued under
//! it is inactive on the next check, on every instance.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::pages::{AccountPage, GrantLine, SessionLine, SignInLine};
use super::{
    authorize_error, csrf_token, current_user, error_page, field, format_time, html, see_other, signed_in_form,
};
use crate::clock;
use crate::startup::AppState;
use crate::storage::audit::AuditEvent;
use crate::storage::{clients, grants, sessions, users};

pub async fn get_account(state: web::Data<AppState>, session: Session) -> HttpResponse {
    let now = clock::now();
    let Some((user, _)) = (match current_user(&state, &session).await {
        Ok(u) => u,
        Err(e) => return authorize_error(e),
    }) else {
        return see_other("/login");
    };
    let uid = user.id.clone();
    let current = super::session_hash(&session);
    let loaded = state
        .db
        .run(move |c| {
            let gs = grants::list_active_for_user(c, &uid, now)?;
            let mut lines = Vec::new();
            for g in gs {
                let name = clients::get(c, &g.client_id)?
                    .map(|cl| cl.name)
                    .unwrap_or_else(|| "(deleted application)".into());
                lines.push(GrantLine {
                    id: g.id.clone(),
                    client_name: name,
                    client_id: g.client_id.to_string(),
                    scopes: g.scope.iter().map(str::to_owned).collect(),
                    resources: g.resources.iter().map(|r| r.to_string()).collect(),
                    details: g
                        .authorization_details
                        .as_ref()
                        .map(|d| d.describe())
                        .unwrap_or_default(),
                    since: format_time(g.created_at),
                    until: format_time(g.expires_at),
                    last_used: g.last_used_at.map(format_time).unwrap_or_else(|| "never".into()),
                });
            }
            let activity = super::activity::for_user(c, uid.as_str(), 20)?;
            let sign_ins = users::recent_sign_ins(c, &uid, 10)?
                .into_iter()
                .map(|s| SignInLine {
                    when: format_time(s.at),
                    result: if s.succeeded { "signed in" } else { "refused" },
                    from: s.ip,
                })
                .collect();
            let current = current.as_deref();
            let sessions = sessions::list_active(c, uid.as_str())?
                .into_iter()
                .map(|s| SessionLine {
                    current: current == Some(s.id_hash.as_str()),
                    id: s.id_hash,
                    created: format_time(s.created_at),
                    last_seen: format_time(s.last_seen_at),
                    from: s.ip,
                    user_agent: s.user_agent,
                })
                .collect();
            Ok((lines, sign_ins, activity, sessions))
        })
        .await;
    let (grant_lines, sign_ins, activity, sessions) = match loaded {
        Ok(x) => x,
        Err(e) => return authorize_error(e.into()),
    };
    let csrf = csrf_token(&session);
    html(
        StatusCode::OK,
        &AccountPage {
            activity,
            csrf: &csrf,
            username: &user.username,
            display_name: &user.display_name,
            grants: grant_lines,
            sign_ins,
            sessions,
        },
    )
}

pub async fn post_revoke_grant(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    session: Session,
    body: web::Bytes,
) -> HttpResponse {
    let (form, user) = match signed_in_form(&state, &session, &body).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let gid = field(&form, "grant_id").unwrap_or_default().to_owned();
    let lookup = gid.clone();
    let grant = match state.db.run(move |c| grants::get(c, &lookup)).await {
        Ok(g) => g,
        Err(e) => return authorize_error(e.into()),
    };
    let Some(grant) = grant.filter(|g| g.user_id == user.id) else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "You have no such approval.");
    };
    let now = clock::now();
    // Tokens under a grant never outlive it; keep the mark a little longer for skew.
    let until = grant.expires_at.max(now) + 60;
    match state.revocations.revoke_grant(&gid, now, until).await {
        Ok(_) => {
            tracing::info!(user_id = %user.id, grant_id = %gid, client_id = %grant.client_id, "consent withdrawn");
            state
                .audit
                .record(AuditEvent {
                    event: "consent_withdrawn".into(),
                    decision: "withdrawn".into(),
                    reason: Some("the user withdrew it on the account page".into()),
                    request_id: crate::endpoints::request_id(&req),
                    agent_id: grant.agents.first().cloned(),
                    user_id: Some(user.id.to_string()),
                    client_id: Some(grant.client_id.to_string()),
                    scope: Some(grant.scope.to_string()),
                    grant_id: Some(gid.clone()),
                    ..AuditEvent::default()
                })
                .await;
            see_other("/account")
        }
        Err(e) => {
            tracing::warn!(error = %e, "grant revocation could not be recorded");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not done",
                "Your withdrawal could not be recorded. Try again in a moment.",
            )
        }
    }
}
