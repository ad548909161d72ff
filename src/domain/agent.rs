//! Agents: first-class identities, apart from users and plain clients, with
//! their own publisher, credentials, status and ceilings. An agent acts at the
//! token endpoint through one linked OAuth client.

use super::{ClientId, ResourceUri, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    Active,
    Suspended,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub client_id: ClientId,
    pub name: String,
    pub description: String,
    pub publisher: String,
    pub homepage: Option<String>,
    pub status: AgentStatus,
    /// JWK Set for the agent's signed actor assertions.
    pub jwks: Option<serde_json::Value>,
    /// Ceilings: nothing issued to the agent goes beyond these.
    pub allowed_scopes: Scope,
    pub allowed_audiences: Vec<ResourceUri>,
    pub max_token_ttl: i64,
    pub max_delegation_depth: i64,
    /// Agents this agent may hand its delegated tokens on to (sub-agents).
    pub may_delegate_to: Vec<String>,
    pub created_at: i64,
}

/// Agent ids follow client-id rules (and, like them, may not be UUIDs, which
/// are user subjects).
pub fn validate_agent_id(id: &str) -> Result<(), String> {
    ClientId::parse(id)?;
    if uuid::Uuid::parse_str(id).is_ok() {
        return Err("agent_id must not be a UUID: those are user subjects".into());
    }
    if id.contains(' ') {
        return Err("agent_id must not contain spaces".into());
    }
    Ok(())
}
