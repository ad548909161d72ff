//! Registering agents from a declarative description (import file, CLI).

use serde::Deserialize;

use crate::domain::agent::validate_agent_id;
use crate::domain::{Agent, AgentStatus, ClientId, ResourceUri, Scope};
use crate::storage::{agents, clients, DbConnection, StorageError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub agent_id: String,
    /// The OAuth client the agent authenticates with at the token endpoint.
    pub client_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub publisher: String,
    #[serde(default)]
    pub homepage: Option<String>,
    /// JWK Set for the agent's signed actor assertions.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub allowed_scopes: String,
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    #[serde(default = "default_ttl")]
    pub max_token_ttl: i64,
    #[serde(default = "default_depth")]
    pub max_delegation_depth: i64,
    #[serde(default)]
    pub may_delegate_to: Vec<String>,
    #[serde(default)]
    pub suspended: bool,
}

fn default_ttl() -> i64 {
    300
}

fn default_depth() -> i64 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent {agent_id}: {reason}")]
    Invalid { agent_id: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates or updates the agent. `suspended = true` registers an agent that
/// starts suspended, or suspends an active one with its kill switch (logged,
/// so that Redis hears of it); resuming is `deputy agent resume`'s alone.
pub fn upsert(conn: &mut DbConnection, spec: &AgentSpec, now: i64) -> Result<bool, AgentError> {
    let invalid = |reason: String| AgentError::Invalid {
        agent_id: spec.agent_id.clone(),
        reason,
    };
    validate_agent_id(&spec.agent_id).map_err(invalid)?;
    let client_id = ClientId::parse(&spec.client_id).map_err(invalid)?;
    if clients::get(conn, &client_id)?.is_none() {
        return Err(invalid(format!("client {} is not registered", spec.client_id)));
    }
    if let Some(other) = agents::by_client(conn, &client_id)? {
        if other.id != spec.agent_id {
            return Err(invalid(format!(
                "client {} already belongs to agent {}",
                spec.client_id, other.id
            )));
        }
    }
    if !(1..=3600).contains(&spec.max_token_ttl) {
        return Err(invalid("max_token_ttl must be 1 to 3600 seconds".into()));
    }
    if !(1..=10).contains(&spec.max_delegation_depth) {
        return Err(invalid("max_delegation_depth must be 1 to 10".into()));
    }
    if spec.name.trim().is_empty() || spec.publisher.trim().is_empty() {
        return Err(invalid("name and publisher are required".into()));
    }
    if let Some(j) = &spec.jwks {
        if j.get("keys").and_then(|k| k.as_array()).is_none_or(|k| k.is_empty()) {
            return Err(invalid("jwks must be a JWK Set with a non-empty keys array".into()));
        }
    }
    let existing = agents::get(conn, &spec.agent_id)?;
    let agent = Agent {
        id: spec.agent_id.clone(),
        client_id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        publisher: spec.publisher.clone(),
        homepage: spec.homepage.clone(),
        status: match &existing {
            Some(a) => a.status,
            None if spec.suspended => AgentStatus::Suspended,
            None => AgentStatus::Active,
        },
        jwks: spec.jwks.clone(),
        allowed_scopes: Scope::parse(&spec.allowed_scopes).map_err(invalid)?,
        allowed_audiences: spec
            .allowed_audiences
            .iter()
            .map(|a| ResourceUri::parse(a).map_err(invalid))
            .collect::<Result<_, _>>()?,
        max_token_ttl: spec.max_token_ttl,
        max_delegation_depth: spec.max_delegation_depth,
        may_delegate_to: spec.may_delegate_to.clone(),
        created_at: now,
    };
    match existing {
        None => {
            // A new agent's kill switch matches its status and starts now (an earlier
            // agent of the same id may have left one); Redis hears of it from the
            // revocation log, and accepts it because its generation is newer.
            diesel::Connection::transaction(conn, |conn| {
                agents::insert(conn, &agent, now)?;
                agents::set_kill_switch(conn, &agent.id, agent.status, now, true)
            })?;
            Ok(true)
        }
        Some(old) => {
            // `suspended = true` suspends an active agent through the kill
            // switch, as `deputy agent suspend` does; an import never resumes
            // one (`suspended` defaults to false: use `deputy agent resume`).
            let suspend = spec.suspended && old.status == AgentStatus::Active;
            let agent = Agent {
                status: if suspend { AgentStatus::Suspended } else { agent.status },
                ..agent
            };
            diesel::Connection::transaction(conn, |conn| {
                agents::update(conn, &agent, now)?;
                if suspend {
                    agents::set_kill_switch(conn, &agent.id, AgentStatus::Suspended, now, false)?;
                }
                Ok::<_, StorageError>(())
            })?;
            Ok(false)
        }
    }
}
