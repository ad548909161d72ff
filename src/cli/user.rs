//! `deputy user create|list|disable|enable`. Passwords come from standard input
//! or a prompt, never from a flag (flags end up in shell history and `ps`).

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;

use crate::clock;
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
    /// Disable a user: they can no longer sign in, and their refresh tokens and codes stop working.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
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

pub fn run(cmd: UserCommand, db: &Db) -> anyhow::Result<()> {
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
        UserCommand::Disable { username } => set(db, &username, true),
        UserCommand::Enable { username } => set(db, &username, false),
    }
}

fn set(db: &Db, username: &str, disabled: bool) -> anyhow::Result<()> {
    let changed = db.run_blocking(|c| users::set_disabled(c, username, disabled, clock::now()))?;
    anyhow::ensure!(changed, "no user {username}");
    println!("{} {username}", if disabled { "disabled" } else { "enabled" });
    Ok(())
}
