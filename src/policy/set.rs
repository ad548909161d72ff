//! A policy set as an admin uploads it: parsed with its own ids, validated
//! against the schema, and sliced by action and principal so that a decision
//! only evaluates the policies that can apply to it.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{ActionConstraint, Policy, PolicyId, PolicySet, PrincipalConstraint, ValidationMode, Validator};

use super::schema::{self, Action};
use crate::domain::Scope;

/// Largest policy source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// Most policies in one set.
pub const MAX_POLICIES: usize = 2_000;
/// Deepest bracket nesting accepted (the parser recurses).
const MAX_NESTING: usize = 64;
/// The policy that makes the default "allow unless forbidden".
pub const DEFAULT_ALLOW_ID: &str = "deputy.default-allow";
/// The `@error` values a forbid may name (RFC 6749 §5.2, RFC 9396 §5).
pub const ERROR_CODES: &[&str] = &[
    "invalid_grant",
    "invalid_scope",
    "invalid_target",
    "invalid_authorization_details",
];

/// A compiled, active-ready policy set.
pub struct CompiledSet {
    /// The stored version (0: none was ever activated).
    pub version: i64,
    /// "deny unless a policy permits" instead of "allow unless one forbids".
    pub default_deny: bool,
    /// The policies' ids, in the order given.
    pub ids: Vec<String>,
    general: HashMap<Action, PolicySet>,
    by_principal: HashMap<(Action, String), PolicySet>,
}

impl CompiledSet {
    /// The built-in set: no policy, allow unless forbidden.
    pub fn builtin() -> CompiledSet {
        // Parses a constant; covered by a unit test.
        compile("", false, 0).unwrap_or_else(|_| CompiledSet::deny_all(0))
    }

    /// Fails closed: what an instance runs when the active set cannot be compiled.
    pub fn deny_all(version: i64) -> CompiledSet {
        CompiledSet {
            version,
            default_deny: true,
            ids: Vec::new(),
            general: HashMap::new(),
            by_principal: HashMap::new(),
        }
    }

    /// The policies that can apply to this action and principal.
    pub fn slice(&self, action: Action, principal: &str) -> Option<&PolicySet> {
        self.by_principal
            .get(&(action, principal.to_owned()))
            .or_else(|| self.general.get(&action))
    }

    /// True when no admin policy can apply to this action and principal, so
    /// the decision is the set's default (checked before building a request).
    pub fn is_trivial(&self, action: Action, principal: &str) -> bool {
        match self.slice(action, principal) {
            None => self.default_deny,
            Some(p) => p.policies().all(|p| p.id().to_string() == DEFAULT_ALLOW_ID),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Parses, checks and validates a policy source. Errors are diagnostics an
/// admin can act on (Cedar's own, or Deputy's rules about ids and annotations).
pub fn compile(source: &str, default_deny: bool, version: i64) -> Result<CompiledSet, Vec<String>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![format!(
            "the policy source is larger than {} KiB",
            MAX_SOURCE_BYTES / 1024
        )]);
    }
    if nesting(source) > MAX_NESTING {
        return Err(vec![format!(
            "the policy source nests brackets deeper than {MAX_NESTING}"
        )]);
    }
    let parsed = PolicySet::from_str(source).map_err(|e| {
        let mut all: Vec<String> = e.iter().map(|err| err.to_string()).collect();
        if all.is_empty() {
            all.push(e.to_string());
        }
        all
    })?;
    if parsed.num_of_templates() > 0 {
        return Err(vec!["policy templates are not supported: write each policy out".into()]);
    }
    if parsed.num_of_policies() > MAX_POLICIES {
        return Err(vec![format!("a policy set holds at most {MAX_POLICIES} policies")]);
    }
    // `PolicySet::from_str` names policies policy0…; Deputy keeps the admin's @id.
    let mut policies: Vec<(usize, Policy)> = Vec::new();
    let mut errors = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for p in parsed.policies() {
        let position: usize = p
            .id()
            .to_string()
            .trim_start_matches("policy")
            .parse()
            .unwrap_or(usize::MAX);
        match check_policy(p) {
            Ok(id) if ids.contains(&id) => errors.push(format!("the policy id {id} is used twice")),
            Ok(id) => {
                ids.push(id.clone());
                policies.push((position, p.new_id(PolicyId::new(&id))));
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    policies.sort_by_key(|(i, _)| *i);
    let mut all = PolicySet::new();
    for (_, p) in &policies {
        all.add(p.clone()).map_err(|e| vec![e.to_string()])?;
    }
    let schema = schema::schema().map_err(|e| vec![e])?;
    let validation = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
    if !validation.validation_passed() {
        return Err(validation.validation_errors().map(|e| format!("{e}")).collect());
    }
    let ordered: Vec<String> = policies.iter().map(|(_, p)| p.id().to_string()).collect();
    let default = if default_deny {
        None
    } else {
        let p = Policy::parse(
            Some(PolicyId::new(DEFAULT_ALLOW_ID)),
            "permit(principal, action, resource);",
        )
        .map_err(|e| vec![e.to_string()])?;
        Some(p)
    };
    let mut general = HashMap::new();
    let mut by_principal: HashMap<(Action, String), PolicySet> = HashMap::new();
    for action in Action::ALL {
        let uid = action_uid(action);
        let applies: Vec<&Policy> = policies
            .iter()
            .map(|(_, p)| p)
            .chain(default.iter())
            .filter(|p| match p.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => a.to_string() == uid,
                ActionConstraint::In(list) => list.iter().any(|a| a.to_string() == uid),
            })
            .collect();
        let mut base = PolicySet::new();
        for p in applies.iter().filter(|p| principal_key(p).is_none()) {
            base.add((*p).clone()).map_err(|e| vec![e.to_string()])?;
        }
        for p in applies.iter() {
            if let Some(key) = principal_key(p) {
                let set = by_principal.entry((action, key)).or_insert_with(|| base.clone());
                set.add((*p).clone()).map_err(|e| vec![e.to_string()])?;
            }
        }
        general.insert(action, base);
    }
    Ok(CompiledSet {
        version,
        default_deny,
        ids: ordered,
        general,
        by_principal,
    })
}

/// The deepest nesting of brackets outside string literals.
fn nesting(source: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for c in source.chars() {
        match (in_string, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => in_string = false,
            (true, _) => {}
            (false, '"') => in_string = true,
            (false, '(' | '[' | '{') => {
                depth += 1;
                max = max.max(depth);
            }
            (false, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

pub fn action_uid(a: Action) -> String {
    format!("Deputy::Action::\"{}\"", a.as_str())
}

/// `principal == X` (or `in X`: Deputy's principals have no parents) applies to X only.
fn principal_key(p: &Policy) -> Option<String> {
    match p.principal_constraint() {
        PrincipalConstraint::Eq(uid) | PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid) => {
            Some(uid.to_string())
        }
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
    }
}

/// Deputy's rules for one policy: an `@id` of printable ASCII (it appears in
/// error descriptions and the audit), and annotations it understands.
fn check_policy(p: &Policy) -> Result<String, String> {
    let Some(id) = p.annotation("id") else {
        return Err(format!(
            "every policy needs an @id(\"...\") annotation (the one at {} has none)",
            p.id()
        ));
    };
    let printable = id
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    if id.is_empty() || id.len() > 128 || !printable || id.starts_with("deputy.") {
        return Err(format!(
            "policy id {id:?} must be 1 to 128 printable ASCII characters without quotes or backslashes, not starting with deputy."
        ));
    }
    if let Some(ttl) = p.annotation("ttl") {
        if !ttl.parse::<i64>().is_ok_and(|t| t > 0) {
            return Err(format!("policy {id}: @ttl must be a positive number of seconds"));
        }
    }
    if let Some(scope) = p.annotation("scope") {
        Scope::parse(scope).map_err(|e| format!("policy {id}: @scope: {e}"))?;
    }
    if let Some(code) = p.annotation("error") {
        if !ERROR_CODES.contains(&code) {
            return Err(format!("policy {id}: @error must be one of {}", ERROR_CODES.join(", ")));
        }
    }
    Ok(id.to_owned())
}
