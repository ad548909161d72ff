//! OpenID Connect RP-Initiated Logout 1.0: `GET /logout` with a valid
//! `id_token_hint` naming the signed-in user (§2: the hint's `sub` is the
//! End-User's) and a registered `post_logout_redirect_uri` signs out and
//! returns to the client; otherwise the user confirms with a POST
//! (CSRF-checked). An ID token of someone else, an old one picked up anywhere,
//! must not sign this browser's user out behind their back (§6). Either way the
//! session ends in the database, so a copy of the cookie is dead too.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::pages::{LogoutPage, SignedOutPage};
use super::{
    authorize_error, csrf_ok, csrf_refused, csrf_token, current_user, field, html, page_form, see_other, sign_out,
};
use crate::domain::ClientId;
use crate::startup::AppState;
use crate::storage::clients;
use crate::tokens::id_token;

#[derive(serde::Deserialize)]
pub struct LogoutQuery {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

pub async fn get_logout(state: web::Data<AppState>, q: web::Query<LogoutQuery>, session: Session) -> HttpResponse {
    let keys = state.keys.current();
    let hint = q
        .id_token_hint
        .as_deref()
        .and_then(|t| id_token::read_hint(&keys, &state.settings.issuer, t));
    if let (Some((sub, aud)), Some(uri)) = (hint, q.post_logout_redirect_uri.as_deref()) {
        let signed_in = match current_user(&state, &session).await {
            Ok(u) => u,
            Err(e) => return authorize_error(e),
        };
        // Nobody signed in: nothing to protect. Someone else signed in: confirm.
        let same_user = signed_in.is_none_or(|(u, _)| u.id.as_str() == sub);
        if let (true, Ok(cid)) = (same_user, ClientId::parse(&aud)) {
            let client = state.db.run(move |c| clients::get(c, &cid)).await.ok().flatten();
            if client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri)) {
                if let Err(e) = sign_out(&state, &session).await {
                    return not_signed_out(e);
                }
                let target = match &q.state {
                    Some(s) => crate::authorize::redirect_url(uri, &state.settings.issuer, &[("state", Some(s))]),
                    None => uri.to_owned(),
                };
                return see_other(&target);
            }
        }
    }
    let csrf = csrf_token(&session);
    html(StatusCode::OK, &LogoutPage { csrf: &csrf })
}

pub async fn post_logout(state: web::Data<AppState>, session: Session, body: web::Bytes) -> HttpResponse {
    let form = match page_form(&body) {
        Ok(f) => f,
        Err(res) => return res,
    };
    if !csrf_ok(&session, field(&form, "csrf")) {
        return csrf_refused();
    }
    if let Err(e) = sign_out(&state, &session).await {
        return not_signed_out(e);
    }
    html(StatusCode::OK, &SignedOutPage)
}

/// The session could not be ended in the database: saying "signed out" while
/// a copy of the cookie still works would be false.
fn not_signed_out(e: crate::storage::StorageError) -> HttpResponse {
    tracing::error!(error = %e, "could not end a session");
    super::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Not signed out",
        "Deputy cannot sign you out right now. Try again in a moment.",
    )
}
