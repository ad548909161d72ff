//! The agent registry and agent kill switches.

use diesel::prelude::*;

use super::kill_switches::{self, Kind};
use super::revocation_log::{self, Entry, Logged};
use super::schema::{agent_revocations, agents};
use super::{DbConnection, StorageError};
use crate::domain::{Agent, AgentStatus, ClientId, ResourceUri, Scope};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = agents, treat_none_as_null = true)]
struct AgentRow {
    agent_id: String,
    client_id: String,
    name: String,
    description: String,
    publisher: String,
    homepage: Option<String>,
    status: String,
    jwks: Option<String>,
    allowed_scopes: String,
    allowed_audiences: String,
    max_token_ttl: i64,
    max_delegation_depth: i64,
    may_delegate_to: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<AgentRow> for Agent {
    type Error = StorageError;
    fn try_from(r: AgentRow) -> Result<Agent, StorageError> {
        let corrupt = |w: &str| StorageError::Corrupt(format!("agent row: {w}"));
        let audiences: Vec<String> = serde_json::from_str(&r.allowed_audiences).map_err(|_| corrupt("audiences"))?;
        Ok(Agent {
            id: r.agent_id,
            client_id: ClientId::parse(&r.client_id).map_err(|_| corrupt("client_id"))?,
            name: r.name,
            description: r.description,
            publisher: r.publisher,
            homepage: r.homepage,
            status: if r.status == "active" {
                AgentStatus::Active
            } else {
                AgentStatus::Suspended
            },
            jwks: r
                .jwks
                .map(|j| serde_json::from_str(&j).map_err(|_| corrupt("jwks")))
                .transpose()?,
            allowed_scopes: Scope::parse(&r.allowed_scopes).map_err(|_| corrupt("scopes"))?,
            allowed_audiences: audiences
                .iter()
                .map(|a| ResourceUri::parse(a).map_err(|_| corrupt("audience")))
                .collect::<Result<_, _>>()?,
            max_token_ttl: r.max_token_ttl,
            max_delegation_depth: r.max_delegation_depth,
            may_delegate_to: serde_json::from_str(&r.may_delegate_to).map_err(|_| corrupt("may_delegate_to"))?,
            created_at: r.created_at,
        })
    }
}

impl AgentRow {
    fn from(a: &Agent, now: i64) -> AgentRow {
        let auds: Vec<&str> = a.allowed_audiences.iter().map(|r| r.as_str()).collect();
        AgentRow {
            agent_id: a.id.clone(),
            client_id: a.client_id.as_str().to_owned(),
            name: a.name.clone(),
            description: a.description.clone(),
            publisher: a.publisher.clone(),
            homepage: a.homepage.clone(),
            status: a.status.as_str().to_owned(),
            jwks: a.jwks.as_ref().map(|j| j.to_string()),
            allowed_scopes: a.allowed_scopes.to_string(),
            allowed_audiences: serde_json::Value::from(auds).to_string(),
            max_token_ttl: a.max_token_ttl,
            max_delegation_depth: a.max_delegation_depth,
            may_delegate_to: serde_json::Value::from(a.may_delegate_to.clone()).to_string(),
            created_at: a.created_at,
            updated_at: now,
        }
    }
}

pub fn get(conn: &mut DbConnection, id: &str) -> Result<Option<Agent>, StorageError> {
    agents::table
        .find(id)
        .select(AgentRow::as_select())
        .first(conn)
        .optional()?
        .map(Agent::try_from)
        .transpose()
}

pub fn by_client(conn: &mut DbConnection, client: &ClientId) -> Result<Option<Agent>, StorageError> {
    agents::table
        .filter(agents::client_id.eq(client.as_str()))
        .select(AgentRow::as_select())
        .first(conn)
        .optional()?
        .map(Agent::try_from)
        .transpose()
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Agent>, StorageError> {
    agents::table
        .order(agents::agent_id)
        .select(AgentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Agent::try_from)
        .collect()
}

pub fn insert(conn: &mut DbConnection, a: &Agent, now: i64) -> Result<(), StorageError> {
    diesel::insert_into(agents::table)
        .values(AgentRow::from(a, now))
        .execute(conn)?;
    Ok(())
}

pub fn update(conn: &mut DbConnection, a: &Agent, now: i64) -> Result<bool, StorageError> {
    let mut row = AgentRow::from(a, now);
    let created: Option<i64> = agents::table
        .find(&a.id)
        .select(agents::created_at)
        .first(conn)
        .optional()?;
    let Some(created) = created else { return Ok(false) };
    row.created_at = created;
    Ok(diesel::update(agents::table.find(&a.id)).set(row).execute(conn)? == 1)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    Ok(diesel::delete(agents::table.find(id)).execute(conn)? == 1)
}

/// An agent's kill-switch time while it is suspended: every token naming it,
/// whenever issued, is revoked, and none can be issued.
pub const SUSPENDED: i64 = i64::MAX;

/// An agent's kill switch as stored: tokens naming the agent issued at or
/// before `before` are revoked. `generation` grows with every change, so that
/// a copy made from an older read never overwrites a newer change in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSwitch {
    pub before: i64,
    pub generation: i64,
}

/// What [`set_status`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    UnknownAgent,
    /// Nothing to propagate (resuming an agent that was never suspended).
    Unchanged,
    /// The new kill switch, logged for Redis: [`SUSPENDED`], or the resume time
    /// (tokens issued before it, while or before it was suspended, stay revoked).
    KillSwitch(KillSwitch, Vec<Entry>),
}

/// Sets the status and the kill switch with it, in one transaction.
pub fn set_status(
    conn: &mut DbConnection,
    id: &str,
    status: AgentStatus,
    now: i64,
) -> Result<StatusChange, StorageError> {
    conn.transaction(|conn| {
        let n = diesel::update(agents::table.find(id))
            .set((agents::status.eq(status.as_str()), agents::updated_at.eq(now)))
            .execute(conn)?;
        if n == 0 {
            return Ok(StatusChange::UnknownAgent);
        }
        set_kill_switch(conn, id, status, now, false)
    })
}

/// The kill switch that goes with `status`: [`SUSPENDED`] while suspended (and
/// the refresh tokens that would name the agent are revoked: a resume revives
/// nothing); on resume, the resume time if it was suspended, else what it
/// already was (propagated again). Logged, so that Redis hears of it from any
/// instance; call it inside a transaction. A `fresh` registration starts just before
/// `now`, so that nothing issued to an earlier agent of the same id carries over.
pub fn set_kill_switch(
    conn: &mut DbConnection,
    id: &str,
    status: AgentStatus,
    now: i64,
    fresh: bool,
) -> Result<StatusChange, StorageError> {
    let current: Option<(i64, i64)> = agent_revocations::table
        .find(id)
        .select((agent_revocations::revoked_before, agent_revocations::generation))
        .first(conn)
        .optional()?;
    let before = match (status, current) {
        (AgentStatus::Suspended, _) => SUSPENDED,
        // Not `now`: the new agent's own first tokens may be issued this very second.
        (AgentStatus::Active, _) if fresh => now - 1,
        (AgentStatus::Active, None) => return Ok(StatusChange::Unchanged),
        (AgentStatus::Active, Some((SUSPENDED, _))) => now,
        (AgentStatus::Active, Some((before, _))) => before,
    };
    if status == AgentStatus::Suspended {
        use super::schema::refresh_tokens;
        diesel::update(refresh_tokens::table.filter(refresh_tokens::may_act.eq(id)))
            .set(refresh_tokens::revoked.eq(true))
            .execute(conn)?;
    }
    let generation = current.map_or(1, |(_, g)| g + 1);
    if current.is_some() {
        diesel::update(agent_revocations::table.find(id))
            .set((
                agent_revocations::revoked_before.eq(before),
                agent_revocations::generation.eq(generation),
            ))
            .execute(conn)?;
    } else {
        diesel::insert_into(agent_revocations::table)
            .values((
                agent_revocations::agent_id.eq(id),
                agent_revocations::revoked_before.eq(before),
                agent_revocations::generation.eq(generation),
            ))
            .execute(conn)?;
    }
    let kill_switch = KillSwitch { before, generation };
    let mut changes = vec![Logged::Agent {
        agent_id: id.to_owned(),
        kill_switch,
    }];
    // The agent's own client is switched with it, so that the tokens it got
    // for itself (client_credentials, which name no agent) end too.
    let client: Option<String> = agents::table
        .find(id)
        .select(agents::client_id)
        .first(conn)
        .optional()?;
    if let Some(client) = client {
        let change = match (status, current) {
            (AgentStatus::Suspended, _) => Some(kill_switches::set(conn, Kind::Client, &client, SUSPENDED)?),
            (AgentStatus::Active, Some((SUSPENDED, _))) if !fresh => {
                kill_switches::lift(conn, Kind::Client, &client, now)?
            }
            _ => None,
        };
        changes.extend(change);
    }
    let logged = revocation_log::append(conn, changes, now)?;
    Ok(StatusChange::KillSwitch(kill_switch, logged))
}

/// Every agent's kill switch, by agent id.
pub fn all_revocations(conn: &mut DbConnection) -> Result<Vec<(String, KillSwitch)>, StorageError> {
    let rows: Vec<(String, i64, i64)> = agent_revocations::table
        .select((
            agent_revocations::agent_id,
            agent_revocations::revoked_before,
            agent_revocations::generation,
        ))
        .order(agent_revocations::agent_id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, before, generation)| (id, KillSwitch { before, generation }))
        .collect())
}

/// The kill-switch time of one agent, if it was ever suspended.
pub fn revoked_before_one(conn: &mut DbConnection, id: &str) -> Result<Option<i64>, StorageError> {
    Ok(agent_revocations::table
        .find(id)
        .select(agent_revocations::revoked_before)
        .first(conn)
        .optional()?)
}
