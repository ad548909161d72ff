//! The token endpoint's grants (RFC 6749 §4): the request is parsed into a
//! typed [`TokenRequest`] at the edge, then dispatched to one module per grant.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod token_exchange;

use serde::Serialize;

use crate::config::TokenSettings;
use crate::domain::{AuthorizationDetails, Client, GrantType, ResourceUri, Scope, UserId};
use crate::error::OAuthError;
use crate::form::Form;
use crate::policy::{Action as PolicyAction, PolicyInput, Principal, Target};
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
                authorization_details: parse_authorization_details(form)?,
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

/// Details stored with a code or a refresh token (validated when stored).
pub(crate) fn stored_details(json: Option<&str>) -> Result<Option<AuthorizationDetails>, OAuthError> {
    json.map(AuthorizationDetails::parse)
        .transpose()
        .map_err(|_| OAuthError::ServerError("stored authorization_details are unreadable".into()))
}

/// RFC 9396 §2 (and §5 for the error).
pub fn parse_authorization_details(form: &Form) -> Result<Option<AuthorizationDetails>, OAuthError> {
    form.get("authorization_details")
        .map(AuthorizationDetails::parse)
        .transpose()
        .map_err(OAuthError::InvalidAuthorizationDetails)
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
    /// RFC 9396 §7: the transaction details the access token carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
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
    /// The organisation's rules (Cedar), decided at each issuance.
    pub policy: &'a crate::policy::PolicyEngine,
    /// The caller's address, for policies.
    pub address: Option<std::net::IpAddr>,
}

/// A policy's refusal, as the token endpoint answers it (RFC 6749 §5.2,
/// RFC 9396 §5): the deciding forbid's `@error`, else `invalid_grant`; the
/// description names the policy ids, never their text.
pub fn policy_refusal(v: &crate::policy::Verdict) -> OAuthError {
    let d = v.explain();
    match v.error.as_deref() {
        Some("invalid_scope") => OAuthError::InvalidScope(d),
        Some("invalid_target") => OAuthError::InvalidTarget(d),
        Some("invalid_authorization_details") => OAuthError::InvalidAuthorizationDetails(d),
        _ => OAuthError::InvalidGrant(d),
    }
}

/// What satisfied permits shape: the scope keeps only their `@scope`s (a
/// request that named more is refused), the lifetime stays within their `@ttl`.
pub fn shape(
    v: &crate::policy::Verdict,
    scope: Scope,
    explicit: bool,
    exp: i64,
    now: i64,
) -> Result<(Scope, i64), OAuthError> {
    let scope = match &v.scope {
        Some(limit) if explicit && !scope.is_subset(limit) => {
            return Err(OAuthError::InvalidScope(format!(
                "the requested scope exceeds what policy {} allows",
                v.policy_ids.join(", ")
            )))
        }
        Some(limit) => scope.intersection(limit),
        None => scope,
    };
    if scope.is_empty() {
        return Err(OAuthError::InvalidScope(format!(
            "policy {} leaves no scope to grant",
            v.policy_ids.join(", ")
        )));
    }
    let exp = v.max_ttl.map_or(exp, |t| exp.min(now + t));
    Ok((scope, exp))
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
    /// RFC 9396 details for the access token (approved, or narrowed at a refresh).
    pub authorization_details: Option<&'a AuthorizationDetails>,
    /// The details the refresh-token family keeps (those of the code), for the
    /// next rotation: a refresh narrows its access token, never the family (§6).
    pub family_details: Option<&'a AuthorizationDetails>,
    /// The code or refresh token this issuance uses up, claimed in the same
    /// transaction that stores what is issued (see [`interactions::Claim`]).
    pub claim: interactions::Claim<'a>,
}

pub struct Issued {
    pub response: TokenResponse,
}

/// Issues tokens for a user under a consent grant: the grant must still be
/// active and the user enabled. The access token carries the grant id, and
/// never outlives the grant. `Ok(None)`: the claim was lost (the code was
/// replayed, or the refresh token used or revoked, meanwhile) and nothing is
/// handed out.
pub async fn issue_for_user(
    client: &Client,
    ctx: &GrantContext<'_>,
    u: UserIssue<'_>,
    now: i64,
) -> Result<Option<Issued>, OAuthError> {
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
    let agent_chain: Vec<String> = u.may_act.iter().map(|a| (*a).to_owned()).collect();
    let verdict = ctx.policy.decide(&PolicyInput {
        action: if u.family.is_some() {
            PolicyAction::RefreshToken
        } else {
            PolicyAction::AuthorizationCode
        },
        principal: Principal::Client(client),
        resource: Target::Resource(&aud),
        client,
        user: Some(&user),
        grant_type: if u.family.is_some() {
            REFRESH_TOKEN
        } else {
            AUTHORIZATION_CODE
        },
        scope: u.scope,
        audience: &aud,
        details: u.authorization_details,
        ttl: lifetime,
        chain: &agent_chain,
        address: ctx.address,
        sender_constrained: false,
        now,
    });
    if !verdict.allowed {
        return Err(policy_refusal(&verdict));
    }
    // The access token's scope and lifetime as the policies shape them; the
    // refresh token keeps the family's.
    let (access_scope, exp) = shape(&verdict, u.scope.clone(), false, now + lifetime, now)?;
    let lifetime = exp - now;
    let claims = AccessClaims {
        iss: ctx.issuer.to_owned(),
        sub: user.id.as_str().to_owned(),
        aud,
        exp: now + lifetime,
        iat: now,
        jti: random_id(),
        client_id: client.id.as_str().to_owned(),
        scope: (!access_scope.is_empty()).then(|| access_scope.to_string()),
        grant_id: Some(grant.id.clone()),
        act: None,
        // RFC 8693 §4.4: the agent the user approved (and the grant still names) may act with this token.
        may_act: u
            .may_act
            .filter(|a| grant.agents.iter().any(|g| g == a))
            .map(|a| serde_json::json!({ "sub": a })),
        authorization_details: u.authorization_details.map(AuthorizationDetails::to_value),
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
    let (refresh_token, refresh_row) =
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
                authorization_details: u.family_details.map(|d| d.to_value().to_string()),
            };
            (Some(token), Some(row))
        } else {
            (None, None)
        };
    let (claim, jti, g) = (owned_claim(u.claim), claims.jti.clone(), grant.id.clone());
    let claimed = ctx
        .db
        .run(move |c| interactions::record_issue(c, claim.as_claim(), &jti, refresh_row.as_ref(), &g, now))
        .await?;
    if !claimed {
        return Ok(None);
    }
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
            authorization_details: claims.authorization_details.as_ref().map(|d| d.to_string()),
            grant_id: Some(grant.id.clone()),
            request_id: ctx.request_id.clone(),
            policy_ids: Some(serde_json::Value::from(verdict.policy_ids.clone()).to_string()),
            policy_version: Some(verdict.version),
            ..Default::default()
        })
        .await;
    Ok(Some(Issued {
        response: TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: lifetime,
            scope: claims.scope,
            refresh_token,
            id_token,
            issued_token_type: None,
            authorization_details: claims.authorization_details,
        },
    }))
}

/// A [`interactions::Claim`] that can move to the blocking pool.
enum OwnedClaim {
    Code(String),
    Refresh(String),
}

impl OwnedClaim {
    fn as_claim(&self) -> interactions::Claim<'_> {
        match self {
            OwnedClaim::Code(h) => interactions::Claim::Code(h),
            OwnedClaim::Refresh(h) => interactions::Claim::Refresh(h),
        }
    }
}

fn owned_claim(c: interactions::Claim<'_>) -> OwnedClaim {
    match c {
        interactions::Claim::Code(h) => OwnedClaim::Code(h.to_owned()),
        interactions::Claim::Refresh(h) => OwnedClaim::Refresh(h.to_owned()),
    }
}
