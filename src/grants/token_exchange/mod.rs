//! RFC 8693 token exchange: an agent trades a user's token (`subject_token`)
//! and proof of its own identity (`actor_token`) for a narrow, short-lived
//! token bound to one audience, whose `act` records the delegation chain.
//!
//! Validate, then authorize (STANDARDS rule 4): both tokens are validated for
//! their declared type; then the authenticated client must be the actor's
//! client, the actor registered and active, the user's consent (or `may_act`)
//! must name it — or, for a re-exchange, the current actor must be allowed to
//! delegate to it — and scope ⊆ subject ∩ consent ∩ agent ceiling, audience
//! allowed, depth within every agent's limit. Which rules apply follows from
//! the subject token's provenance (`act`, grant), never from which optional
//! parameters are present. Every decision is audited.

pub mod chain;
pub mod registry;

pub use registry::RegistryCache;

use serde_json::Value;

use super::{GrantContext, TokenResponse};
use crate::domain::{Agent, AgentStatus, AuthorizationDetails, Client, GrantType, ResourceUri, Scope};
use crate::error::OAuthError;
use crate::form::Form;
use crate::policy::{Action as PolicyAction, PolicyInput, Principal, Target};
use crate::revocation::TokenRef;
use crate::storage::audit::AuditEvent;
use crate::storage::jtis;
use crate::tokens::access::{self, AccessClaims, Validator};
use crate::tokens::{assertion, random_id, Keys};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// Delegated tokens live at most this long, whatever else allows (seconds).
pub const SERVER_CEILING_SECS: i64 = 300;

#[derive(Debug)]
pub struct Request {
    pub subject_token: String,
    pub actor_token: String,
    pub actor_token_type: String,
    pub scope: Option<Scope>,
    pub audience: Option<String>,
    pub authorization_details: Option<AuthorizationDetails>,
}

impl Request {
    pub fn parse(form: &Form) -> Result<Request, OAuthError> {
        let req = |n: &str| {
            form.get(n)
                .ok_or_else(|| OAuthError::InvalidRequest(format!("{n} is missing")))
        };
        let subject_token = req("subject_token")?.to_owned();
        match req("subject_token_type")? {
            ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE => {}
            other => {
                return Err(OAuthError::InvalidRequest(format!(
                    "subject_token_type '{other}' is not supported"
                )))
            }
        }
        // §2.1: actor_token_type is required with actor_token and forbidden without it.
        let (actor_token, actor_token_type) = match (form.get("actor_token"), form.get("actor_token_type")) {
            (Some(t), Some(ty @ (ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE))) => (t.to_owned(), ty.to_owned()),
            (Some(_), Some(other)) => {
                return Err(OAuthError::InvalidRequest(format!(
                    "actor_token_type '{other}' is not supported"
                )))
            }
            (Some(_), None) => {
                return Err(OAuthError::InvalidRequest(
                    "actor_token_type is required with actor_token".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(OAuthError::InvalidRequest(
                    "actor_token_type without actor_token".into(),
                ))
            }
            (None, None) => {
                return Err(OAuthError::InvalidRequest(
                    "actor_token is required: Deputy delegates only to an agent that proves itself".into(),
                ))
            }
        };
        if let Some(t) = form.get("requested_token_type") {
            if t != ACCESS_TOKEN_TYPE && t != JWT_TOKEN_TYPE {
                return Err(OAuthError::InvalidRequest(format!(
                    "requested_token_type '{t}' is not supported"
                )));
            }
        }
        let audience = match (form.get("resource"), form.get("audience")) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::InvalidTarget(
                    "give resource or audience, not both: one audience per token".into(),
                ))
            }
            (Some(r), None) => Some(ResourceUri::parse(r).map_err(OAuthError::InvalidTarget)?.to_string()),
            (None, a) => a.map(str::to_owned),
        };
        let authorization_details = super::parse_authorization_details(form)?;
        Ok(Request {
            subject_token,
            actor_token,
            actor_token_type,
            scope: form
                .get("scope")
                .map(Scope::parse)
                .transpose()
                .map_err(OAuthError::InvalidScope)?,
            audience,
            authorization_details,
        })
    }
}

/// Proves the actor. An actor access token's revocation is left to the caller
/// (returned, to be checked in one round trip with the subject's).
async fn prove_actor(
    req: &Request,
    agent: &Agent,
    ctx: &GrantContext<'_>,
    keys: &Keys,
    validator: &Validator,
    now: i64,
) -> Result<Option<TokenRef>, OAuthError> {
    let bad = |m: String| OAuthError::InvalidRequest(format!("actor_token is invalid: {m}"));
    if req.actor_token_type == JWT_TOKEN_TYPE {
        let jwks = agent
            .jwks
            .as_ref()
            .ok_or_else(|| bad("the agent has no registered keys".into()))?;
        let a = assertion::validate(&req.actor_token, jwks, &agent.id, ctx.issuer, now, 300)
            .map_err(|e| bad(e.to_string()))?;
        let key = assertion::replay_key(&agent.id, &a.jti);
        if !ctx.db.run(move |c| jtis::consume(c, &key, a.exp)).await? {
            return Err(bad("this actor assertion was already used (jti replay)".into()));
        }
        return Ok(None);
    }
    // An access token Deputy issued to the agent's own client (client_credentials).
    let claims = validator
        .validate(keys, &req.actor_token, now)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if claims.client_id != agent.client_id.as_str() || claims.sub != agent.client_id.as_str() || claims.act.is_some() {
        return Err(bad("it was not issued to this agent's client".into()));
    }
    Ok(Some(TokenRef::of(&claims)))
}

/// What the audit records about an exchange, filled in as the decision proceeds.
#[derive(Default)]
struct Trail {
    agent: Option<String>,
    chain: Vec<String>,
    user: Option<String>,
    grant: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    details: Option<Value>,
    policy: Option<crate::policy::Verdict>,
}

pub async fn grant(
    client: &Client,
    req: &Request,
    ctx: &GrantContext<'_>,
    keys: &Keys,
    validator: &Validator,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    // What was asked is recorded even when the request is refused.
    let mut trail = Trail {
        scope: req.scope.as_ref().map(Scope::to_string),
        audience: req.audience.clone(),
        details: req.authorization_details.as_ref().map(AuthorizationDetails::to_value),
        ..Trail::default()
    };
    let outcome = decide(client, req, ctx, keys, validator, now, &mut trail).await;
    let (decision, reason) = match &outcome {
        Ok(_) => ("issued", None),
        Err(e) => ("denied", Some(e.to_string())),
    };
    let audited = ctx
        .audit
        .record(AuditEvent {
            event: "token_exchange".into(),
            decision: decision.into(),
            reason,
            agent_id: trail.agent,
            chain: Some(Value::from(trail.chain).to_string()),
            user_id: trail.user,
            client_id: Some(client.id.to_string()),
            scope: trail.scope,
            audience: trail.audience,
            authorization_details: trail.details.as_ref().map(Value::to_string),
            grant_id: trail.grant,
            request_id: ctx.request_id.clone(),
            policy_ids: trail
                .policy
                .as_ref()
                .map(|v| Value::from(v.policy_ids.clone()).to_string()),
            policy_version: trail.policy.as_ref().map(|v| v.version),
            ..AuditEvent::default()
        })
        .await;
    match outcome {
        // Fail closed: a token nobody could attribute afterwards is not handed out.
        Ok(_) if !audited => Err(OAuthError::TemporarilyUnavailable(
            "the audit log could not be written; nothing was issued".into(),
        )),
        other => other,
    }
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    client: &Client,
    req: &Request,
    ctx: &GrantContext<'_>,
    keys: &Keys,
    validator: &Validator,
    now: i64,
    trail: &mut Trail,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::TokenExchange) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use token exchange".into(),
        ));
    }
    // The subject token: one Deputy issued for a user (signature and claims; cached).
    let subject: AccessClaims = validator
        .validate(keys, &req.subject_token, now)
        .await
        .map_err(|e| OAuthError::InvalidRequest(format!("subject_token is invalid: {e}")))?;
    trail.user = Some(subject.sub.clone());
    let gid = subject
        .grant_id
        .clone()
        .ok_or_else(|| OAuthError::InvalidRequest("subject_token carries no user consent (grant)".into()))?;
    trail.grant = Some(gid.clone());

    // What the decision needs from the registry (cached; see `registry`): the
    // client's agent, the grant, and the agents already in the chain.
    let previous = chain::members(subject.act.as_ref());
    let view = ctx
        .registry
        .view(ctx.db, &client.id, &gid, &subject.sub, &previous)
        .await?;
    let earlier_agents = view.earlier;
    let user = view.user;
    let agent = view
        .agent
        .ok_or_else(|| OAuthError::UnauthorizedClient("this client is not a registered agent's client".into()))?;
    trail.agent = Some(agent.id.clone());
    // A quick refusal; the kill switch itself is checked below, in the revocation store.
    if agent.status != AgentStatus::Active {
        return Err(OAuthError::UnauthorizedClient("the agent is suspended".into()));
    }
    let actor = prove_actor(req, &agent, ctx, keys, validator, now).await?;
    let grant = match view.grant {
        // A withdrawn grant is caught by the subject's revocation check below.
        Some(g) if g.is_usable(now) && g.user_id.as_str() == subject.sub => g,
        _ => {
            return Err(OAuthError::InvalidGrant(
                "the user's consent was withdrawn or has expired".into(),
            ))
        }
    };

    // Provenance decides the rule: a user's token (no act) or an actor token (act).
    let new_act = match previous.first() {
        None => {
            let may_act = subject
                .may_act
                .as_ref()
                .and_then(|m| m.get("sub"))
                .and_then(Value::as_str);
            if !grant.agents.contains(&agent.id) && may_act != Some(agent.id.as_str()) {
                return Err(OAuthError::InvalidGrant(
                    "the user's consent does not name this agent".into(),
                ));
            }
            chain::nest(&agent.id, None)
        }
        Some(current) if *current == agent.id => subject.act.clone().unwrap_or(Value::Null),
        Some(current) => {
            match earlier_agents.first() {
                Some(Some(a)) if a.status == AgentStatus::Active && a.may_delegate_to.contains(&agent.id) => {}
                _ => {
                    return Err(OAuthError::InvalidGrant(format!(
                        "the current actor {current} may not delegate to this agent"
                    )))
                }
            }
            chain::nest(&agent.id, subject.act.as_ref())
        }
    };
    let members = chain::members(Some(&new_act));
    trail.chain = members.clone();
    // Every agent in the chain must allow a chain this long.
    for id in &members {
        let limit = if *id == agent.id {
            Some(agent.max_delegation_depth)
        } else {
            previous
                .iter()
                .position(|p| p == id)
                .and_then(|i| earlier_agents.get(i).cloned().flatten())
                .map(|a| a.max_delegation_depth)
        };
        match limit {
            Some(max) if (members.len() as i64) <= max => {}
            Some(_) => {
                return Err(OAuthError::InvalidGrant(format!(
                    "the delegation chain is deeper than {id} allows"
                )))
            }
            None => {
                return Err(OAuthError::InvalidGrant(format!(
                    "{id} in the chain is no longer registered"
                )))
            }
        }
    }

    // One round trip to the revocation store decides what must bite at once:
    // the subject (its jti, its ancestors', its grant, its chain's agents), the
    // actor's own token, and the new chain (a suspended agent's kill switch
    // stays set, so a token it would now be named in is refused).
    let unavailable = |e: crate::revocation::RevocationError| OAuthError::TemporarilyUnavailable(e.to_string());
    let subject_ref = TokenRef::of(&subject);
    let new_chain = TokenRef {
        agents: members.clone(),
        iat: now,
        ..TokenRef::default()
    };
    let mut refs = vec![subject_ref.clone(), new_chain.clone()];
    refs.extend(actor.clone());
    if ctx.revocations.any_revoked(&refs).await.map_err(unavailable)? {
        // Which one? Only on this rare path is it worth a second look.
        let acting = TokenRef {
            agents: vec![agent.id.clone()],
            ..new_chain
        };
        // The acting agent's suspension first: it also revokes the tokens naming it.
        return Err(if ctx.revocations.is_revoked(&acting).await.map_err(unavailable)? {
            OAuthError::UnauthorizedClient("the agent is suspended (or was resumed less than a second ago)".into())
        } else if ctx.revocations.is_revoked(&subject_ref).await.map_err(unavailable)? {
            OAuthError::InvalidRequest("subject_token is revoked".into())
        } else if actor.is_some() && ctx.revocations.any_revoked(&refs[2..]).await.map_err(unavailable)? {
            OAuthError::InvalidRequest("actor_token is invalid: it was revoked".into())
        } else {
            OAuthError::InvalidGrant("an agent in the delegation chain is suspended".into())
        });
    }

    // Scope: requested ⊆ subject ∩ consent ∩ agent ceiling; never widened.
    let subject_scope = Scope::parse(subject.scope.as_deref().unwrap_or_default()).map_err(OAuthError::ServerError)?;
    let allowed = subject_scope
        .intersection(&grant.scope)
        .intersection(&agent.allowed_scopes);
    let scope = match &req.scope {
        Some(s) if !s.is_subset(&allowed) => {
            return Err(OAuthError::InvalidScope(
                "the requested scope exceeds what the subject token, the consent and the agent allow".into(),
            ))
        }
        Some(s) => s.clone(),
        None => allowed,
    };
    if scope.is_empty() {
        return Err(OAuthError::InvalidScope("nothing is left to grant".into()));
    }
    trail.scope = Some(scope.to_string());

    // Audience: one, allowed by the agent and covered by the consent.
    // The consent's resources bound the audience: a consent that named none
    // (sign-in only) lets the agent reach nothing.
    let permitted = |aud: &str| {
        agent.allowed_audiences.iter().any(|a| a.as_str() == aud) && grant.resources.iter().any(|r| r.as_str() == aud)
    };
    let audience = match &req.audience {
        Some(a) if permitted(a) => a.clone(),
        Some(a) => {
            return Err(OAuthError::InvalidTarget(format!(
                "the agent may not obtain a token for {a}"
            )))
        }
        None => {
            let candidates: Vec<&ResourceUri> = agent
                .allowed_audiences
                .iter()
                .filter(|a| permitted(a.as_str()))
                .collect();
            match candidates.as_slice() {
                [one] => one.to_string(),
                _ if permitted(&subject.aud) => subject.aud.clone(),
                _ => {
                    return Err(OAuthError::InvalidTarget(
                        "name the audience (resource or audience)".into(),
                    ))
                }
            }
        }
    };
    trail.audience = Some(audience.clone());

    let details = narrow_details(&subject, req.authorization_details.as_ref())?;
    trail.details = details.as_ref().map(AuthorizationDetails::to_value);

    let exp = (now + agent.max_token_ttl)
        .min(subject.exp)
        .min(grant.expires_at)
        .min(now + SERVER_CEILING_SECS);
    if exp <= now {
        return Err(OAuthError::InvalidGrant("no lifetime is left to grant".into()));
    }

    // Policy, on top of the invariants above: the exchange itself and, when the
    // token is handed on to another agent, the delegation.
    let mut input = PolicyInput {
        action: PolicyAction::TokenExchange,
        principal: Principal::Agent(&agent),
        resource: Target::Resource(&audience),
        client,
        user: user.as_deref(),
        grant_type: GRANT_TYPE,
        scope: &scope,
        audience: &audience,
        details: details.as_ref(),
        ttl: exp - now,
        chain: &members,
        address: ctx.address,
        sender_constrained: false,
        now,
    };
    let mut verdict = ctx.policy.decide(&input);
    if verdict.allowed {
        if let (Some(current), true) = (
            earlier_agents.first().cloned().flatten(),
            previous.first() != Some(&agent.id),
        ) {
            input.action = PolicyAction::Delegate;
            input.principal = Principal::Agent(&current);
            input.resource = Target::Agent(&agent);
            let delegation = ctx.policy.decide(&input);
            if !delegation.allowed {
                verdict = delegation;
            }
        }
    }
    trail.policy = Some(verdict.clone());
    if !verdict.allowed {
        return Err(super::policy_refusal(&verdict));
    }
    let (scope, exp) = super::shape(&verdict, scope, req.scope.is_some(), exp, now)?;
    trail.scope = Some(scope.to_string());
    let mut anc = subject.anc.clone().unwrap_or_default();
    anc.push(subject.jti.clone());
    let claims = AccessClaims {
        iss: ctx.issuer.to_owned(),
        sub: subject.sub.clone(),
        aud: audience,
        exp,
        iat: now,
        jti: random_id(),
        client_id: client.id.as_str().to_owned(),
        scope: Some(scope.to_string()),
        grant_id: Some(grant.id.clone()),
        act: Some(new_act),
        may_act: None,
        authorization_details: trail.details.clone(),
        anc: Some(anc),
    };
    let token = access::issue(ctx.keys, &claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: exp - now,
        scope: claims.scope,
        refresh_token: None,
        id_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        authorization_details: claims.authorization_details,
    })
}

/// RFC 9396 across an exchange (STANDARDS rule 8): the new token's details
/// are covered by the subject's; none asked inherits the subject's unchanged
/// (dropping them would turn a bounded permission into a scope-only one); a
/// subject without details covers none.
fn narrow_details(
    subject: &AccessClaims,
    asked: Option<&AuthorizationDetails>,
) -> Result<Option<AuthorizationDetails>, OAuthError> {
    let held = subject
        .authorization_details
        .as_ref()
        .map(AuthorizationDetails::from_value)
        .transpose()
        .map_err(|e| OAuthError::InvalidRequest(format!("subject_token carries unusable {e}")))?;
    match (held, asked) {
        (None, Some(_)) => Err(OAuthError::InvalidAuthorizationDetails(
            "the subject token carries no authorization_details, so it covers none".into(),
        )),
        (Some(held), Some(asked)) => {
            held.covers(asked).map_err(OAuthError::InvalidAuthorizationDetails)?;
            Ok(Some(asked.clone()))
        }
        (held, None) => Ok(held),
    }
}
