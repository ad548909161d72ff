//! A tiny calendar API that accepts tokens Deputy issued to agents acting for a
//! person. Part of the README walkthrough "Try it: an agent acting for you".
//!
//! ```sh
//! cargo run --example resource_server     # listens on http://127.0.0.1:9100
//! ```
//!
//! `CALENDAR_URL` moves it (default `http://127.0.0.1:9100`; it listens on that
//! URL's host and port, and that URL is the `aud` its tokens must carry).
//!
//! `GET /calendar` with `Authorization: Bearer <token>`. Each request is checked
//! the way any resource server should check a Deputy access token:
//!
//! 1. offline, with the keys Deputy publishes (`/jwks.json`, fetched once and
//!    cached, fetched again when a token names a key not seen yet): an ES256
//!    signature, `typ` = `at+jwt`, `iss` = Deputy, `aud` = this API, `exp`;
//! 2. online, with RFC 7662 introspection (as the client `calendar-api`), to
//!    learn what a signature cannot tell: whether the token was revoked, its
//!    agent suspended, or the person's consent withdrawn.
//!
//! `DEPUTY_URL` names Deputy (default `http://127.0.0.1:8080`).

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use josekit::jwk::Jwk;
use josekit::jws::ES256;
use serde_json::{json, Map, Value};

/// This API's address, which is also its resource indicator: the `aud` its tokens must carry.
static RESOURCE: LazyLock<String> = LazyLock::new(|| {
    std::env::var("CALENDAR_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9100".into())
        .trim_end_matches('/')
        .to_owned()
});
/// The client this API introspects as (examples/demo/world.toml; a demo secret).
const INTROSPECT_ID: &str = "calendar-api";
const INTROSPECT_SECRET: &str = "calendar-api-secret-0123456789";
/// A token naming an unknown key makes us fetch the JWKS again, at most this often.
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(5);

struct State {
    deputy: String,
    http: reqwest::Client,
    jwks: Mutex<Option<(Vec<Value>, Instant)>>,
}

/// Why a request was refused: an HTTP status, an OAuth error code (RFC 6750 §3.1) and a sentence.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    check: &'static str,
    detail: String,
}

fn refuse(check: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_token",
        check,
        detail: detail.into(),
    }
}

fn unavailable(check: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error: "temporarily_unavailable",
        check,
        detail: detail.into(),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl State {
    /// Deputy's public key with this `kid`, from the cached JWKS or a fresh fetch.
    async fn key(&self, kid: &str) -> Result<Jwk, Refusal> {
        let find = |keys: &[Value]| keys.iter().find(|k| k["kid"] == kid).cloned();
        let cached = self
            .jwks
            .lock()
            .expect("jwks lock")
            .as_ref()
            .map(|(keys, fetched)| (find(keys), fetched.elapsed()));
        match cached {
            Some((Some(k), _)) => return to_jwk(&k),
            Some((None, age)) if age < JWKS_REFETCH_MIN => {
                return Err(refuse("signature", format!("no key {kid:?} in Deputy's JWKS")))
            }
            _ => {}
        }
        let url = format!("{}/jwks.json", self.deputy);
        let set: Value = match self.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => r
                .json()
                .await
                .map_err(|e| unavailable("jwks", format!("{url} did not answer a JWK Set: {e}")))?,
            Ok(r) => return Err(unavailable("jwks", format!("{url} answered {}", r.status()))),
            Err(e) => {
                return Err(unavailable(
                    "jwks",
                    format!("cannot fetch {url} (is Deputy running?): {e}"),
                ))
            }
        };
        let keys = set["keys"].as_array().cloned().unwrap_or_default();
        println!("  fetched Deputy's JWKS: {} key(s)", keys.len());
        let found = find(&keys);
        *self.jwks.lock().expect("jwks lock") = Some((keys, Instant::now()));
        match found {
            Some(k) => to_jwk(&k),
            None => Err(refuse("signature", format!("no key {kid:?} in Deputy's JWKS"))),
        }
    }

    /// Step 1: the signature and the claims, offline.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, Refusal> {
        let header =
            josekit::jwt::decode_header(token).map_err(|e| refuse("format", format!("not a signed JWT: {e}")))?;
        let alg = header.claim("alg").and_then(Value::as_str).unwrap_or_default();
        if alg != "ES256" {
            return Err(refuse("alg", format!("alg {alg:?}: only ES256 is accepted")));
        }
        let kid = header
            .claim("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse("signature", "the token names no key (kid)"))?
            .to_owned();
        let key = self.key(&kid).await?;
        let verifier = ES256
            .verifier_from_jwk(&key)
            .map_err(|e| unavailable("jwks", format!("unusable key {kid:?}: {e}")))?;
        let (payload, header) = josekit::jwt::decode_with_verifier(token, &verifier)
            .map_err(|e| refuse("signature", format!("the signature does not verify: {e}")))?;
        // RFC 9068 §4: an access token says so, so that no other JWT (an ID token,
        // an agent's assertion) is taken for one.
        let typ = header.claim("typ").and_then(Value::as_str).unwrap_or_default();
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(refuse(
                "typ",
                format!("typ is {typ:?}, not at+jwt: not an access token"),
            ));
        }
        let claims = payload.claims_set().clone();
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        if iss != self.deputy {
            return Err(refuse("iss", format!("issued by {iss:?}, not by {}", self.deputy)));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == *RESOURCE,
            Some(Value::Array(a)) => a.iter().any(|a| a.as_str() == Some(RESOURCE.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(refuse(
                "aud",
                format!(
                    "meant for {}, not for {}",
                    claims.get("aud").unwrap_or(&Value::Null),
                    *RESOURCE
                ),
            ));
        }
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp > now() => {}
            Some(exp) => return Err(refuse("exp", format!("expired {} s ago", now() - exp))),
            None => return Err(refuse("exp", "the token has no exp")),
        }
        Ok(claims)
    }

    /// Step 2: ask Deputy whether the token is still active (revocation, kill switch, consent).
    async fn introspect(&self, token: &str) -> Result<(), Refusal> {
        let url = format!("{}/introspect", self.deputy);
        let r = self
            .http
            .post(&url)
            .basic_auth(INTROSPECT_ID, Some(INTROSPECT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|e| unavailable("introspection", format!("cannot reach {url} (is Deputy running?): {e}")))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(unavailable("introspection", format!("{url} answered {status}: {body}")));
        }
        if body["active"] != true {
            return Err(refuse(
                "introspection",
                "Deputy says the token is no longer active: revoked, its agent suspended, or the consent withdrawn",
            ));
        }
        Ok(())
    }
}

fn to_jwk(v: &Value) -> Result<Jwk, Refusal> {
    match v {
        Value::Object(m) => Jwk::from_map(m.clone()).map_err(|e| unavailable("jwks", format!("bad JWK: {e}"))),
        _ => Err(unavailable("jwks", "a JWKS entry is not an object")),
    }
}

/// The agents of an `act` claim, current actor first (RFC 8693 §4.1).
fn acting(act: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = act;
    while let Some(sub) = cur.and_then(|a| a.get("sub")).and_then(Value::as_str) {
        out.push(sub.to_owned());
        cur = cur.and_then(|a| a.get("act"));
    }
    out
}

async fn calendar(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let outcome = answer(&req, &state).await;
    let (status, body, line) = match outcome {
        Ok((body, line)) => (StatusCode::OK, body, line),
        Err(r) => {
            let line = format!("failed check {}: {}", r.check, r.detail);
            let body = json!({ "error": r.error, "failed_check": r.check, "error_description": r.detail });
            (r.status, body, line)
        }
    };
    println!("GET /calendar -> {} {line}", status.as_u16());
    let mut resp = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        resp.insert_header((
            "WWW-Authenticate",
            format!("Bearer error=\"{}\"", body["error"].as_str().unwrap_or("")),
        ));
    }
    resp.json(body)
}

async fn answer(req: &HttpRequest, state: &State) -> Result<(Value, String), Refusal> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Refusal {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_request",
            check: "authorization",
            detail: "send Authorization: Bearer <token>".into(),
        })?;
    let claims = state.verify(token).await?;
    state.introspect(token).await?;
    let scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !scope.split(' ').any(|s| s == "calendar:read") {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            error: "insufficient_scope",
            check: "scope",
            detail: format!("reading the calendar needs calendar:read; the token has {scope:?}"),
        });
    }
    let user = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
    let acting = acting(claims.get("act"));
    let line = format!(
        "user={user} acting={} scope={scope:?}",
        if acting.is_empty() {
            "(no agent)".into()
        } else {
            acting.join(" for ")
        }
    );
    let body = json!({
        "user": user,
        "acting": acting,
        "scope": scope,
        "events": [
            { "when": "Monday 09:30", "what": "Stand-up" },
            { "when": "Thursday 14:00", "what": "Dentist" },
        ],
    });
    Ok((body, line))
}

async fn index() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": "Deputy demo calendar API",
        "resource": *RESOURCE,
        "try": "GET /calendar with Authorization: Bearer <token>",
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = url::Url::parse(&RESOURCE)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .ok_or_else(|| std::io::Error::other(format!("CALENDAR_URL {} is not an http URL", *RESOURCE)))?;
    let deputy = std::env::var("DEPUTY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080".into())
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)?;
    let state = web::Data::new(State {
        deputy: deputy.clone(),
        http,
        jwks: Mutex::new(None),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/", web::get().to(index))
            .route("/calendar", web::get().to(calendar))
    })
    .workers(1)
    .bind(listen.as_str())
    .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen} (already running?): {e}")))?;
    println!(
        "calendar API on {}: GET /calendar with a bearer token; trusting Deputy at {deputy}",
        *RESOURCE
    );
    server.run().await
}
