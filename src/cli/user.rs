//! `deputy user create|list|disable|enable`. Passwords come from standard input
//! or a prompt, never from a flag (flags end up in shell history and `ps`).

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;

use crate::clock;
use crate::config::Settings;
use crate::storage::{grants, users, Db};
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
    /// Disable a user: they can no longer sign in, and their approvals are withdrawn,
    /// so every token issued on their behalf stops working.
    Disable { username: String },
    /// Enable a disabled user.
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

fn set(db: &Db, settings: &Settings, username: &str, disabled: bool) -> anyhow::Result<()> {
    let now = clock::now();
    let changed = db.run_blocking(|c| users::set_disabled(c, username, disabled, now))?;
    anyhow::ensure!(changed, "no user {username}");
    println!("{} {username}", if disabled { "disabled" } else { "enabled" });
    if disabled {
        // A disabled user's approvals are withdrawn, so every token issued on
        // their behalf turns inactive (each withdrawal durable and logged for
        // Redis, when configured).
        let user = db
            .run_blocking(|c| users::by_username(c, username))?
            .ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
        let grants = db.run_blocking(|c| grants::list_active_for_user(c, &user.id, now))?;
        // The Redis connection manager must be created inside a runtime.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let _runtime = rt.enter();
        let revocations = super::revocations(db, settings)?;
        for g in &grants {
            rt.block_on(revocations.revoke_grant(&g.id, now, g.expires_at.max(now) + 60))?;
        }
        println!("withdrew {} approval(s) of {username}", grants.len());
    }
    Ok(())
}
