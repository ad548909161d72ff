//! `deputy agent list|show|suspend|resume|delete` (register and update through `deputy import`).

use clap::Subcommand;

use crate::clock;
use crate::config::Settings;
use crate::domain::AgentStatus;
use crate::storage::{agents, Db};

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Register an agent from a TOML file with the fields of an `[[agents]]` entry.
    Register { file: std::path::PathBuf },
    /// Update an agent from such a file (its status is kept: use suspend/resume).
    Update { file: std::path::PathBuf },
    /// List agents.
    List,
    /// Show one agent as JSON.
    Show { agent_id: String },
    /// The kill switch: every live token naming the agent (its `act` chain or `may_act`) turns inactive.
    Suspend { agent_id: String },
    /// Let a suspended agent obtain new tokens again (tokens revoked by the suspension stay revoked).
    Resume { agent_id: String },
    /// Delete an agent (suspend it first to revoke its tokens).
    Delete { agent_id: String },
}

pub fn run(cmd: AgentCommand, db: &Db, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Register { file } | AgentCommand::Update { file } if !file.exists() => {
            anyhow::bail!("{} does not exist", file.display())
        }
        AgentCommand::Register { file } => {
            let spec = read_spec(&file)?;
            anyhow::ensure!(
                db.run_blocking(|c| agents::get(c, &spec.agent_id))?.is_none(),
                "agent {} already exists (use update)",
                spec.agent_id
            );
            upsert(db, &spec)?;
            println!("registered {}", spec.agent_id);
            Ok(())
        }
        AgentCommand::Update { file } => {
            let spec = read_spec(&file)?;
            anyhow::ensure!(
                db.run_blocking(|c| agents::get(c, &spec.agent_id))?.is_some(),
                "no agent {} (use register)",
                spec.agent_id
            );
            upsert(db, &spec)?;
            println!("updated {}", spec.agent_id);
            Ok(())
        }
        AgentCommand::List => {
            for a in db.run_blocking(agents::list)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.status.as_str(),
                    a.client_id,
                    a.publisher,
                    a.name
                );
            }
            Ok(())
        }
        AgentCommand::Show { agent_id } => {
            let a = db
                .run_blocking(|c| agents::get(c, &agent_id))?
                .ok_or_else(|| anyhow::anyhow!("no agent {agent_id}"))?;
            let out = serde_json::json!({
                "agent_id": a.id, "client_id": a.client_id.as_str(), "name": a.name, "description": a.description,
                "publisher": a.publisher, "homepage": a.homepage, "status": a.status.as_str(),
                "allowed_scopes": a.allowed_scopes.to_string(),
                "allowed_audiences": a.allowed_audiences.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "max_token_ttl": a.max_token_ttl, "max_delegation_depth": a.max_delegation_depth,
                "may_delegate_to": a.may_delegate_to, "jwks": a.jwks,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        AgentCommand::Suspend { agent_id } => {
            set_status(db, settings, &agent_id, AgentStatus::Suspended)?;
            println!("suspended {agent_id}: its tokens are revoked, and it gets no new ones until resumed");
            Ok(())
        }
        AgentCommand::Resume { agent_id } => {
            set_status(db, settings, &agent_id, AgentStatus::Active)?;
            println!("resumed {agent_id}: it may act again; the tokens revoked by the suspension stay revoked");
            Ok(())
        }
        AgentCommand::Delete { agent_id } => {
            anyhow::ensure!(
                db.run_blocking(|c| agents::delete(c, &agent_id))?,
                "no agent {agent_id}"
            );
            println!("deleted {agent_id}");
            Ok(())
        }
    }
}

/// Suspends or resumes through the revocation backend (logged for Redis, when
/// configured, so that every instance hears of it), and audits it.
fn set_status(db: &Db, settings: &Settings, agent_id: &str, status: AgentStatus) -> anyhow::Result<()> {
    // The Redis connection manager must be created inside a runtime.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _runtime = rt.enter();
    let revocations = super::revocations(db, settings)?;
    let now = clock::now();
    let (result, event, decision) = match status {
        AgentStatus::Suspended => (
            rt.block_on(revocations.suspend_agent(agent_id, now)),
            "agent_suspended",
            "suspended",
        ),
        AgentStatus::Active => (
            rt.block_on(revocations.resume_agent(agent_id, now)),
            "agent_resumed",
            "resumed",
        ),
    };
    // Done once durable: Redis hears of it from the revocation log, from this
    // command at once if it can reach Redis, or else from any running server.
    anyhow::ensure!(result?, "no agent {agent_id}");
    rt.block_on(crate::audit::record(
        db,
        crate::storage::audit::AuditEvent {
            event: event.into(),
            decision: decision.into(),
            agent_id: Some(agent_id.to_owned()),
            reason: Some(format!(
                "deputy agent {}",
                if decision == "suspended" { "suspend" } else { "resume" },
            )),
            ..Default::default()
        },
    ));
    Ok(())
}

fn read_spec(file: &std::path::Path) -> anyhow::Result<crate::agent_registry::AgentSpec> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a valid agent description: {e}", file.display()))
}

fn upsert(db: &Db, spec: &crate::agent_registry::AgentSpec) -> anyhow::Result<()> {
    let mut outcome = Ok(false);
    db.run_blocking(|c| {
        outcome = crate::agent_registry::upsert(c, spec, clock::now());
        Ok(())
    })?;
    outcome.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
}
