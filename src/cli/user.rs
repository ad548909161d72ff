//! `deputy user create|list|disable|enable`. Passwords come from standard input
//! or a prompt, never from a flag (flags end up in shell history and `ps`).

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;

use crate::clock;
use crate::config::Settings;
use crate::revocation::IdentityChange;
use crate::storage::{users, Db};
use crate::user_registry::{self, UserSpec};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (or prompted for).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long = "name")]
        display_name: Option<String>,
        #[arg(long, default_value = "")]
        email: String,
    },
    /// List users.
    List,
    /// Disable a user: they can no longer sign in, every token issued on their behalf
    /// (and every token exchanged from one) stops working, their approvals are
    /// withdrawn and their sessions ended.
    Disable { username: String },
    /// Enable a disabled user (nothing issued before is revived).
    Enable { username: String },
    /// Set the groups a user is in (what policies see as `user.groups`); none clears them.
    Groups { username: String, groups: Vec<String> },
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        anyhow::ensure!(p == again, "the passwords differ");
        Ok(p)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

pub fn run(cmd: UserCommand, db: &Db, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            display_name,
            email,
        } => {
            let existing = db.run_blocking(|c| users::by_username(c, &username))?;
            anyhow::ensure!(existing.is_none(), "user {username} already exists");
            let spec = UserSpec {
                username: username.clone(),
                display_name,
                email,
                password: read_password()?,
                disabled: false,
                groups: Vec::new(),
            };
            db.run_blocking(|c| {
                user_registry::upsert(c, &spec, clock::now())
                    .map_err(|e| crate::storage::StorageError::Query(e.to_string()))
            })?;
            let created = db.run_blocking(|c| users::by_username(c, &username))?;
            if let Some(u) = created {
                println!("created user {} (sub {})", u.username, u.id);
            }
            Ok(())
        }
        UserCommand::List => {
            for u in db.run_blocking(users::list)? {
                let state = if u.disabled { "disabled" } else { "active" };
                println!("{}\t{}\t{}\t{}\t{}", u.username, u.id, state, u.display_name, u.email);
            }
            Ok(())
        }
        UserCommand::Disable { username } | UserCommand::Enable { username } if username.is_empty() => {
            anyhow::bail!("a username is required")
        }
        UserCommand::Groups { username, groups } => {
            crate::domain::user::validate_groups(&groups).map_err(|e| anyhow::anyhow!(e))?;
            let changed = db.run_blocking(|c| users::set_groups(c, &username, &groups, clock::now()))?;
            anyhow::ensure!(changed, "no user {username}");
            println!("{username} is in groups: {}", groups.join(" "));
            Ok(())
        }
        UserCommand::Disable { username } => set(db, settings, &username, true),
        UserCommand::Enable { username } => set(db, settings, &username, false),
    }
}

/// Disables or enables through the revocation capability (durable and logged
/// for Redis, so that every instance honours it at once), and audits it.
fn set(db: &Db, settings: &Settings, username: &str, disabled: bool) -> anyhow::Result<()> {
    let now = clock::now();
    // The Redis connection manager must be created inside a runtime.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _runtime = rt.enter();
    let revocations = super::revocations(db, settings)?;
    let done = if disabled {
        rt.block_on(revocations.disable_user(username, now))?
    } else {
        rt.block_on(revocations.enable_user(username, now))?
    };
    let id = done.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
    let (change, verb) = if disabled {
        (IdentityChange::UserDisabled(&id), "disable")
    } else {
        (IdentityChange::UserEnabled(&id), "enable")
    };
    rt.block_on(crate::audit::record(
        db,
        change.audit_event(&format!("deputy user {verb}")),
    ));
    if disabled {
        println!("disabled {username}: their tokens are revoked, approvals withdrawn and sessions ended");
    } else {
        println!("enabled {username}: nothing issued before is revived");
    }
    Ok(())
}
