//! `deputy client create|list|show|delete`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::client_auth::generate_secret;
use crate::client_registry::ClientSpec;
use crate::clock;
use crate::config::Settings;
use crate::domain::{AuthMethod, Client, ClientId};
use crate::revocation::IdentityChange;
use crate::storage::{clients, Db};

#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ClientCommand {
    /// Register a client. Prints its id and, for secret-based clients, the secret (once).
    Create {
        /// Client id (default: a random one).
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long)]
        name: String,
        /// Grant type, repeatable (default client_credentials).
        #[arg(long = "grant-type", default_value = "client_credentials")]
        grant_types: Vec<String>,
        /// Space-separated scopes the client may ask for.
        #[arg(long, default_value = "")]
        scope: String,
        /// client_secret_basic, client_secret_post, private_key_jwt or none.
        #[arg(long, default_value = "client_secret_basic")]
        auth_method: String,
        /// Resource (RFC 8707) the client may ask tokens for, repeatable.
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// Redirect URI, repeatable.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// File holding the client's JWK Set (private_key_jwt).
        #[arg(long)]
        jwks_file: Option<PathBuf>,
        /// Access-token lifetime in seconds (capped by the server ceiling).
        #[arg(long)]
        access_token_ttl: Option<i64>,
        /// A registered agent that may act with this client's tokens (`requested_actor`), repeatable.
        #[arg(long = "agent")]
        agents: Vec<String>,
    },
    /// List clients.
    List,
    /// Show one client as JSON (never its secret).
    Show { client_id: String },
    /// Delete a client: its tokens, refresh tokens and approvals are revoked; a client
    /// created later with the same id inherits nothing.
    Delete { client_id: String },
}

pub fn run(cmd: ClientCommand, db: &Db, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            client_id,
            name,
            grant_types,
            scope,
            auth_method,
            resources,
            redirect_uris,
            jwks_file,
            access_token_ttl,
            agents,
        } => {
            let secret = AuthMethod::parse(&auth_method)
                .filter(|m| m.uses_secret())
                .map(|_| generate_secret());
            let jwks = jwks_file
                .map(|p| -> anyhow::Result<serde_json::Value> {
                    let text =
                        std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", p.display()))
                })
                .transpose()?;
            let spec = ClientSpec {
                client_id: client_id.unwrap_or_else(crate::tokens::random_id),
                client_name: name,
                client_secret: secret.clone(),
                grant_types,
                scope,
                token_endpoint_auth_method: auth_method,
                redirect_uris,
                resources,
                jwks,
                jwks_uri: None,
                access_token_ttl,
                post_logout_redirect_uris: Vec::new(),
                id_token_signed_response_alg: None,
                agents,
            };
            let client = spec.to_client(None, clock::now())?;
            db.run_blocking(|c| clients::insert(c, &client)).map_err(|e| match e {
                crate::storage::StorageError::Duplicate => anyhow::anyhow!("client {} already exists", spec.client_id),
                other => anyhow::anyhow!(other),
            })?;
            let mut out = describe(&client);
            if let Some(s) = secret {
                out["client_secret"] = s.into();
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        ClientCommand::List => {
            for c in db.run_blocking(clients::list)? {
                println!("{}\t{}\t{}\t{}", c.id, c.auth_method.as_str(), c.scope, c.name);
            }
            Ok(())
        }
        ClientCommand::Show { client_id } => {
            let id = ClientId::parse(&client_id).map_err(|e| anyhow::anyhow!(e))?;
            let c = db
                .run_blocking(|conn| clients::get(conn, &id))?
                .ok_or_else(|| anyhow::anyhow!("no client {client_id}"))?;
            println!("{}", serde_json::to_string_pretty(&describe(&c))?);
            Ok(())
        }
        ClientCommand::Delete { client_id } => {
            let id = ClientId::parse(&client_id).map_err(|e| anyhow::anyhow!(e))?;
            // Through the revocation capability (durable and logged for Redis,
            // so that every instance honours it at once), and audited.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let _runtime = rt.enter();
            let revocations = super::revocations(db, settings)?;
            anyhow::ensure!(
                rt.block_on(revocations.delete_client(&id, clock::now()))?,
                "no client {client_id}"
            );
            let event = IdentityChange::ClientDeleted(&id).audit_event("deputy client delete");
            rt.block_on(crate::audit::record(db, event));
            println!("deleted {client_id}: its tokens, refresh tokens and approvals are revoked");
            Ok(())
        }
    }
}

/// RFC 7591 §3.2.1-style view of a client, without secrets.
pub fn describe(c: &Client) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.id.as_str(),
        "client_name": c.name,
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": c.scope.to_string(),
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "redirect_uris": c.redirect_uris,
        "resources": c.resources.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "jwks": c.jwks,
        "access_token_ttl": c.access_token_ttl,
        "agents": c.agents,
        "client_id_issued_at": c.created_at,
    })
}
