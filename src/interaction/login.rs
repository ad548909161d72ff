//! `GET|POST /login`: username and password, argon2id-verified off the async
//! threads; unknown users cost the same as known ones; repeated attempts per
//! (account, address) and per address are slowed, then refused for a while. Not
//! per account alone: then anyone, from anywhere, could lock a person out by
//! failing on purpose with their username.

use std::time::Duration;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::pages::LoginPage;
use super::{csrf_ok, csrf_refused, csrf_token, field, html, page_form, see_other, sign_in};
use crate::clock;
use crate::startup::AppState;
use crate::storage::users::{self, SignIn};

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    request: Option<String>,
}

pub async fn get_login(state: web::Data<AppState>, q: web::Query<LoginQuery>, session: Session) -> HttpResponse {
    let csrf = csrf_token(&session);
    let (client_name, hint) = request_context(&state, q.request.as_deref()).await;
    html(
        StatusCode::OK,
        &LoginPage {
            csrf: &csrf,
            request: q.request.as_deref(),
            client_name: client_name.as_deref(),
            username: hint.as_deref().unwrap_or_default(),
            error: None,
        },
    )
}

/// The client's name and the login hint of a pending request, for the page.
async fn request_context(state: &AppState, request: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(id) = request else { return (None, None) };
    match crate::authorize::load(&state.db, id, clock::now()).await {
        Ok(p) => (Some(p.client.name.clone()), p.row.login_hint.clone()),
        Err(_) => (None, None),
    }
}

pub async fn post_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: web::Bytes,
) -> HttpResponse {
    let form = match page_form(&body) {
        Ok(f) => f,
        Err(res) => return res,
    };
    if !csrf_ok(&session, field(&form, "csrf")) {
        return csrf_refused();
    }
    let request = field(&form, "request").filter(|r| !r.is_empty());
    let username = field(&form, "username").unwrap_or_default().trim().to_owned();
    let password = field(&form, "password").unwrap_or_default().to_owned();
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let user_agent: String = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let (client_name, _) = request_context(&state, request).await;
    let csrf = csrf_token(&session);
    let page = |status: StatusCode, error: &str| {
        html(
            status,
            &LoginPage {
                csrf: &csrf,
                request,
                client_name: client_name.as_deref(),
                username: &username,
                error: Some(error),
            },
        )
    };
    if username.is_empty() || username.len() > 64 || password.is_empty() || password.len() > 1024 {
        return page(StatusCode::BAD_REQUEST, "Enter your username and password.");
    }
    if !state.login_limits.allow(&username, &ip) {
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts. Wait a minute, then try again.",
        );
    }
    let lookup = username.clone();
    let user = match state.db.run(move |c| users::by_username(c, &lookup)).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Deputy cannot sign you in right now. Try again shortly.",
            );
        }
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.login_limits.dummy_hash.clone());
    // On the bounded argon2 pool, like client secrets (STANDARDS rule 11).
    // A double-clicked sign-in shares one verification.
    let party = format!("user:{}", username.to_lowercase());
    let ok = match state
        .argon2
        .verify_shared(&party, &password, &hash, || Ok::<(), ()>(()))
        .await
    {
        Ok(Ok(ok)) => ok,
        _ => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Deputy is busy right now. Try again in a moment.",
            )
        }
    };
    let now = clock::now();
    let verified = match user {
        Some(u) if ok => Some(u),
        _ => None,
    };
    let record = SignIn {
        id: crate::tokens::random_id(),
        user_id: verified.as_ref().map(|u| u.id.as_str().to_owned()),
        username: username.clone(),
        succeeded: verified.as_ref().is_some_and(|u| !u.disabled),
        ip: ip.clone(),
        user_agent: user_agent.clone(),
        at: now,
    };
    if let Err(e) = state.db.run(move |c| users::record_sign_in(c, &record)).await {
        tracing::warn!(error = %e, "could not record a sign-in");
    }
    match verified {
        None => {
            // Slow down guessing; the limiter refuses beyond that.
            tokio::time::sleep(Duration::from_millis(300)).await;
            page(StatusCode::UNAUTHORIZED, "Wrong username or password.")
        }
        Some(u) if u.disabled => page(StatusCode::FORBIDDEN, "This account is disabled."),
        Some(u) => {
            if let Err(e) = sign_in(&state, &session, &u, now, ip, user_agent).await {
                tracing::error!(error = %e, "could not record a session");
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Deputy cannot sign you in right now. Try again shortly.",
                );
            }
            tracing::info!(user_id = %u.id, "user signed in");
            match request {
                Some(r) => see_other(&format!("/authorize/continue?request={}", urlencode(r))),
                None => see_other("/account"),
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Sign-in attempts allowed per minute, per (username, client address) and per
/// client address.
pub struct LoginLimits {
    by_user_and_address: governor::DefaultKeyedRateLimiter<String>,
    by_ip: governor::DefaultKeyedRateLimiter<String>,
    /// Verified against for unknown usernames, so timing does not tell.
    pub dummy_hash: String,
}

impl LoginLimits {
    pub fn new(per_user_and_ip_per_minute: u32, per_ip_per_minute: u32) -> anyhow::Result<LoginLimits> {
        use governor::{Quota, RateLimiter};
        use std::num::NonZeroU32;
        let q = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Ok(LoginLimits {
            by_user_and_address: RateLimiter::keyed(q(per_user_and_ip_per_minute)),
            by_ip: RateLimiter::keyed(q(per_ip_per_minute)),
            dummy_hash: crate::client_auth::DUMMY_PHC.to_owned(),
        })
    }

    pub fn allow(&self, username: &str, ip: &str) -> bool {
        let key = format!("{}\u{0}{ip}", username.to_lowercase());
        let user_ok = self.by_user_and_address.check_key(&key).is_ok();
        let ip_ok = self.by_ip.check_key(&ip.to_owned()).is_ok();
        user_ok && ip_ok
    }

    pub fn housekeeping(&self) {
        self.by_user_and_address.retain_recent();
        self.by_ip.retain_recent();
    }
}
