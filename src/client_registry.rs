//! Registering clients from a declarative description (CLI, import file, and
//! later the admin API). Field names are RFC 7591 client metadata.

use serde::Deserialize;

use crate::client_auth::{hash_secret, verify_secret};
use crate::domain::{AuthMethod, Client, ClientId, GrantType, ResourceUri, Scope};
use crate::storage::{clients, DbConnection, StorageError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub client_id: String,
    pub client_name: String,
    /// Plain secret for `client_secret_*` clients; only its argon2id hash is stored.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub scope: String,
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    /// A JWK Set for `private_key_jwt`.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Not supported yet: fetching keys needs an SSRF-safe fetcher. Refused when set.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// `RS256` (default) or `ES256`.
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    /// Registered agents that may act with this client's tokens, when an
    /// authorization request names one in `requested_actor` and the user approves.
    #[serde(default)]
    pub agents: Vec<String>,
}

fn default_grant_types() -> Vec<String> {
    vec![GrantType::ClientCredentials.as_str().to_owned()]
}

fn default_auth_method() -> String {
    AuthMethod::ClientSecretBasic.as_str().to_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("client {client_id}: {reason}")]
    Invalid { client_id: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ClientSpec {
    /// Validates the description into a [`Client`]. `existing_hash` is kept when
    /// the given secret still matches it, so importing twice changes nothing.
    pub fn to_client(&self, existing_hash: Option<&str>, now: i64) -> Result<Client, RegistryError> {
        let invalid = |reason: String| RegistryError::Invalid {
            client_id: self.client_id.clone(),
            reason,
        };
        let id = ClientId::parse(&self.client_id).map_err(invalid)?;
        let grant_types = self
            .grant_types
            .iter()
            .map(|g| GrantType::parse(g).ok_or_else(|| invalid(format!("grant type {g:?} is not supported"))))
            .collect::<Result<Vec<_>, _>>()?;
        let auth_method = AuthMethod::parse(&self.token_endpoint_auth_method).ok_or_else(|| {
            invalid(format!(
                "token_endpoint_auth_method {:?} is not supported",
                self.token_endpoint_auth_method
            ))
        })?;
        let resources = self
            .resources
            .iter()
            .map(|r| ResourceUri::parse(r).map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        for uri in self.redirect_uris.iter().chain(&self.post_logout_redirect_uris) {
            let u = url::Url::parse(uri).map_err(|_| invalid(format!("redirect URI {uri:?} is not absolute")))?;
            if u.fragment().is_some() || uri.contains('#') {
                return Err(invalid(format!("redirect URI {uri:?} has a fragment")));
            }
        }
        let id_token_alg = match self.id_token_signed_response_alg.as_deref() {
            None => crate::tokens::Alg::RS256,
            Some(a) => crate::tokens::Alg::parse(a)
                .ok_or_else(|| invalid(format!("id_token_signed_response_alg {a:?} is not RS256 or ES256")))?,
        };
        if self.jwks_uri.is_some() {
            return Err(invalid(
                "jwks_uri is not supported yet; register the keys inline as jwks".into(),
            ));
        }
        let secret_hash = match (&self.client_secret, auth_method.uses_secret()) {
            (Some(_), false) => return Err(invalid(format!("{} clients have no secret", auth_method.as_str()))),
            (Some(s), true) if s.len() < 16 => {
                return Err(invalid("client_secret must be at least 16 characters".into()))
            }
            (Some(s), true) => match existing_hash {
                Some(h) if verify_secret(s, h) => Some(h.to_owned()),
                _ => Some(hash_secret(s).map_err(invalid)?),
            },
            (None, true) => existing_hash.map(str::to_owned),
            (None, false) => None,
        };
        let client = Client {
            id,
            name: self.client_name.clone(),
            secret_hash,
            redirect_uris: self.redirect_uris.clone(),
            grant_types,
            scope: Scope::parse(&self.scope).map_err(invalid)?,
            auth_method,
            jwks: self.jwks.clone(),
            resources,
            access_token_ttl: self.access_token_ttl,
            created_at: now,
            updated_at: now,
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            id_token_alg,
            agents: self.agents.clone(),
        };
        client.validate().map_err(invalid)?;
        Ok(client)
    }
}

/// Creates the client, or replaces an existing one with the same id. Returns true if created.
pub fn upsert(conn: &mut DbConnection, spec: &ClientSpec, now: i64) -> Result<bool, RegistryError> {
    let id = ClientId::parse(&spec.client_id).map_err(|reason| RegistryError::Invalid {
        client_id: spec.client_id.clone(),
        reason,
    })?;
    let existing = clients::get(conn, &id)?;
    let client = spec.to_client(existing.as_ref().and_then(|c| c.secret_hash.as_deref()), now)?;
    match existing {
        None => {
            clients::insert(conn, &client)?;
            Ok(true)
        }
        Some(old) if same_registration(&old, &client) => Ok(false),
        Some(_) => {
            clients::update(conn, &client)?;
            Ok(false)
        }
    }
}

/// True when nothing but timestamps would change (so a repeated import writes nothing).
fn same_registration(a: &Client, b: &Client) -> bool {
    a.name == b.name
        && a.secret_hash == b.secret_hash
        && a.redirect_uris == b.redirect_uris
        && a.grant_types == b.grant_types
        && a.scope == b.scope
        && a.auth_method == b.auth_method
        && a.jwks == b.jwks
        && a.resources == b.resources
        && a.access_token_ttl == b.access_token_ttl
        && a.post_logout_redirect_uris == b.post_logout_redirect_uris
        && a.id_token_alg == b.id_token_alg
        && a.agents == b.agents
}
