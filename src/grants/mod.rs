//! The token endpoint's grants (RFC 6749 §4): the request is parsed into a
//! typed [`TokenRequest`] at the edge, then dispatched to one module per grant.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod token_exchange;

use serde::Serialize;

use crate::config::TokenSettings;
use crate::domain::{Client, GrantType, ResourceUri, Scope, UserId};
use crate::error::OAuthError;
use crate::form::Form;
use crate::revocation::Revocations;
use crate::storage::interactions::{self, RefreshRow};
use crate::storage::{grants, users, Db};
use crate::tokens::access::{self, AccessClaims};
use crate::tokens::id_token::{self, IdClaims};
use crate::tokens::{random_id, KeySet};

pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// Grant types the token endpoint implements (advertised in discovery).
pub const SUPPORTED: &[&str] = &[
    AUTHORIZATION_CODE,
    REFRESH_TOKEN,
    CLIENT_CREDENTIALS,
    token_exchange::GRANT_TYPE,
];

/// ID tokens live ten minutes: they prove a sign-in, they are not for access.
pub const ID_TOKEN_TTL_SECS: i64 = 600;

#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(authorization_code::Request),
    RefreshToken(refresh_token::Request),
    ClientCredentials(client_credentials::Request),
    TokenExchange(token_exchange::Request),
}

impl TokenRequest {
    pub fn parse(form: &Form) -> Result<TokenRequest, OAuthError> {
        // RFC 8707 allows several `resource`s, but Deputy issues tokens for exactly one audience.
        if form.is_repeated("resource") {
            return Err(OAuthError::InvalidTarget(
                "Deputy issues a token for exactly one resource per request".into(),
            ));
        }
        if let Some(name) = form.first_repeated() {
            return Err(OAuthError::InvalidRequest(format!(
                "parameter {name} appears more than once"
            )));
        }
        let grant_type = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::InvalidRequest("grant_type is missing".into()))?;
        let required = |name: &str| {
            form.get(name)
                .map(str::to_owned)
                .ok_or_else(|| OAuthError::InvalidRequest(format!("{name} is missing")))
        };
        match grant_type {
            AUTHORIZATION_CODE => {
                let code_verifier = required("code_verifier")?;
                if !crate::authorize::valid_verifier(&code_verifier) {
                    return Err(OAuthError::InvalidRequest(
                        "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 section 4.1)".into(),
                    ));
                }
                Ok(TokenRequest::AuthorizationCode(authorization_code::Request {
                    code: required("code")?,
                    redirect_uri: required("redirect_uri")?,
                    code_verifier,
                }))
            }
            REFRESH_TOKEN => Ok(TokenRequest::RefreshToken(refresh_token::Request {
                refresh_token: required("refresh_token")?,
                scope: parse_scope(form)?,
            })),
            token_exchange::GRANT_TYPE => Ok(TokenRequest::TokenExchange(token_exchange::Request::parse(form)?)),
            CLIENT_CREDENTIALS => Ok(TokenRequest::ClientCredentials(client_credentials::Request {
                scope: parse_scope(form)?,
                resource: parse_resource(form)?,
            })),
            other => Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type '{other}' is not supported"
            ))),
        }
    }

    pub fn grant_type(&self) -> &'static str {
        match self {
            TokenRequest::AuthorizationCode(_) => AUTHORIZATION_CODE,
            TokenRequest::RefreshToken(_) => REFRESH_TOKEN,
            TokenRequest::ClientCredentials(_) => CLIENT_CREDENTIALS,
            TokenRequest::TokenExchange(_) => token_exchange::GRANT_TYPE,
        }
    }
}

fn parse_scope(form: &Form) -> Result<Option<Scope>, OAuthError> {
    form.get("scope")
        .map(Scope::parse)
        .transpose()
        .map_err(OAuthError::InvalidScope)
}

fn parse_resource(form: &Form) -> Result<Option<ResourceUri>, OAuthError> {
    form.get("resource")
        .map(ResourceUri::parse)
        .transpose()
        .map_err(OAuthError::InvalidTarget)
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// What a user-facing grant needs besides the client.
pub struct GrantContext<'a> {
    pub db: &'a Db,
    pub keys: &'a KeySet,
    pub issuer: &'a str,
    pub ttl: &'a TokenSettings,
    pub revocations: &'a Revocations,
    pub audit: &'a crate::audit::AuditLog,
    /// Cached registry reads for token exchange.
    pub registry: &'a token_exchange::RegistryCache,
    /// The request id (as in the logs and `X-Request-Id`), for the audit trail.
    pub request_id: Option<String>,
}

/// The parts of an issuance on behalf of a user.
pub struct UserIssue<'a> {
    pub user_id: &'a str,
    pub grant_id: &'a str,
    pub scope: &'a Scope,
    pub resource: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    /// The refresh-token family to continue (refresh grant), or None for a new one.
    pub family: Option<&'a str>,
    pub refresh_expires_at: Option<i64>,
    /// The scope of the refresh token to issue, when it differs from the access
    /// token's (a refresh keeps its family's scope, RFC 6749 §6); None: `scope`.
    pub refresh_scope: Option<&'a Scope>,
    /// The agent the user approved to act with these tokens (from the code or the refresh token).
    pub may_act: Option<&'a str>,
}

pub struct Issued {
    pub response: TokenResponse,
    pub access_jti: String,
    pub family: Option<String>,
}

/// Issues tokens for a user under a consent grant: the grant must still be
/// active and the user enabled. The access token carries the grant id, and
/// never outlives the grant.
pub async fn issue_for_user(
    client: &Client,
    ctx: &GrantContext<'_>,
    u: UserIssue<'_>,
    now: i64,
) -> Result<Issued, OAuthError> {
    let (gid, uid) = (u.grant_id.to_owned(), UserId::from_stored(u.user_id.to_owned()));
    let agent_id = u.may_act.map(str::to_owned);
    let (grant, user, withdrawn, agent) = ctx
        .db
        .run(move |c| {
            Ok((
                grants::get(c, &gid)?,
                users::by_id(c, &uid)?,
                grants::is_revoked(c, &gid)?,
                agent_id
                    .map(|a| crate::storage::agents::get(c, &a))
                    .transpose()?
                    .flatten(),
            ))
        })
        .await?;
    // A token naming a suspended agent would be born revoked (its kill switch): refuse instead.
    if agent.is_some_and(|a| a.status != crate::domain::AgentStatus::Active) {
        return Err(OAuthError::InvalidGrant(
            "the agent that may act with these tokens is suspended".into(),
        ));
    }
    let grant = match grant {
        Some(g) if g.is_usable(now) && !withdrawn => g,
        _ => {
            return Err(OAuthError::InvalidGrant(
                "the user's consent was withdrawn or has expired".into(),
            ))
        }
    };
    let user = match user {
        Some(u) if !u.disabled => u,
        _ => return Err(OAuthError::InvalidGrant("the user account is disabled".into())),
    };
    let aud = match (u.resource, client.resources.as_slice()) {
        (Some(r), _) => r.to_owned(),
        (None, [only]) => only.as_str().to_owned(),
        // No resource: the token is for Deputy itself (the userinfo endpoint).
        (None, _) => ctx.issuer.to_owned(),
    };
    let lifetime = client
        .access_token_ttl
        .unwrap_or(ctx.ttl.access_token_ttl)
        .min(ctx.ttl.max_access_token_ttl)
        .min(grant.expires_at - now)
        .max(1);
    let claims = AccessClaims {
        iss: ctx.issuer.to_owned(),
        sub: user.id.as_str().to_owned(),
        aud,
        exp: now + lifetime,
        iat: now,
        jti: random_id(),
        client_id: client.id.as_str().to_owned(),
        scope: (!u.scope.is_empty()).then(|| u.scope.to_string()),
        grant_id: Some(grant.id.clone()),
        act: None,
        // RFC 8693 §4.4: the agent the user approved (and the grant still names) may act with this token.
        may_act: u
            .may_act
            .filter(|a| grant.agents.iter().any(|g| g == a))
            .map(|a| serde_json::json!({ "sub": a })),
        authorization_details: None,
        anc: None,
    };
    let access_token = access::issue(ctx.keys, &claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    let id_token = if u.scope.contains("openid") {
        let profile = u.scope.contains("profile");
        let id = IdClaims {
            iss: ctx.issuer.to_owned(),
            sub: user.id.as_str().to_owned(),
            aud: client.id.as_str().to_owned(),
            exp: now + ID_TOKEN_TTL_SECS,
            iat: now,
            auth_time: u.auth_time,
            nonce: u.nonce.map(str::to_owned),
            at_hash: id_token::at_hash(&access_token),
            azp: client.id.as_str().to_owned(),
            name: profile.then(|| user.display_name.clone()),
            preferred_username: profile.then(|| user.username.clone()),
            email: u.scope.contains("email").then(|| user.email.clone()),
        };
        Some(id_token::issue(ctx.keys, client.id_token_alg, &id).map_err(|e| OAuthError::ServerError(e.to_string()))?)
    } else {
        None
    };
    let refresh_scope = u.refresh_scope.unwrap_or(u.scope);
    let (refresh_token, family) =
        if refresh_scope.contains("offline_access") && client.allows_grant(GrantType::RefreshToken) {
            let token = random_id() + &random_id();
            let family = u.family.map(str::to_owned).unwrap_or_else(random_id);
            let row = RefreshRow {
                token_hash: crate::authorize::hash_code(&token),
                family_id: family.clone(),
                grant_id: grant.id.clone(),
                client_id: client.id.as_str().to_owned(),
                user_id: user.id.as_str().to_owned(),
                scope: refresh_scope.to_string(),
                resource: u.resource.map(str::to_owned),
                auth_time: u.auth_time,
                access_jti: claims.jti.clone(),
                created_at: now,
                expires_at: u.refresh_expires_at.unwrap_or(grant.expires_at).min(grant.expires_at),
                used: false,
                revoked: false,
                may_act: u.may_act.map(str::to_owned),
            };
            ctx.db.run(move |c| interactions::insert_refresh(c, &row)).await?;
            (Some(token), Some(family))
        } else {
            (None, None)
        };
    let g = grant.id.clone();
    ctx.db.run(move |c| grants::touch(c, &g, now)).await?;
    // Attributed like every decision. Unlike an exchange, the code or refresh token
    // is already used up here, so a failed audit write is logged loudly by the
    // writer but does not take the tokens back.
    ctx.audit
        .record(crate::storage::audit::AuditEvent {
            event: if u.family.is_some() {
                "refresh_token"
            } else {
                "authorization_code"
            }
            .into(),
            decision: "issued".into(),
            agent_id: claims
                .may_act
                .as_ref()
                .and_then(|m| m["sub"].as_str())
                .map(str::to_owned),
            user_id: Some(user.id.to_string()),
            client_id: Some(client.id.to_string()),
            scope: claims.scope.clone(),
            audience: Some(claims.aud.clone()),
            grant_id: Some(grant.id.clone()),
            request_id: ctx.request_id.clone(),
            ..Default::default()
        })
        .await;
    Ok(Issued {
        access_jti: claims.jti.clone(),
        family,
        response: TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime,
            scope: claims.scope,
            refresh_token,
            id_token,
            issued_token_type: None,
        },
    })
}
