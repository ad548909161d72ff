//! A tiny agent that acts for a person, start to finish. Part of the README
//! walkthrough "Try it: an agent acting for you".
//!
//! ```sh
//! cargo run --example agent
//! ```
//!
//! 1. The planner agent asks alice for consent in her browser (authorization
//!    code with PKCE) and redeems the code: alice's token, whose `may_act` names
//!    the planner.
//! 2. It trades that token for a narrow one of its own (RFC 8693 token exchange),
//!    proving who it is with an assertion signed by its key.
//! 3. It reads alice's calendar with it (examples/resource_server.rs).
//! 4. It hands on to the booker sub-agent, which re-exchanges the planner's token
//!    for a narrower one (nested `act`) and reads the calendar too.
//! 5. It waits while you suspend the planner or withdraw alice's consent, then
//!    shows that both agents' tokens are refused.
//!
//! `DEPUTY_URL` names Deputy (default `http://127.0.0.1:8080`); `CALENDAR_URL`
//! the calendar API (default `http://127.0.0.1:9100`, as in examples/demo/world.toml).

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, ES256};
use josekit::jwt::JwtPayload;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

static RESOURCE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("CALENDAR_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9100".into())
        .trim_end_matches('/')
        .to_owned()
});
const CALLBACK_LISTEN: &str = "127.0.0.1:9200";
const REDIRECT_URI: &str = "http://127.0.0.1:9200/callback";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// An agent: the OAuth client it authenticates with, and the key it proves itself with.
/// The secrets and keys are the demo ones from examples/demo/world.toml: never use them elsewhere.
struct Agent {
    id: &'static str,
    client_id: &'static str,
    client_secret: &'static str,
    key: &'static str,
}

const PLANNER: Agent = Agent {
    id: "planner",
    client_id: "planner-client",
    client_secret: "planner-secret-0123456789",
    key: include_str!("demo/planner-key.json"),
};
const BOOKER: Agent = Agent {
    id: "booker",
    client_id: "booker-client",
    client_secret: "booker-secret-0123456789",
    key: include_str!("demo/booker-key.json"),
};

struct Deputy {
    url: String,
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    http: reqwest::Client,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("\nThe agent stopped: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let url = std::env::var("DEPUTY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080".into())
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
    let deputy = discover(&url, http).await?;
    check_resource_server(&deputy.http).await?;
    // Listen for the browser's return before sending anyone anywhere.
    let listener = TcpListener::bind(CALLBACK_LISTEN).with_context(|| {
        format!("cannot listen on {CALLBACK_LISTEN} for the browser's return (is another agent still running?)")
    })?;

    step(1, "The planner asks alice for consent, in her browser.");
    let verifier = random();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random();
    let auth_url = url::Url::parse_with_params(
        &deputy.authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", PLANNER.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid calendar:read calendar:write"),
            ("resource", RESOURCE.as_str()),
            ("state", &state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )?;
    say("Open this address in your browser, sign in as alice (password: correct horse battery)");
    say("and allow what the Trip planner asks:");
    println!("\n    {auth_url}\n");
    say(&format!("Waiting for the browser to come back to {REDIRECT_URI} ..."));
    let issuer = deputy.issuer.clone();
    let code = tokio::task::spawn_blocking(move || wait_for_code(listener, state, issuer)).await??;
    say("The browser came back with an authorization code.");

    step(2, "The planner redeems the code for alice's token.");
    let r = deputy
        .post_token(
            &PLANNER,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await
        .context("redeeming the authorization code")?;
    let user_token = access_token(&r)?;
    let c = claims(&user_token)?;
    say(&format!(
        "alice's token: sub={}, scope={:?}, aud={}, may_act={}, expires in {}.",
        c["sub"],
        c["scope"].as_str().unwrap_or_default(),
        c["aud"],
        c["may_act"],
        expires_in(&c)
    ));
    say("may_act names the agent alice allowed to act for her. The planner keeps this token to itself.");

    step(
        3,
        "Token exchange: the planner trades alice's token for a narrow one of its own.",
    );
    say("It proves who it is with an assertion signed by its key (examples/demo/planner-key.json),");
    say("and asks for less than alice allowed: calendar:read only, for the calendar API only.");
    let r = deputy
        .exchange(
            &PLANNER,
            &user_token,
            &[("scope", "calendar:read"), ("resource", RESOURCE.as_str())],
        )
        .await
        .context("the planner's token exchange")?;
    let planner_token = access_token(&r)?;
    show_claims(&claims(&planner_token)?);

    step(4, "The planner reads alice's calendar with it.");
    let answer = call_calendar(&deputy.http, &planner_token).await?;
    show_answer(&answer);

    step(
        5,
        "The planner hands on to the booker sub-agent, which re-exchanges the planner's token.",
    );
    say("The booker proves itself with its own key; Deputy nests act: booker, acting for planner.");
    let r = deputy
        .exchange(&BOOKER, &planner_token, &[])
        .await
        .context("the booker's token exchange")?;
    let booker_token = access_token(&r)?;
    show_claims(&claims(&booker_token)?);
    let answer = call_calendar(&deputy.http, &booker_token).await?;
    show_answer(&answer);

    step(6, "Cut the agents off.");
    let left = claims(&booker_token)?["exp"].as_i64().unwrap_or_default() - now();
    say("In another terminal, in this directory, suspend the planner (its kill switch):");
    // The CLI must use the server's database; if this shell names it, say so.
    let db = match std::env::var("DEPUTY_DATABASE_URL") {
        Ok(db) => format!("DEPUTY_DATABASE_URL={db} "),
        Err(_) => String::new(),
    };
    println!("\n    {db}cargo run -- agent suspend planner\n");
    say(&format!(
        "or withdraw alice's consent: open {}/account (signed in as alice) and press Revoke",
        deputy.url
    ));
    say("on the Trip planner's approval.");
    say(&format!(
        "Then press Enter here, within {left} s: the tokens expire on their own after that."
    ));
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)
    })
    .await??;

    step(7, "The agents try again.");
    // What the calendar API said about each token: the check that failed, if any.
    let mut failed = Vec::new();
    for (who, token) in [("planner", &planner_token), ("booker", &booker_token)] {
        let (status, body) = call_calendar(&deputy.http, token).await?;
        if status == 200 {
            say(&format!(
                "the {who}'s token still works: the calendar API answered 200."
            ));
            failed.push("none");
        } else {
            let check = body["failed_check"].as_str().unwrap_or("?");
            let why = body["error_description"].as_str().unwrap_or_default();
            say(&format!(
                "the {who}'s token is refused ({status}), failed check {check}: {why}"
            ));
            failed.push(if check == "introspection" {
                "introspection"
            } else {
                "other"
            });
        }
    }
    let again = deputy
        .exchange(
            &PLANNER,
            &user_token,
            &[("scope", "calendar:read"), ("resource", RESOURCE.as_str())],
        )
        .await;
    match again {
        Ok(_) => say("and a new token exchange by the planner still succeeds."),
        Err(e) => say(&format!("and a new token exchange by the planner is refused: {e}")),
    }
    println!();
    match failed.as_slice() {
        ["introspection", "introspection"] => say(
            "Both agents are cut off at once, though their signatures still verify and they have not expired: \
             Deputy told the calendar API they are revoked. That is the point.",
        ),
        ["none", "none"] => {
            say("The tokens still work: suspend the planner or revoke the consent, then run the agent again.")
        }
        _ => say(
            "The tokens were refused for another reason than revocation (see above; expired?): run the agent again.",
        ),
    }
    say("To run it again: cargo run --example agent (after a suspension, first: cargo run -- agent resume planner).");
    Ok(())
}

fn step(n: u32, what: &str) {
    println!("\n== {n}. {what}");
}

fn say(what: &str) {
    println!("   {what}");
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// 32 random bytes, base64url: a PKCE verifier, a state, a jti.
fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Explains a failure to reach a server in words a newcomer can act on.
fn not_answering(e: reqwest::Error, what: &str, url: &str, start: &str) -> anyhow::Error {
    if e.is_connect() || e.is_timeout() {
        anyhow!("{what} is not answering at {url}. Is it running? Start it with: {start}")
    } else {
        anyhow!("{what} at {url}: {e}")
    }
}

/// GET `url`, waiting up to 15 s for a server that is still starting.
async fn get_when_up(http: &reqwest::Client, url: &str, what: &str) -> Result<reqwest::Response, reqwest::Error> {
    let mut attempt = 0;
    loop {
        match http.get(url).send().await {
            Err(e) if e.is_connect() && attempt < 30 => {
                if attempt == 0 {
                    say(&format!("(waiting for {what} to start ...)"));
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

async fn discover(url: &str, http: reqwest::Client) -> anyhow::Result<Deputy> {
    let meta_url = format!("{url}/.well-known/oauth-authorization-server");
    let r = get_when_up(&http, &meta_url, "Deputy")
        .await
        .map_err(|e| not_answering(e, "Deputy", url, "cargo run -- serve"))?;
    if !r.status().is_success() {
        bail!("{meta_url} answered {}: is Deputy really at {url}?", r.status());
    }
    let meta: Value = r.json().await.context("Deputy's metadata is not JSON")?;
    let field = |k: &str| {
        meta[k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("Deputy's metadata has no {k}"))
    };
    Ok(Deputy {
        url: url.to_owned(),
        issuer: field("issuer")?,
        authorization_endpoint: field("authorization_endpoint")?,
        token_endpoint: field("token_endpoint")?,
        http,
    })
}

async fn check_resource_server(http: &reqwest::Client) -> anyhow::Result<()> {
    get_when_up(http, &format!("{}/", *RESOURCE), "the calendar API")
        .await
        .map_err(|e| not_answering(e, "The calendar API", &RESOURCE, "cargo run --example resource_server"))?;
    Ok(())
}

/// Serves the browser's return to the redirect URI: checks `state` and `iss`
/// (RFC 9207), answers a short page, and gives back the code. Each connection
/// gets a thread, so that a browser's idle speculative connection delays nothing.
fn wait_for_code(listener: TcpListener, state: String, issuer: String) -> anyhow::Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (tx, state, issuer) = (tx.clone(), state.clone(), issuer.clone());
            std::thread::spawn(move || {
                if let Some(outcome) = serve_callback(stream, &state, &issuer) {
                    let _ = tx.send(outcome);
                }
            });
        }
    });
    rx.recv()?
}

/// One connection to the callback listener: the outcome, or None if it was not the answer.
fn serve_callback(mut stream: TcpStream, state: &str, issuer: &str) -> Option<anyhow::Result<String>> {
    // None: a speculative connection that sent nothing, or not a GET.
    let target = read_request_target(&mut stream)?;
    let url = url::Url::parse(&format!("http://{CALLBACK_LISTEN}{target}")).ok()?;
    if url.path() != "/callback" {
        respond(&mut stream, "404 Not Found", "Nothing here.");
        return None;
    }
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if param("state").as_deref() != Some(state) {
        respond(
            &mut stream,
            "400 Bad Request",
            "This is not the answer to the agent's request (state).",
        );
        return None;
    }
    if let Some(iss) = param("iss").filter(|iss| iss != issuer) {
        respond(
            &mut stream,
            "400 Bad Request",
            "This answer comes from another server (iss).",
        );
        return Some(Err(anyhow!(
            "the authorization response came from {iss}, not from {issuer}"
        )));
    }
    if let Some(error) = param("error") {
        let description = param("error_description").unwrap_or_default();
        respond(
            &mut stream,
            "200 OK",
            "The agent was not allowed. You can close this tab.",
        );
        return Some(Err(anyhow!("the authorization was refused: {error}: {description}")));
    }
    let Some(code) = param("code") else {
        respond(&mut stream, "400 Bad Request", "No authorization code.");
        return None;
    };
    respond(
        &mut stream,
        "200 OK",
        "The agent got your answer. You can close this tab.",
    );
    Some(Ok(code))
}

/// The target of a `GET` request line, if the connection sends one within 5 s.
fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next()?.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Some(target.to_owned()),
        _ => None,
    }
}

fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Deputy demo agent</title>\
         <body style=\"font-family:sans-serif;margin:3em\"><p>{message}</p></body>"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Deputy {
    /// A token request authenticated with client_secret_basic; the JSON answer, or the OAuth error.
    async fn post_token(&self, agent: &Agent, form: &[(&str, &str)]) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(agent.client_id, Some(agent.client_secret))
            .form(form)
            .send()
            .await
            .map_err(|e| not_answering(e, "Deputy", &self.url, "cargo run -- serve"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let description = body["error_description"].as_str().unwrap_or_default();
            let mut msg = format!(
                "Deputy said {}: {description}",
                body["error"].as_str().unwrap_or("error")
            );
            if description.contains("suspended") {
                msg.push_str(&format!(" (to resume it: cargo run -- agent resume {})", agent.id));
            }
            bail!(msg);
        }
        Ok(body)
    }

    /// RFC 8693 token exchange by `agent`, proving itself with a signed assertion.
    async fn exchange(&self, agent: &Agent, subject: &str, extra: &[(&str, &str)]) -> anyhow::Result<Value> {
        let assertion = self.assertion(agent)?;
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &assertion),
            ("actor_token_type", JWT),
        ];
        form.extend_from_slice(extra);
        self.post_token(agent, &form).await
    }

    /// The actor assertion: iss = sub = the agent, aud = Deputy's issuer, 60 s, a fresh jti,
    /// signed ES256 with the agent's key, whose kid Deputy finds in the agent's registered JWKS.
    fn assertion(&self, agent: &Agent) -> anyhow::Result<String> {
        let key = Jwk::from_bytes(agent.key.as_bytes()).context("reading the agent's key")?;
        let now = now();
        let mut payload = JwtPayload::new();
        for (k, v) in [
            ("iss", json!(agent.id)),
            ("sub", json!(agent.id)),
            ("aud", json!(self.issuer)),
            ("iat", json!(now)),
            ("exp", json!(now + 60)),
            ("jti", json!(random())),
        ] {
            payload.set_claim(k, Some(v))?;
        }
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        if let Some(kid) = key.key_id() {
            header.set_key_id(kid);
        }
        let signer = ES256.signer_from_jwk(&key)?;
        Ok(josekit::jwt::encode_with_signer(&payload, &header, &signer)?)
    }
}

fn access_token(r: &Value) -> anyhow::Result<String> {
    r["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("Deputy's answer has no access_token: {r}"))
}

/// The claims of a JWT, read without checking the signature: the agent only
/// looks; the resource server is the one that verifies.
fn claims(token: &str) -> anyhow::Result<Value> {
    let payload = token.split('.').nth(1).ok_or_else(|| anyhow!("not a JWT"))?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

fn expires_in(c: &Value) -> String {
    format!("{} s", c["exp"].as_i64().unwrap_or_default() - now())
}

fn show_claims(c: &Value) {
    say("Deputy issued a token with:");
    say(&format!(
        "  sub   = {}   (alice's user id: the agent acts for her)",
        c["sub"]
    ));
    say(&format!("  act   = {}   (who acts, current actor outermost)", c["act"]));
    say(&format!("  scope = {}", c["scope"]));
    say(&format!("  aud   = {}   (good for this one API only)", c["aud"]));
    say(&format!("  exp   = {}   (in {})", c["exp"], expires_in(c)));
}

/// GET /calendar with a bearer token: the status and the JSON answer.
async fn call_calendar(http: &reqwest::Client, token: &str) -> anyhow::Result<(u16, Value)> {
    let r = http
        .get(format!("{}/calendar", *RESOURCE))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| not_answering(e, "The calendar API", &RESOURCE, "cargo run --example resource_server"))?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

fn show_answer((status, body): &(u16, Value)) {
    say(&format!("The calendar API answered {status}:"));
    let text = serde_json::to_string_pretty(body).unwrap_or_default();
    for line in text.lines() {
        say(&format!("  {line}"));
    }
}
