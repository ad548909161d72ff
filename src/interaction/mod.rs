//! The browser side: sign-in, consent, account and sign-out pages (askama),
//! with the session (an encrypted, HttpOnly, SameSite=Lax cookie from
//! actix-session carrying a random session id that must name a session still
//! going in the database) and a per-session CSRF token (RFC 6749 §10.12) on
//! every form.
//! The authorization flow's state lives in the database (see `authorize`), the
//! session only says who is signed in and when.

// Handlers return an early `HttpResponse` (a page or a redirect) as their error;
// it is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod account;
mod activity;
pub mod authorize;
pub mod consent;
pub mod login;
pub mod logout;
mod pages;
pub mod session_list;

use actix_session::Session;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::authorize::AuthorizeError;
use crate::domain::{User, UserId};
use crate::startup::AppState;
use crate::storage::{sessions, users};

/// Pages allow their own stylesheet and nothing else; no framing (RFC 9700 §4.16).
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP)))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            HttpResponse::InternalServerError().body("internal error")
        }
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    html(status, &pages::ErrorPage { title, message })
}

/// 303 See Other: after a POST the browser must GET the next page (RFC 9700 §4.12).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

pub fn authorize_error(e: AuthorizeError) -> HttpResponse {
    match e {
        AuthorizeError::Page(msg) => error_page(StatusCode::BAD_REQUEST, "This request cannot continue", &msg),
        AuthorizeError::Redirect { url } => see_other(&url),
        AuthorizeError::Storage(e) => {
            tracing::error!(error = %e, "storage failed during an interaction");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Deputy is unavailable",
                "Deputy cannot complete this right now. Try again in a moment.",
            )
        }
    }
}

/// The paths of the browser pages (the `pages` routes of `startup`): their
/// refusals are HTML pages, not JSON.
pub const PAGE_PATHS: &[&str] = &[
    "/authorize",
    "/authorize/continue",
    "/login",
    "/consent",
    "/account",
    "/account/grants/revoke",
    "/logout",
];

pub fn is_page(path: &str) -> bool {
    PAGE_PATHS.contains(&path)
}

const UID: &str = "uid";
const AUTH_TIME: &str = "auth_time";
const CSRF: &str = "csrf";
/// The random session id; the database holds its SHA-256 (`storage::sessions`).
const SID: &str = "sid";

/// The signed-in user and when they signed in, if the session names a session
/// still going in the database (not logged out, not ended from another
/// session, its user not disabled) and an enabled user. Checked on every page
/// request, not cached: one indexed read (and a write of `last_seen_at` at
/// most once a minute), so that an ended session is dead at once everywhere.
pub async fn current_user(state: &AppState, session: &Session) -> Result<Option<(User, i64)>, AuthorizeError> {
    let (Ok(Some(uid)), Ok(Some(at)), Ok(Some(sid))) = (
        session.get::<String>(UID),
        session.get::<i64>(AUTH_TIME),
        session.get::<String>(SID),
    ) else {
        return Ok(None);
    };
    let hash = crate::authorize::hash_code(&sid);
    let now = crate::clock::now();
    let user = state
        .db
        .run(move |c| match sessions::active_user(c, &hash, now)? {
            Some(owner) if owner == uid => users::by_id(c, &UserId::from_stored(uid)),
            _ => Ok(None),
        })
        .await?;
    match user {
        Some(u) if !u.disabled => Ok(Some((u, at))),
        _ => {
            session.purge();
            Ok(None)
        }
    }
}

/// The stored id (a hash) of this browser's session, to tell it apart on the account page.
pub fn session_hash(session: &Session) -> Option<String> {
    session
        .get::<String>(SID)
        .ok()
        .flatten()
        .map(|sid| crate::authorize::hash_code(&sid))
}

/// Signs `user` in: a new session, in the database and in the cookie.
pub async fn sign_in(
    state: &AppState,
    session: &Session,
    user: &User,
    now: i64,
    ip: String,
    user_agent: String,
) -> Result<(), crate::storage::StorageError> {
    let sid = new_csrf();
    let row = sessions::SessionRow {
        id_hash: crate::authorize::hash_code(&sid),
        user_id: user.id.as_str().to_owned(),
        created_at: now,
        last_seen_at: now,
        ip,
        user_agent,
        ended_at: None,
    };
    state.db.run(move |c| sessions::insert(c, &row)).await?;
    // A new session id on sign-in prevents session fixation.
    session.renew();
    let _ = session.insert(UID, user.id.as_str());
    let _ = session.insert(AUTH_TIME, now);
    let _ = session.insert(SID, sid);
    let _ = session.insert(CSRF, new_csrf());
    Ok(())
}

/// Signs this browser out: its session ends in the database (every copy of
/// the cookie is dead from now on), then the cookie is cleared.
pub async fn sign_out(state: &AppState, session: &Session) -> Result<(), crate::storage::StorageError> {
    if let Some(hash) = session_hash(session) {
        let now = crate::clock::now();
        state.db.run(move |c| sessions::end_by_hash(c, &hash, now)).await?;
    }
    session.purge();
    Ok(())
}

fn new_csrf() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF) {
        return t;
    }
    let t = new_csrf();
    let _ = session.insert(CSRF, &t);
    t
}

/// True if the form's token is this session's (constant-time comparison).
pub fn csrf_ok(session: &Session, given: Option<&str>) -> bool {
    match (session.get::<String>(CSRF), given) {
        (Ok(Some(expected)), Some(given)) => {
            expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    }
}

pub fn csrf_refused() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not sent from this browser session (or it was too old). Go back, reload the page and try again.",
    )
}

/// Multi-valued form fields for pages (checkboxes), bounded in size.
/// An account-page form: parsed, its CSRF token checked, and the signed-in user
/// who sent it; or the page to answer instead (an error, or the sign-in page).
pub async fn signed_in_form(
    state: &AppState,
    session: &Session,
    body: &[u8],
) -> Result<(Vec<(String, String)>, User), HttpResponse> {
    let form = page_form(body)?;
    if !csrf_ok(session, field(&form, "csrf")) {
        return Err(csrf_refused());
    }
    match current_user(state, session).await {
        Ok(Some((user, _))) => Ok((form, user)),
        Ok(None) => Err(see_other("/login")),
        Err(e) => Err(authorize_error(e)),
    }
}

pub fn page_form(body: &[u8]) -> Result<Vec<(String, String)>, HttpResponse> {
    if body.len() > 16 * 1024 {
        return Err(error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            "The form sent was too large.",
        ));
    }
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    // Control characters are refused in every field (STANDARDS rule 10), except
    // the password: it is never stored, logged or shown, only hashed, and a
    // password set from the CLI may hold a tab; refusing it would lock its user out.
    if fields
        .iter()
        .any(|(k, v)| crate::form::has_control(k) || (k != "password" && crate::form::has_control(v)))
    {
        return Err(control_characters_page());
    }
    Ok(fields)
}

/// The page answering a request that holds a control character.
pub fn control_characters_page() -> HttpResponse {
    error_page(
        StatusCode::BAD_REQUEST,
        "This request cannot continue",
        "The request holds a control character, which Deputy does not accept. Go back and try again.",
    )
}

pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub fn format_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .map(|s| s.replace('T', " ").trim_end_matches('Z').to_owned() + " UTC")
        .unwrap_or_else(|| t.to_string())
}
