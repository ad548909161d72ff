//! The authorization endpoint's logic (RFC 6749 §4.1, RFC 7636, RFC 9207,
//! OIDC Core §3.1.2), kept apart from HTTP: validating a request, deciding
//! whether the user must sign in or consent, and issuing the code.
//!
//! The flow is a small state machine over a stored authorization request:
//! `validated` → (sign-in) → bound to a user → (consent, or an existing grant
//! that covers it) → `completed`, when the code is issued. A request completes
//! once; it expires after ten minutes.

mod pkce;

use std::sync::Arc;

pub use pkce::{hash_code, pkce_matches, valid_verifier};

use std::collections::BTreeSet;

use crate::domain::{
    Agent, AgentStatus, AuthMethod, AuthorizationDetails, Client, ClientId, Grant, GrantStatus, GrantType, ResourceUri,
    Scope, User, UserId,
};
use crate::form::Form;
use crate::policy::{Action, PolicyEngine, PolicyInput, Principal, Target, Verdict};
use crate::storage::interactions::{self, AuthRequestRow, CodeRow};
use crate::storage::{agents, clients, grants, Db, StorageError};
use crate::tokens::random_id;

/// How long a pending request may wait for sign-in and consent.
pub const REQUEST_TTL_SECS: i64 = 600;
/// The longest `state` accepted (bytes of UTF-8), returned exactly as given.
pub const MAX_STATE_BYTES: usize = 8192;
/// Authorization codes live at most 60 s (STANDARDS rule 7; RFC 6749 §4.1.2 says ≤ 10 min).
pub const CODE_TTL_SECS: i64 = 60;

/// Something went wrong with an authorization request.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: tell the user, never redirect (§4.1.2.1).
    Page(String),
    /// Tell the client, by redirect (§4.1.2.1).
    Redirect {
        url: String,
    },
    Storage(StorageError),
}

impl From<StorageError> for AuthorizeError {
    fn from(e: StorageError) -> Self {
        AuthorizeError::Storage(e)
    }
}

/// RFC 8252 §7.3: exact match, except that the port of a loopback IP redirect may vary.
pub fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(r), Ok(g)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    let loopback = |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]"));
    loopback(&r)
        && loopback(&g)
        && r.host_str() == g.host_str()
        && r.path() == g.path()
        && r.query() == g.query()
        && g.fragment().is_none()
}

/// Appends parameters to a redirect URI, keeping its own query, and always `iss` (RFC 9207).
pub fn redirect_url(base: &str, issuer: &str, params: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
                q.append_pair("iss", issuer);
            }
            u.to_string()
        }
        Err(_) => base.to_owned(),
    }
}

fn error_redirect(base: &str, issuer: &str, state: Option<&str>, error: &str, description: &str) -> AuthorizeError {
    AuthorizeError::Redirect {
        url: redirect_url(
            base,
            issuer,
            &[
                ("error", Some(error)),
                // The same charset as at the token endpoint (RFC 6749 §4.1.2.1).
                (
                    "error_description",
                    Some(&crate::error::description_charset(description)),
                ),
                ("state", state),
            ],
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// Validates the query of `GET /authorize` and stores the pending request.
pub async fn start(db: &Db, issuer: &str, form: &Form, now: i64) -> Result<AuthRequestRow, AuthorizeError> {
    if let Some(name) = form.first_repeated() {
        return Err(AuthorizeError::Page(format!(
            "The parameter {name} appears more than once."
        )));
    }
    let raw_id = form
        .get("client_id")
        .ok_or_else(|| AuthorizeError::Page("The request names no client.".into()))?;
    let id = ClientId::parse(raw_id).map_err(|_| AuthorizeError::Page("The client identifier is malformed.".into()))?;
    let lookup = id.clone();
    let client = db
        .run(move |c| clients::get(c, &lookup))
        .await?
        .ok_or_else(|| AuthorizeError::Page("This application is not registered with Deputy.".into()))?;
    let redirect_uri = match form.get("redirect_uri") {
        Some(r) if client.redirect_uris.iter().any(|reg| redirect_matches(reg, r)) => r.to_owned(),
        Some(_) => {
            return Err(AuthorizeError::Page(
                "The application asked to send you to an address it did not register.".into(),
            ))
        }
        None => return Err(AuthorizeError::Page("The request has no redirect_uri.".into())),
    };
    let state = form.get("state");
    let fail = |error: &str, description: &str| error_redirect(&redirect_uri, issuer, state, error, description);

    if form.get("request").is_some() {
        return Err(fail("request_not_supported", "request objects are not supported"));
    }
    if form.get("request_uri").is_some() {
        return Err(fail("request_uri_not_supported", "request_uri is not supported"));
    }
    match form.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
        None => return Err(fail("invalid_request", "response_type is missing")),
    }
    if form.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail("invalid_request", "only response_mode=query is supported"));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    // RFC 7636 and RFC 9700 §2.1.1: PKCE with S256 for every client.
    let challenge = form
        .get("code_challenge")
        .ok_or_else(|| fail("invalid_request", "code_challenge is required (PKCE, S256)"))?;
    if form.get("code_challenge_method") != Some("S256") {
        return Err(fail("invalid_request", "code_challenge_method must be S256"));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)",
        ));
    }
    let scope = match form.get("scope") {
        Some(s) => Scope::parse(s).map_err(|e| fail("invalid_scope", &e))?,
        None => client.scope.clone(),
    };
    if !scope.is_subset(&client.scope) {
        return Err(fail(
            "invalid_scope",
            "the requested scope exceeds what this client is registered for",
        ));
    }
    if scope.contains("offline_access") && !client.allows_grant(GrantType::RefreshToken) {
        return Err(fail(
            "invalid_scope",
            "offline_access needs a client allowed the refresh_token grant",
        ));
    }
    let resource = match form.get("resource") {
        Some(r) => {
            let r = ResourceUri::parse(r).map_err(|e| fail("invalid_target", &e))?;
            if !client.resources.contains(&r) {
                return Err(fail(
                    "invalid_target",
                    "this client may not ask tokens for that resource",
                ));
            }
            Some(r)
        }
        None => None,
    };
    // RFC 9396 §5: the transaction details, validated per type before anything is stored.
    let authorization_details = form
        .get("authorization_details")
        .map(AuthorizationDetails::parse)
        .transpose()
        .map_err(|e| fail("invalid_authorization_details", &e))?;
    parse_prompt(form.get("prompt")).map_err(|e| fail("invalid_request", &e))?;
    let max_age = form
        .get("max_age")
        .map(|m| m.parse::<i64>().ok().filter(|v| *v >= 0))
        .map(|m| m.ok_or_else(|| fail("invalid_request", "max_age must be a non-negative integer")))
        .transpose()?;
    let requested_actor = match form.get("requested_actor") {
        Some(a) => Some(requested_actor(db, &client, a).await?.map_err(|(e, d)| fail(e, &d))?),
        None => None,
    };
    // Clients keep real data in `state` (encoded return URLs, signed blobs): up to
    // 8 KiB, returned byte for byte. nonce and login_hint need less.
    if state.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return Err(fail("invalid_request", "state is limited to 8192 bytes"));
    }
    let too_long = |v: Option<&str>| v.is_some_and(|v| v.len() > 512);
    if too_long(form.get("nonce")) || too_long(form.get("login_hint")) {
        return Err(fail("invalid_request", "nonce and login_hint are limited to 512 bytes"));
    }
    let row = AuthRequestRow {
        request_id: random_id(),
        client_id: client.id.as_str().to_owned(),
        redirect_uri,
        scope: scope.to_string(),
        state: state.map(str::to_owned),
        nonce: form.get("nonce").map(str::to_owned),
        code_challenge: challenge.to_owned(),
        resource: resource.map(|r| r.as_str().to_owned()),
        prompt: form.get("prompt").map(str::to_owned),
        max_age,
        login_hint: form.get("login_hint").map(str::to_owned),
        user_id: None,
        created_at: now,
        expires_at: now + REQUEST_TTL_SECS,
        completed: false,
        requested_actor,
        authorization_details: authorization_details.map(|d| d.to_value().to_string()),
    };
    let stored = row.clone();
    db.run(move |c| interactions::insert_request(c, &stored)).await?;
    Ok(row)
}

/// `requested_actor` (draft-oauth-ai-agents-on-behalf-of-user §4.1): the
/// registered agent the client asks may act with the user's tokens. It must be
/// the client's own agent or one the client's registration lists, and active.
/// The inner error is what to tell the client (error code, description).
async fn requested_actor(
    db: &Db,
    client: &Client,
    id: &str,
) -> Result<Result<String, (&'static str, String)>, StorageError> {
    let (aid, cid) = (id.to_owned(), client.id.clone());
    let (agent, own) = db
        .run(move |c| Ok((agents::get(c, &aid)?, agents::by_client(c, &cid)?)))
        .await?;
    let named = client.agents.iter().any(|a| a == id) || own.is_some_and(|o| o.id == id);
    Ok(match agent {
        Some(a) if named && a.status == AgentStatus::Active => Ok(a.id),
        Some(_) if named => Err(("access_denied", format!("the agent {id} is suspended"))),
        _ => Err((
            "invalid_request",
            "requested_actor is not an agent this client may name".into(),
        )),
    })
}

pub fn parse_prompt(p: Option<&str>) -> Result<Prompt, String> {
    let mut prompt = Prompt::default();
    for v in p.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            other => return Err(format!("prompt value '{other}' is not supported")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err("prompt=none cannot be combined with other values".into());
    }
    Ok(prompt)
}

/// A pending request, loaded and checked for use.
pub struct Pending {
    pub row: AuthRequestRow,
    pub client: Arc<Client>,
    /// The registered agent that would act with the user's tokens, if any: the
    /// one the request names in `requested_actor`, else the client's own agent.
    /// The consent screen says so, and the grant and the tokens name it
    /// (RFC 8693 §4.4 `may_act`).
    pub agent: Option<Agent>,
    /// True when the client itself is that agent's client.
    pub client_is_agent: bool,
    pub scope: Scope,
    pub resource: Option<ResourceUri>,
    /// RFC 9396 details asked for; the user approves or denies each.
    pub details: Option<AuthorizationDetails>,
    pub prompt: Prompt,
}

/// Loads a pending request that may still be acted on.
pub async fn load(db: &Db, request_id: &str, now: i64) -> Result<Pending, AuthorizeError> {
    let id = request_id.to_owned();
    let row = db
        .run(move |c| interactions::get_request(c, &id))
        .await?
        .ok_or_else(|| {
            AuthorizeError::Page("This sign-in request is unknown. Start again from the application.".into())
        })?;
    if row.completed || row.expires_at <= now {
        return Err(AuthorizeError::Page(
            "This sign-in request has expired or was already used. Start again from the application.".into(),
        ));
    }
    let cid = ClientId::parse(&row.client_id).map_err(|_| AuthorizeError::Page("Unknown application.".into()))?;
    let requested = row.requested_actor.clone();
    let (client, own, agent) = db
        .run(move |c| {
            let own = agents::by_client(c, &cid)?;
            let agent = match requested {
                Some(a) => agents::get(c, &a)?,
                None => own.clone(),
            };
            Ok((clients::get(c, &cid)?, own, agent))
        })
        .await?;
    if row.requested_actor.is_some() && agent.is_none() {
        return Err(AuthorizeError::Page(
            "The agent named by this request is no longer registered.".into(),
        ));
    }
    let client_is_agent = matches!((&own, &agent), (Some(o), Some(a)) if o.id == a.id);
    let client = client.ok_or_else(|| AuthorizeError::Page("This application is no longer registered.".into()))?;
    // The client's registration may have changed since the request began.
    if let Some(a) = &row.requested_actor {
        if !client.agents.contains(a) && own.as_ref().is_none_or(|o| &o.id != a) {
            return Err(AuthorizeError::Page(
                "This application may no longer name that agent. Start again from the application.".into(),
            ));
        }
    }
    let corrupt = |_| AuthorizeError::Storage(StorageError::Corrupt("auth request".into()));
    Ok(Pending {
        scope: Scope::parse(&row.scope).map_err(corrupt)?,
        resource: row
            .resource
            .as_deref()
            .map(ResourceUri::parse)
            .transpose()
            .map_err(corrupt)?,
        details: row
            .authorization_details
            .as_deref()
            .map(AuthorizationDetails::parse)
            .transpose()
            .map_err(|_| AuthorizeError::Storage(StorageError::Corrupt("auth request".into())))?,
        prompt: parse_prompt(row.prompt.as_deref()).unwrap_or_default(),
        client: Arc::new(client),
        agent,
        client_is_agent,
        row,
    })
}

impl Pending {
    pub fn error(&self, issuer: &str, error: &str, description: &str) -> AuthorizeError {
        error_redirect(
            &self.row.redirect_uri,
            issuer,
            self.row.state.as_deref(),
            error,
            description,
        )
    }

    /// The agent the user's approval would name, refused while it is suspended.
    fn check_agent(&self, issuer: &str) -> Result<Option<String>, AuthorizeError> {
        match &self.agent {
            Some(a) if a.status != AgentStatus::Active => {
                Err(self.error(issuer, "access_denied", &format!("the agent {} is suspended", a.id)))
            }
            Some(a) => Ok(Some(a.id.clone())),
            None => Ok(None),
        }
    }

    /// Does the user need to (re-)authenticate for this request?
    /// `prompt=login` is satisfied by a sign-in made after the request began.
    pub fn needs_login(&self, auth_time: Option<i64>, now: i64) -> bool {
        match auth_time {
            None => true,
            Some(t) if self.prompt.login && t < self.row.created_at => true,
            Some(t) => self.row.max_age.is_some_and(|m| now - t > m),
        }
    }
}

/// What happens once the user is known.
pub enum Next {
    /// Redirect to the client with this URL (code, or error).
    Redirect(String),
    /// Show the consent screen.
    Consent,
    /// A policy refused the request: redirect with `access_denied` (RFC 6749
    /// §4.1.2.1) naming the policy ids; the caller audits the verdict.
    Denied { url: String, verdict: Verdict },
}

/// Binds the request to the user (once: a request shown to one user cannot be
/// finished by another) and decides: an existing grant that covers the request
/// issues a code at once; otherwise consent is needed.
pub async fn after_login(
    db: &Db,
    issuer: &str,
    policy: &PolicyEngine,
    p: &Pending,
    user: &User,
    auth_time: i64,
    now: i64,
) -> Result<Next, AuthorizeError> {
    if user.disabled {
        return Ok(Next::Redirect(redirect_of(p.error(
            issuer,
            "access_denied",
            "the account is disabled",
        ))));
    }
    let (rid, uid) = (p.row.request_id.clone(), user.id.as_str().to_owned());
    if !db.run(move |c| interactions::bind_request_user(c, &rid, &uid)).await? {
        return Err(AuthorizeError::Page(
            "This sign-in request belongs to another user.".into(),
        ));
    }
    let (uid, cid) = (user.id.clone(), p.client.id.clone());
    let existing = db.run(move |c| grants::active_for(c, &uid, &cid, now)).await?;
    let agent = match p.check_agent(issuer) {
        Ok(a) => a,
        Err(e) => return Ok(Next::Redirect(redirect_of(e))),
    };
    // The organisation's rules decide before the user is asked (or an earlier approval is used).
    let verdict = consent_policy(policy, issuer, p, user, now);
    if !verdict.allowed {
        let url = redirect_of(p.error(issuer, "access_denied", &verdict.explain()));
        return Ok(Next::Denied { url, verdict });
    }
    let covering = existing.into_iter().find(|g| {
        g.covers(&p.scope, p.resource.as_ref(), p.details.as_ref())
            && agent.as_ref().is_none_or(|a| g.agents.contains(a))
    });
    match covering {
        Some(g) if !p.prompt.consent => {
            let url = finish(db, issuer, p, user, &g, auth_time, now).await?;
            Ok(Next::Redirect(url))
        }
        _ if p.prompt.none => Ok(Next::Redirect(redirect_of(p.error(
            issuer,
            "consent_required",
            "the user has not approved this request",
        )))),
        _ => Ok(Next::Consent),
    }
}

/// The `consent` decision point: the agent (or the client) asking, the user,
/// what is asked, for the resource it would reach.
fn consent_policy(policy: &PolicyEngine, issuer: &str, p: &Pending, user: &User, now: i64) -> Verdict {
    let audience = p.resource.as_ref().map_or(issuer, |r| r.as_str());
    let chain: Vec<String> = p.agent.iter().map(|a| a.id.clone()).collect();
    policy.decide(&PolicyInput {
        action: Action::Consent,
        principal: match &p.agent {
            Some(a) => Principal::Agent(a),
            None => Principal::Client(&p.client),
        },
        resource: Target::Resource(audience),
        client: &p.client,
        user: Some(user),
        grant_type: "authorization_code",
        scope: &p.scope,
        audience,
        details: p.details.as_ref(),
        ttl: CODE_TTL_SECS,
        chain: &chain,
        address: None,
        sender_constrained: false,
        now,
    })
}

fn redirect_of(e: AuthorizeError) -> String {
    match e {
        AuthorizeError::Redirect { url } => url,
        _ => String::new(),
    }
}

/// The consent durations a user can choose from, in seconds.
pub const DURATIONS: &[(i64, &str)] = &[
    (3600, "1 hour"),
    (86_400, "1 day"),
    (7 * 86_400, "7 days"),
    (30 * 86_400, "30 days"),
    (90 * 86_400, "90 days"),
];

/// What the user chose on the consent screen.
pub struct Approval {
    /// Must be a subset of what was requested.
    pub scope: Scope,
    /// Seconds; one of [`DURATIONS`].
    pub duration: i64,
    /// Indexes of the requested `authorization_details` entries approved.
    pub details: BTreeSet<usize>,
}

/// The user approved: store the grant, issue the code.
pub async fn approve(
    db: &Db,
    issuer: &str,
    p: &Pending,
    user: &User,
    approval: Approval,
    auth_time: i64,
    now: i64,
) -> Result<String, AuthorizeError> {
    let Approval {
        scope: approved,
        duration,
        details,
    } = approval;
    let asked = p.details.as_ref().map_or(0, |d| d.entries().len());
    if !approved.is_subset(&p.scope)
        || !DURATIONS.iter().any(|(d, _)| *d == duration)
        || details.iter().any(|i| *i >= asked)
    {
        return Err(AuthorizeError::Page(
            "The consent form was altered. Start again from the application.".into(),
        ));
    }
    let agent = p.check_agent(issuer)?;
    let resources = match &p.resource {
        Some(r) => vec![r.clone()],
        None => p.client.resources.clone(),
    };
    let grant = Grant {
        id: random_id(),
        user_id: user.id.clone(),
        client_id: p.client.id.clone(),
        scope: approved,
        resources,
        status: GrantStatus::Active,
        created_at: now,
        expires_at: now + duration,
        last_used_at: None,
        agents: agent.into_iter().collect(),
        // Only the entries the user approved; none approved covers none.
        authorization_details: p.details.as_ref().and_then(|d| d.select(&details)),
    };
    let g = grant.clone();
    db.run(move |c| grants::insert(c, &g)).await?;
    finish(db, issuer, p, user, &grant, auth_time, now).await
}

/// Completes the request once and issues a single-use code for it.
async fn finish(
    db: &Db,
    issuer: &str,
    p: &Pending,
    user: &User,
    grant: &Grant,
    auth_time: i64,
    now: i64,
) -> Result<String, AuthorizeError> {
    // The transaction details asked for, as far as the grant covers them: all
    // of them under an earlier approval, else the entries the user just approved.
    let details = p.details.as_ref().and_then(|asked| match &grant.authorization_details {
        Some(held) if held.covers(asked).is_ok() => Some(asked),
        held => held.as_ref(),
    });
    let code = random_id() + &random_id();
    let row = CodeRow {
        code_hash: hash_code(&code),
        client_id: p.client.id.as_str().to_owned(),
        user_id: user.id.as_str().to_owned(),
        grant_id: grant.id.clone(),
        redirect_uri: p.row.redirect_uri.clone(),
        // What the user approved, never more than what was asked.
        scope: p.scope.intersection(&grant.scope).to_string(),
        resource: p.row.resource.clone(),
        nonce: p.row.nonce.clone(),
        code_challenge: p.row.code_challenge.clone(),
        auth_time,
        expires_at: now + CODE_TTL_SECS,
        used: false,
        access_jti: None,
        refresh_family: None,
        // The grant names this agent (checked above, or it was just approved).
        may_act: p.agent.as_ref().map(|a| a.id.clone()),
        authorization_details: details.map(|d| d.to_value().to_string()),
    };
    let request_id = p.row.request_id.clone();
    let gid = grant.id.clone();
    let first = db
        .run(move |c| {
            use diesel::Connection;
            c.transaction(|c| {
                if !interactions::complete_request(c, &request_id)? {
                    return Ok(false);
                }
                interactions::insert_code(c, &row)?;
                grants::touch(c, &gid, now)?;
                Ok(true)
            })
        })
        .await?;
    if !first {
        return Err(AuthorizeError::Page(
            "This sign-in request was already completed.".into(),
        ));
    }
    Ok(redirect_url(
        &p.row.redirect_uri,
        issuer,
        &[("code", Some(&code)), ("state", p.row.state.as_deref())],
    ))
}

/// For the account page and the token endpoint: the user behind a stored id.
pub async fn user_by_id(db: &Db, id: &str) -> Result<Option<User>, StorageError> {
    let uid = UserId::from_stored(id.to_owned());
    db.run(move |c| crate::storage::users::by_id(c, &uid)).await
}

/// Public clients (auth method `none`) are allowed here only with PKCE, which every request has.
pub fn is_public(client: &Client) -> bool {
    client.auth_method == AuthMethod::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_may_change_port_only() {
        assert!(redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:5173/cb"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "http://127.0.0.1:5173/other"));
        assert!(!redirect_matches("https://app.example/cb", "https://app.example/cb/"));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(!redirect_matches("http://localhost/cb", "http://localhost:8000/cb"));
    }

    #[test]
    fn prompt_none_cannot_be_combined() {
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("select_account")).is_err());
        assert_eq!(
            parse_prompt(Some("login consent")).map(|p| (p.login, p.consent)),
            Ok((true, true))
        );
    }
}
