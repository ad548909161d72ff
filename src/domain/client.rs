//! A registered OAuth client (RFC 7591 metadata names).

use super::{ClientId, ResourceUri, Scope};

/// Grant types a client may be registered for. Only grants Deputy implements exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    TokenExchange,
}

impl GrantType {
    pub const ALL: &'static [GrantType] = &[
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL.iter().copied().find(|g| g.as_str() == s)
    }
}

/// RFC 7591 §2 `token_endpoint_auth_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const ALL: &'static [AuthMethod] = &[
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.iter().copied().find(|m| m.as_str() == s)
    }

    pub fn uses_secret(self) -> bool {
        matches!(self, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    /// argon2id PHC string; `None` for public and `private_key_jwt` clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scope: Scope,
    pub auth_method: AuthMethod,
    /// A JWK Set (RFC 7517 §5) for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// RFC 8707 resources this client may ask tokens for; the first is the default.
    pub resources: Vec<ResourceUri>,
    /// Access-token lifetime in seconds; capped by the server ceiling.
    pub access_token_ttl: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// OIDC RP-Initiated Logout §3.1: where the user may be sent after signing out.
    pub post_logout_redirect_uris: Vec<String>,
    /// `id_token_signed_response_alg` (OIDC Registration §2): RS256 unless ES256 was asked for.
    pub id_token_alg: crate::tokens::Alg,
    /// Registered agents that may act with this client's tokens: the ones its
    /// authorization requests may name in `requested_actor` (the user still
    /// approves each on the consent screen).
    pub agents: Vec<String>,
}

impl Client {
    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }

    /// Checks the invariants that registration must hold, whatever its source (CLI, import).
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("client_name must be 1 to 200 characters".into());
        }
        if self.grant_types.is_empty() {
            return Err("grant_types must name at least one grant".into());
        }
        match self.auth_method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost if self.secret_hash.is_none() => {
                return Err("a client_secret_* client needs a secret".into())
            }
            AuthMethod::PrivateKeyJwt if self.jwks.is_none() => {
                return Err("a private_key_jwt client needs jwks".into())
            }
            AuthMethod::None if self.allows_grant(GrantType::ClientCredentials) => {
                return Err("a public client (auth method none) cannot use client_credentials".into())
            }
            _ => {}
        }
        if let Some(jwks) = &self.jwks {
            let keys = jwks.get("keys").and_then(|k| k.as_array());
            if keys.is_none_or(|k| k.is_empty()) {
                return Err("jwks must be a JWK Set with a non-empty \"keys\" array".into());
            }
        }
        if self.allows_grant(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err("an authorization_code client needs at least one redirect URI".into());
        }
        // RFC 9700 §4.15: a client id must never be mistaken for a user's subject (a UUID).
        if uuid::Uuid::parse_str(self.id.as_str()).is_ok() {
            return Err("client_id must not be a UUID: those are user subjects".into());
        }
        for a in &self.agents {
            super::agent::validate_agent_id(a).map_err(|e| format!("agents: {e}"))?;
        }
        if let Some(ttl) = self.access_token_ttl {
            if ttl <= 0 {
                return Err("access_token_ttl must be positive".into());
            }
        }
        Ok(())
    }
}
