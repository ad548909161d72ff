//! Ending sessions from the account page (CSRF-checked POSTs, 303 after):
//! - `POST /account/sessions/end` (`session`: one of the user's sessions,
//!   as listed): that session ends, wherever its cookie is;
//! - `POST /account/sessions/end-all`: "sign out everywhere", this browser too.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{authorize_error, error_page, field, see_other, signed_in_form};
use crate::clock;
use crate::startup::AppState;
use crate::storage::audit::AuditEvent;
use crate::storage::sessions;

pub async fn post_end_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
) -> HttpResponse {
    end(state, req, session, body, false).await
}

pub async fn post_end_all_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
) -> HttpResponse {
    end(state, req, session, body, true).await
}

async fn end(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
    all: bool,
) -> HttpResponse {
    let (form, user) = match signed_in_form(&state, &session, &body).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let target = field(&form, "session").unwrap_or_default().to_owned();
    let current = super::session_hash(&session);
    let uid = user.id.as_str().to_owned();
    let now = clock::now();
    let ended = if all {
        state.db.run(move |c| sessions::end_all(c, &uid, now)).await
    } else {
        let t = target.clone();
        state
            .db
            .run(move |c| sessions::end(c, &t, &uid, now).map(usize::from))
            .await
    };
    match ended {
        Ok(0) => error_page(StatusCode::NOT_FOUND, "Not found", "You have no such session."),
        Ok(n) => {
            state
                .audit
                .record(AuditEvent {
                    event: "sessions_ended".into(),
                    decision: "ended".into(),
                    reason: Some(if all {
                        format!("the user signed out everywhere ({n} sessions)")
                    } else {
                        "the user ended a session on the account page".into()
                    }),
                    request_id: crate::endpoints::request_id(&req),
                    user_id: Some(user.id.to_string()),
                    ..AuditEvent::default()
                })
                .await;
            if all || current.as_deref() == Some(target.as_str()) {
                session.purge();
                see_other("/login")
            } else {
                see_other("/account")
            }
        }
        Err(e) => authorize_error(e.into()),
    }
}
