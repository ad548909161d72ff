//! `deputy import FILE`: a declarative TOML description of what a deployment
//! (or a test) needs, applied in one transaction. Importing the same file twice
//! changes nothing the second time. Unknown keys are refused, so a typo fails loudly.

use std::path::Path;

use diesel::Connection;
use serde::Deserialize;

use crate::agent_registry::{self, AgentError, AgentSpec};
use crate::client_registry::{self, ClientSpec, RegistryError};
use crate::storage::Db;
use crate::user_registry::{self, UserError, UserSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportFile {
    #[serde(default)]
    pub clients: Vec<ClientSpec>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
    #[serde(default)]
    pub agents: Vec<AgentSpec>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub clients_created: usize,
    pub clients_updated_or_unchanged: usize,
    pub users_created: usize,
    pub users_updated_or_unchanged: usize,
    pub agents_created: usize,
    pub agents_updated: usize,
}

pub fn parse(text: &str) -> anyhow::Result<ImportFile> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("invalid import file: {e}"))
}

pub fn import_file(db: &Db, path: &Path, now: i64) -> anyhow::Result<ImportReport> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let file = parse(&text)?;
    apply(db, &file, now)
}

pub fn apply(db: &Db, file: &ImportFile, now: i64) -> anyhow::Result<ImportReport> {
    let mut seen = std::collections::HashSet::new();
    for c in &file.clients {
        if !seen.insert(&c.client_id) {
            anyhow::bail!("client {} appears twice in the import file", c.client_id);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for u in &file.users {
        if !seen.insert(&u.username) {
            anyhow::bail!("user {} appears twice in the import file", u.username);
        }
    }
    let mut conn_result: Result<ImportReport, ImportError> = Err(ImportError::NotRun);
    db.run_blocking(|conn| {
        conn_result = conn.transaction::<_, ImportError, _>(|conn| {
            let mut report = ImportReport::default();
            for spec in &file.clients {
                if client_registry::upsert(conn, spec, now)? {
                    report.clients_created += 1;
                } else {
                    report.clients_updated_or_unchanged += 1;
                }
            }
            for spec in &file.agents {
                if agent_registry::upsert(conn, spec, now)? {
                    report.agents_created += 1;
                } else {
                    report.agents_updated += 1;
                }
            }
            for spec in &file.users {
                if user_registry::upsert(conn, spec, now)? {
                    report.users_created += 1;
                } else {
                    report.users_updated_or_unchanged += 1;
                }
            }
            Ok(report)
        });
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("import failed, nothing was changed: {e}"))?;
    conn_result.map_err(|e| anyhow::anyhow!("import failed, nothing was changed: {e}"))
}

#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("database error: {0}")]
    Diesel(#[from] diesel::result::Error),
    #[error("the import did not run")]
    NotRun,
}
