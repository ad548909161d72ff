//! Runtime policy in Cedar (the `cedar-policy` crate; the only module that
//! touches it). Every issuance is decided at request time: Deputy's built-in
//! rules (consent, ceilings, delegation) are invariants checked first and no
//! policy can loosen them; the admin's policies add on top:
//! - `forbid` guardrails, and, with the set's default switched to "deny", the
//!   `permit`s an organisation wants as an explicit allow-list;
//! - annotations on satisfied `permit`s shape the result: `@ttl("30")` caps
//!   the lifetime (the smallest applies), `@scope("read")` keeps only those
//!   scopes (the intersection applies); `@error("invalid_target")` on a
//!   `forbid` chooses the token endpoint's error code (default `invalid_grant`);
//! - a policy that fails to evaluate denies (fail closed), naming itself.
//!
//! Policies are data: stored in the database, versioned, validated against
//! the published schema on upload, activated atomically, picked up by every
//! instance within half a second (see [`PolicyEngine::refresh`]).

pub mod input;
pub mod manage;
pub mod schema;
pub mod set;

use std::sync::{Arc, RwLock};

use cedar_policy::{Authorizer, Decision};

pub use input::{LocalTime, PolicyInput, Principal, Target};
pub use schema::Action;
pub use set::CompiledSet;

use crate::domain::Scope;
use crate::storage::{policies, Db, StorageError};

/// How often an instance looks for a newly activated policy set.
pub const REFRESH_INTERVAL_MS: u64 = 500;

/// The outcome of one decision, with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The policies that decided: satisfied permits when allowed; satisfied
    /// (or failing) forbids when denied. Empty when nothing permitted.
    pub policy_ids: Vec<String>,
    /// The active set's version.
    pub version: i64,
    /// Smallest `@ttl` over satisfied permits.
    pub max_ttl: Option<i64>,
    /// Intersection of the `@scope`s of satisfied permits.
    pub scope: Option<Scope>,
    /// The `@error` of the deciding forbid, if any.
    pub error: Option<String>,
}

impl Verdict {
    /// A sentence for an error description or the audit: ids, never policy text.
    pub fn explain(&self) -> String {
        match self.policy_ids.as_slice() {
            [] => "no policy permits it".into(),
            ids => format!("denied by policy {}", ids.join(", ")),
        }
    }

    /// What `deputy policy check` and its API twin answer.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "decision": if self.allowed { "allow" } else { "deny" },
            "policy_ids": self.policy_ids,
            "version": self.version,
            "max_ttl": self.max_ttl,
            "scope": self.scope.as_ref().map(ToString::to_string),
            "error": self.error,
            "explanation": if self.allowed { "allowed".to_owned() } else { self.explain() },
        })
    }
}

pub struct PolicyEngine {
    active: RwLock<Arc<CompiledSet>>,
    authorizer: Authorizer,
    zone: jiff::tz::TimeZone,
    zone_name: String,
}

impl PolicyEngine {
    /// An engine with the built-in set (no policy: allow unless forbidden),
    /// computing local time in `zone` (an IANA name such as Europe/Berlin).
    pub fn new(zone: &str) -> Result<PolicyEngine, String> {
        let tz = jiff::tz::TimeZone::get(zone).map_err(|e| format!("policy.time_zone {zone}: {e}"))?;
        schema::schema()?;
        Ok(PolicyEngine {
            active: RwLock::new(Arc::new(CompiledSet::builtin())),
            authorizer: Authorizer::new(),
            zone: tz,
            zone_name: zone.to_owned(),
        })
    }

    pub fn current(&self) -> Arc<CompiledSet> {
        match self.active.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn install(&self, set: CompiledSet) {
        let set = Arc::new(set);
        match self.active.write() {
            Ok(mut a) => *a = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    pub fn local_time(&self, now: i64) -> LocalTime {
        LocalTime::at(now, &self.zone, &self.zone_name)
    }

    /// Decides with the active set.
    pub fn decide(&self, input: &PolicyInput<'_>) -> Verdict {
        self.decide_with(&self.current(), input, &self.local_time(input.now))
    }

    /// Decides with a given set and local time (`deputy policy check`).
    pub fn decide_with(&self, set: &CompiledSet, input: &PolicyInput<'_>, time: &LocalTime) -> Verdict {
        let mut verdict = Verdict {
            allowed: false,
            policy_ids: Vec::new(),
            version: set.version,
            max_ttl: None,
            scope: None,
            error: None,
        };
        // Nothing but the built-in default can apply: decided without building a request.
        if input::principal_key(input).is_ok_and(|key| set.is_trivial(input.action, &key)) {
            verdict.allowed = !set.default_deny;
            return verdict;
        }
        let (principal, request, entities) = match input::build(input, time) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "policy request could not be built; denied");
                verdict.policy_ids.push("deputy.request".into());
                return verdict;
            }
        };
        let Some(policies) = set.slice(input.action, &principal.to_string()) else {
            // A deny-all set (fail closed).
            return verdict;
        };
        let response = self.authorizer.is_authorized(&request, policies, &entities);
        let failed: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(p) => p.policy_id().to_string(),
            })
            .collect();
        if !failed.is_empty() {
            // A guardrail that cannot be evaluated must not be skipped.
            tracing::warn!(policies = ?failed, "policy evaluation failed; denied");
            verdict.policy_ids = failed;
            return verdict;
        }
        let reasons: Vec<String> = response.diagnostics().reason().map(ToString::to_string).collect();
        verdict.allowed = response.decision() == Decision::Allow;
        for id in &reasons {
            let pid = cedar_policy::PolicyId::new(id);
            let annotation = |k: &str| policies.annotation(&pid, k);
            if verdict.allowed {
                if let Some(ttl) = annotation("ttl").and_then(|t| t.parse::<i64>().ok()) {
                    verdict.max_ttl = Some(verdict.max_ttl.map_or(ttl, |m| m.min(ttl)));
                }
                if let Some(s) = annotation("scope").and_then(|s| Scope::parse(s).ok()) {
                    verdict.scope = Some(match verdict.scope.take() {
                        Some(prev) => prev.intersection(&s),
                        None => s,
                    });
                }
            } else if verdict.error.is_none() {
                verdict.error = annotation("error").map(str::to_owned);
            }
        }
        verdict.policy_ids = reasons.into_iter().filter(|id| id != set::DEFAULT_ALLOW_ID).collect();
        verdict
    }

    /// Installs the active set if another instance (or the CLI) activated a
    /// new one. One indexed query when nothing changed.
    pub async fn refresh(&self, db: &Db) -> Result<(), StorageError> {
        let current = self.current().version;
        let Some(active) = db.run(policies::active_version).await? else {
            return Ok(());
        };
        if active == current {
            return Ok(());
        }
        let row = db.run(move |c| policies::get(c, active)).await?;
        self.install(match row {
            Some(r) => set::compile(&r.source, r.default_deny, r.version).unwrap_or_else(|e| {
                // Validated on upload; only a schema change could get here. Fail closed.
                tracing::error!(version = r.version, errors = ?e, "the active policy set no longer compiles; denying");
                CompiledSet::deny_all(r.version)
            }),
            None => CompiledSet::deny_all(active),
        });
        tracing::info!(version = active, "policy set activated");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
