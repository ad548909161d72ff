//! The `deputy` command line (clap): serve, migrate, client, keys, import.

mod agent;
mod client;
mod policy;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};
use crate::startup::Application;
use crate::storage::Db;
use crate::{clock, import, telemetry, tokens};

#[derive(Debug, Parser)]
#[command(
    name = "deputy",
    version,
    about = "An OAuth 2.0 / OpenID Connect identity provider for AI agents"
)]
pub struct Cli {
    /// TOML configuration file (then DEPUTY_* environment variables, then these flags, override it).
    #[arg(long, global = true, env = "DEPUTY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Issuer identifier, e.g. https://deputy.example.com.
    #[arg(long, global = true)]
    issuer: Option<String>,
    /// SQLite path (default ./deputy.db) or postgres:// URL.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Redis URL, to share revocations between instances.
    #[arg(long, global = true)]
    redis_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage agents (register and update them with `deputy import`).
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Print the audit log as JSON lines.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage runtime policies (Cedar): list, show, put, activate, rollback, check, schema.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Manage users (people who sign in).
    #[command(subcommand)]
    User(user::UserCommand),
    /// List or rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply a declarative TOML file of clients (idempotent).
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Write the events of a time range as JSON lines, oldest first (before `audit.retention_days`
    /// deletes them, or to archive them).
    Export {
        /// Only events at or after this Unix time.
        #[arg(long)]
        since: Option<i64>,
        /// Only events at or before this Unix time.
        #[arg(long)]
        until: Option<i64>,
        /// A file to write (created; an existing one is refused); standard output by default.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print events as JSON lines, oldest first; with --follow, keep printing new ones.
    Tail {
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        decision: Option<String>,
        /// Only events at or after this Unix time.
        #[arg(long)]
        since: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Show every key with its state.
    List,
    /// Make a new key of each algorithm active; old ones stay published until their tokens expire.
    Rotate,
    /// Re-seal every stored private key and server secret with the current key-encryption key
    /// (after setting a new `key_encryption_key` and moving the old one to `previous_key_encryption_keys`).
    Rewrap,
    /// Print a new random key-encryption key (base64url of 32 bytes).
    NewKek,
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen.clone(),
        issuer: cli.issuer.clone(),
        database_url: cli.database_url.clone(),
        redis_url: cli.redis_url.clone(),
    };
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    telemetry::init_logging(&settings.log_format);
    let ignored = crate::config::ignored_environment();
    if !ignored.is_empty() {
        tracing::warn!(
            variables = %ignored.join(", "),
            "ignoring environment variables of the shapes Kubernetes injects for a service named deputy"
        );
    }
    match cli.command {
        Command::Serve => serve(settings),
        Command::Migrate => {
            Db::connect(&settings.database_url, 1)?;
            println!("database is up to date");
            Ok(())
        }
        Command::Client(cmd) => client::run(cmd, &open_db(&settings)?, &settings),
        Command::Agent(cmd) => agent::run(cmd, &open_db(&settings)?, &settings),
        // The schema is a constant: printing it needs no database.
        Command::Policy(policy::PolicyCommand::Schema) => {
            print!("{}", crate::policy::schema::source());
            Ok(())
        }
        Command::Policy(cmd) => policy::run(cmd, &open_db(&settings)?, &settings),
        Command::Audit(AuditCommand::Export { since, until, output }) => {
            audit_export(&open_db(&settings)?, since, until, output)
        }
        Command::Audit(AuditCommand::Tail {
            follow,
            agent,
            user,
            decision,
            since,
        }) => {
            let db = open_db(&settings)?;
            let mut filter = crate::storage::audit::AuditFilter {
                agent,
                user,
                decision,
                since,
                ..Default::default()
            };
            loop {
                let events = db.run_blocking(|c| crate::storage::audit::query(c, &filter))?;
                for e in &events {
                    println!("{}", serde_json::to_string(e)?);
                    filter.after_seq = Some(e.seq);
                    filter.after_id = Some(e.id.clone());
                }
                if !follow {
                    return Ok(());
                }
                if events.is_empty() {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
        Command::User(cmd) => user::run(cmd, &open_db(&settings)?, &settings),
        Command::Keys(cmd) => keys(cmd, &settings),
        Command::Import { file } => {
            let report = import::import_file(&open_db(&settings)?, &file, clock::now())?;
            println!(
                "imported {}: {} client(s) created, {} updated or unchanged; {} user(s) created, {} updated or unchanged; {} agent(s) created, {} updated",
                file.display(),
                report.clients_created,
                report.clients_updated_or_unchanged,
                report.users_created,
                report.users_updated_or_unchanged,
                report.agents_created,
                report.agents_updated
            );
            Ok(())
        }
    }
}

/// `deputy audit export`: pages through the range so memory stays flat.
fn audit_export(db: &Db, since: Option<i64>, until: Option<i64>, output: Option<PathBuf>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut filter = crate::storage::audit::AuditFilter {
        since,
        until,
        limit: Some(1000),
        ..Default::default()
    };
    let mut n = 0usize;
    loop {
        let events = db.run_blocking(|c| crate::storage::audit::query(c, &filter))?;
        let Some(last) = events.last() else { break };
        filter.after_seq = Some(last.seq);
        filter.after_id = Some(last.id.clone());
        for e in &events {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        }
        n += events.len();
    }
    out.flush()?;
    if let Some(path) = output {
        eprintln!("exported {n} event(s) to {}", path.display());
    }
    Ok(())
}

/// The revocation backend the server would use, for CLI commands that revoke:
/// the change is logged in the database, and Redis, when configured, is told at
/// once if it can be, or else by any running server. Call inside a Tokio runtime.
pub(crate) fn revocations(db: &Db, settings: &Settings) -> anyhow::Result<crate::revocation::Revocations> {
    use crate::revocation::{RedisRevocations, Revocations};
    Ok(match &settings.redis_url {
        None => Revocations::Database(db.clone()),
        Some(url) => Revocations::Redis(RedisRevocations::new(
            url,
            &settings.redis_prefix,
            std::time::Duration::from_millis(settings.redis_timeout_ms.max(1000)),
            db.clone(),
        )?),
    })
}

fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    Db::connect(&settings.database_url, 2)
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    let rt = rt.build()?;
    rt.block_on(async move {
        let listen = settings.listen.clone();
        let issuer = settings.issuer.clone();
        let app = Application::build(settings).await?;
        tracing::info!(%listen, %issuer, port = app.port(), "deputy is serving");
        let server = app.into_server();
        let handle = server.handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            handle.stop(true).await;
        });
        server.await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn keys(cmd: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    if let KeysCommand::NewKek = cmd {
        println!("{}", tokens::at_rest::generate_kek());
        return Ok(());
    }
    let db = open_db(settings)?;
    let enc = tokens::at_rest::KeyEncryption::from_settings(settings)?;
    let now = clock::now();
    match cmd {
        KeysCommand::NewKek => Ok(()),
        KeysCommand::Rewrap => {
            let n = db.run_blocking(|c| tokens::keys::rewrap(c, &enc))?;
            println!(
                "re-sealed {n} stored secret(s) with key-encryption key {}; the previous keys are no longer needed",
                enc.current_id()
            );
            Ok(())
        }
        KeysCommand::List => {
            db.run_blocking(|c| tokens::keys::ensure_active_keys(c, now, &enc))?;
            let rows = db.run_blocking(crate::storage::keys::all)?;
            println!("{:<40} {:<6} {:<8} published until", "kid", "alg", "state");
            for r in rows {
                let state = if r.retired_at.is_none() { "active" } else { "retired" };
                let until = match r.publish_until {
                    None => "-".to_owned(),
                    Some(t) if t <= now => "expired (no longer published)".to_owned(),
                    Some(t) => format!("{t} (unix)"),
                };
                println!("{:<40} {:<6} {:<8} {}", r.kid, r.alg, state, until);
            }
            Ok(())
        }
        KeysCommand::Rotate => {
            // A retired key must verify every token it signed: the longest lifetime plus skew.
            let keep = settings.tokens.max_access_token_ttl + 2 * tokens::CLOCK_SKEW_SECS;
            let kids = db.run_blocking(|c| tokens::keys::rotate(c, now, keep, &enc))?;
            println!("new active keys: {}", kids.join(", "));
            println!(
                "retired keys stay published for {keep} s; running servers pick the new keys up within {} s",
                settings.keys.refresh_interval_secs
            );
            Ok(())
        }
    }
}
