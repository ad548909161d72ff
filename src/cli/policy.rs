//! `deputy policy list|show|put|activate|rollback|check|schema`: the same
//! operations as the admin API, on the configured database. Running servers
//! pick up an activation within half a second.

use std::path::PathBuf;

use clap::Subcommand;

use crate::clock;
use crate::config::Settings;
use crate::policy::manage::{self, CheckRequest};
use crate::policy::PolicyEngine;
use crate::storage::Db;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the stored versions, newest first, and which is active.
    List,
    /// Print a version's Cedar source (the active one by default).
    Show { version: Option<i64> },
    /// Validate a Cedar file against the schema and store it as a new version (not active yet).
    Put {
        file: PathBuf,
        /// Deny unless a policy permits (default: allow unless a policy forbids).
        #[arg(long)]
        default_deny: bool,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Make a stored version the active one, on every instance.
    Activate { version: i64 },
    /// Activate the version that was active before the current one.
    Rollback,
    /// Decide a hypothetical request (JSON, from a file or - for standard input) without issuing anything.
    Check { request: PathBuf },
    /// Print the Cedar schema policies are validated against.
    Schema,
}

pub fn run(cmd: PolicyCommand, db: &Db, settings: &Settings) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let who = "CLI";
    let now = clock::now();
    let failed = |e: manage::PolicyError| anyhow::anyhow!("{}", manage::diagnostics(&e));
    match cmd {
        PolicyCommand::List => {
            for v in rt.block_on(manage::list(db)).map_err(failed)? {
                let mark = if v.active { "active" } else { "" };
                println!(
                    "{}\t{}\tdefault {}\t{}\t{}",
                    v.version, mark, v.default, v.created_at, v.comment
                );
            }
        }
        PolicyCommand::Show { version } => {
            let row = rt.block_on(manage::show(db, version)).map_err(failed)?;
            let default = if row.default_deny { "deny" } else { "allow" };
            println!("// version {} (default {default}) {}", row.version, row.comment);
            println!("{}", row.source);
        }
        PolicyCommand::Put {
            file,
            default_deny,
            comment,
        } => {
            let meta = std::fs::metadata(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            anyhow::ensure!(
                meta.len() <= crate::policy::set::MAX_SOURCE_BYTES as u64,
                "{} is larger than {} KiB",
                file.display(),
                crate::policy::set::MAX_SOURCE_BYTES / 1024
            );
            let source =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let version = rt
                .block_on(manage::put(db, source, default_deny, comment, who, now))
                .map_err(failed)?;
            println!("stored as version {version} (not active: deputy policy activate {version})");
        }
        PolicyCommand::Activate { version } => {
            rt.block_on(manage::activate(db, None, version, who, now))
                .map_err(failed)?;
            println!("version {version} is active");
        }
        PolicyCommand::Rollback => {
            let version = rt.block_on(manage::rollback(db, None, who, now)).map_err(failed)?;
            println!("rolled back: version {version} is active");
        }
        PolicyCommand::Check { request } => {
            let text = if request.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&request)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", request.display()))?
            };
            let check: CheckRequest =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("the request is not valid JSON: {e}"))?;
            let engine = PolicyEngine::new(&settings.policy.time_zone).map_err(|e| anyhow::anyhow!(e))?;
            rt.block_on(engine.refresh(db))?;
            let verdict = rt.block_on(manage::check(db, &engine, check, now)).map_err(failed)?;
            println!("{}", verdict.to_json());
        }
        PolicyCommand::Schema => print!("{}", crate::policy::schema::source()),
    }
    Ok(())
}
