//! Managing policy sets, for the admin API and the CLI alike: upload (a new
//! version, validated first), activate, roll back, list, show, and check a
//! hypothetical request without issuing anything. Every change is audited.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{set, Action, PolicyEngine, PolicyInput, Principal, Target, Verdict};
use crate::audit;
use crate::domain::{AuthorizationDetails, ClientId, Scope};
use crate::storage::audit::AuditEvent;
use crate::storage::{agents, clients, policies, users, Db, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The source does not parse or violates the schema; nothing changed.
    #[error("the policy set is invalid")]
    Invalid(Vec<String>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn audit_event(event: &str, decision: &str, version: i64, reason: String) -> AuditEvent {
    AuditEvent {
        event: event.into(),
        decision: decision.into(),
        reason: Some(reason),
        policy_version: Some(version),
        ..AuditEvent::default()
    }
}

/// Stores a new version after validating it; the active set is unchanged.
pub async fn put(
    db: &Db,
    source: String,
    default_deny: bool,
    comment: String,
    who: &str,
    now: i64,
) -> Result<i64, PolicyError> {
    let compiled = set::compile(&source, default_deny, 0).map_err(PolicyError::Invalid)?;
    if comment.len() > 512 || comment.chars().any(char::is_control) {
        return Err(PolicyError::BadRequest(
            "comment: at most 512 printable characters".into(),
        ));
    }
    let count = compiled.len();
    let version = db
        .run(move |c| policies::insert(c, &source, default_deny, &comment, now))
        .await?;
    audit::record(
        db,
        audit_event("policy_stored", "stored", version, format!("{who}; {count} policies")),
    )
    .await;
    Ok(version)
}

/// Makes `version` active, here at once (when an engine is given) and on every
/// other instance within [`super::REFRESH_INTERVAL_MS`].
pub async fn activate(
    db: &Db,
    engine: Option<&PolicyEngine>,
    version: i64,
    who: &str,
    now: i64,
) -> Result<(), PolicyError> {
    let row = db
        .run(move |c| policies::get(c, version))
        .await?
        .ok_or_else(|| PolicyError::NotFound(format!("no policy version {version}")))?;
    let compiled = set::compile(&row.source, row.default_deny, version).map_err(PolicyError::Invalid)?;
    if !db.run(move |c| policies::activate(c, version, now)).await? {
        return Err(PolicyError::NotFound(format!("no policy version {version}")));
    }
    if let Some(engine) = engine {
        engine.install(compiled);
    }
    audit::record(
        db,
        audit_event("policy_activated", "activated", version, who.to_owned()),
    )
    .await;
    Ok(())
}

/// Activates the version that was active before the current one.
pub async fn rollback(db: &Db, engine: Option<&PolicyEngine>, who: &str, now: i64) -> Result<i64, PolicyError> {
    let history = db.run(|c| policies::activations(c, 1000)).await?;
    let current = history.first().map(|a| a.version);
    let previous = history
        .iter()
        .map(|a| a.version)
        .find(|v| Some(*v) != current)
        .ok_or_else(|| PolicyError::NotFound("no earlier activation to roll back to".into()))?;
    activate(db, engine, previous, &format!("{who}; rollback"), now).await?;
    Ok(previous)
}

#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub version: i64,
    pub default: &'static str,
    pub comment: String,
    pub created_at: i64,
    pub active: bool,
}

pub async fn list(db: &Db) -> Result<Vec<VersionInfo>, PolicyError> {
    let (rows, active) = db
        .run(|c| Ok((policies::list(c)?, policies::active_version(c)?)))
        .await?;
    Ok(rows
        .into_iter()
        .map(|(version, default_deny, comment, created_at)| VersionInfo {
            version,
            default: if default_deny { "deny" } else { "allow" },
            comment,
            created_at,
            active: Some(version) == active,
        })
        .collect())
}

/// A version's source; the active one when none is named.
pub async fn show(db: &Db, version: Option<i64>) -> Result<policies::PolicyVersion, PolicyError> {
    let v = match version {
        Some(v) => v,
        None => db
            .run(policies::active_version)
            .await?
            .ok_or_else(|| PolicyError::NotFound("no policy set was ever activated".into()))?,
    };
    db.run(move |c| policies::get(c, v))
        .await?
        .ok_or_else(|| PolicyError::NotFound(format!("no policy version {v}")))
}

/// A hypothetical request for `deputy policy check` and `POST /admin/policies/check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// consent, client_credentials, authorization_code, refresh_token, token_exchange, delegate.
    pub action: String,
    /// The acting agent (for delegate: the agent handing on).
    #[serde(default)]
    pub agent: Option<String>,
    /// The client, when no agent acts (else the agent's own client).
    #[serde(default)]
    pub client: Option<String>,
    /// A username.
    #[serde(default)]
    pub user: Option<String>,
    /// The audience (for delegate: the agent handed to).
    pub resource: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub authorization_details: Option<Value>,
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    #[serde(default)]
    pub chain: Vec<String>,
    #[serde(default)]
    pub address: Option<std::net::IpAddr>,
    #[serde(default)]
    pub sender_constrained: bool,
    /// Unix seconds; now when absent.
    #[serde(default)]
    pub at: Option<i64>,
    /// A stored version to check against instead of the active set.
    #[serde(default)]
    pub version: Option<i64>,
}

fn default_ttl() -> i64 {
    300
}

/// Decides a hypothetical request; issues nothing.
pub async fn check(db: &Db, engine: &PolicyEngine, req: CheckRequest, now: i64) -> Result<Verdict, PolicyError> {
    let bad = PolicyError::BadRequest;
    let action = Action::parse(&req.action).ok_or_else(|| bad(format!("unknown action '{}'", req.action)))?;
    let scope = Scope::parse(&req.scope).map_err(bad)?;
    let details = req
        .authorization_details
        .as_ref()
        .map(AuthorizationDetails::from_value)
        .transpose()
        .map_err(bad)?;
    let (agent_id, client_id, username) = (req.agent.clone(), req.client.clone(), req.user.clone());
    let next_id = (action == Action::Delegate).then(|| req.resource.clone());
    let version = req.version;
    let (agent, client, user, next, stored) = db
        .run(move |c| {
            let agent = agent_id.map(|a| agents::get(c, &a)).transpose()?.flatten();
            let cid = match (&agent, client_id) {
                (Some(a), _) => Some(a.client_id.clone()),
                (None, Some(id)) => ClientId::parse(&id).ok(),
                (None, None) => None,
            };
            let client = cid.map(|id| clients::get(c, &id)).transpose()?.flatten();
            let user = username.map(|u| users::by_username(c, &u)).transpose()?.flatten();
            let next = next_id.map(|a| agents::get(c, &a)).transpose()?.flatten();
            let stored = version.map(|v| policies::get(c, v)).transpose()?.flatten();
            Ok((agent, client, user, next, stored))
        })
        .await?;
    if req.agent.is_some() && agent.is_none() {
        return Err(PolicyError::NotFound("no such agent".into()));
    }
    let client = client.ok_or_else(|| PolicyError::NotFound("no such client (name agent or client)".into()))?;
    if req.user.is_some() && user.is_none() {
        return Err(PolicyError::NotFound("no such user".into()));
    }
    let set = match (req.version, stored) {
        (None, _) => engine.current(),
        (Some(_), Some(row)) => {
            std::sync::Arc::new(set::compile(&row.source, row.default_deny, row.version).map_err(PolicyError::Invalid)?)
        }
        (Some(v), None) => return Err(PolicyError::NotFound(format!("no policy version {v}"))),
    };
    let principal = match (&agent, action) {
        (Some(a), _) => Principal::Agent(a),
        (None, Action::TokenExchange | Action::Delegate) => {
            return Err(bad("token_exchange and delegate need an agent".into()))
        }
        (None, _) => Principal::Client(&client),
    };
    let resource = match (action, &next) {
        (Action::Delegate, Some(n)) => Target::Agent(n),
        (Action::Delegate, None) => return Err(PolicyError::NotFound("no such agent to delegate to".into())),
        _ => Target::Resource(&req.resource),
    };
    let at = req.at.unwrap_or(now);
    let input = PolicyInput {
        action,
        principal,
        resource,
        client: &client,
        user: user.as_ref(),
        grant_type: action.as_str(),
        scope: &scope,
        audience: &req.resource,
        details: details.as_ref(),
        ttl: req.ttl,
        chain: &req.chain,
        address: req.address,
        sender_constrained: req.sender_constrained,
        now: at,
    };
    Ok(engine.decide_with(&set, &input, &engine.local_time(at)))
}

/// For `deputy policy put`: what the CLI prints when a set is refused.
pub fn diagnostics(e: &PolicyError) -> String {
    match e {
        PolicyError::Invalid(list) => list.join("\n"),
        other => other.to_string(),
    }
}
