//! The engine on its own: compilation rules, the shipped example guardrails,
//! shaping annotations, fail-closed evaluation, slicing by principal.

use serde_json::json;

use super::*;
use crate::domain::{
    Agent, AgentStatus, AuthMethod, AuthorizationDetails, Client, ClientId, ResourceUri, Scope, User, UserId,
};

const EXAMPLES: &str = include_str!("../../docs/policies/examples.cedar");
const BANK: &str = "https://bank.example";
const API: &str = "https://api.example.com";

fn agent(id: &str, publisher: &str) -> Agent {
    Agent {
        id: id.into(),
        client_id: ClientId::parse(&format!("{id}-client")).expect("id"),
        name: id.into(),
        description: String::new(),
        publisher: publisher.into(),
        homepage: None,
        status: AgentStatus::Active,
        jwks: None,
        allowed_scopes: Scope::parse("read payments:initiate").expect("scope"),
        allowed_audiences: vec![ResourceUri::parse(BANK).expect("uri")],
        max_token_ttl: 300,
        max_delegation_depth: 3,
        may_delegate_to: vec![],
        created_at: 0,
    }
}

fn client() -> Client {
    Client {
        id: ClientId::parse("planner-client").expect("id"),
        name: "Planner".into(),
        secret_hash: None,
        redirect_uris: vec![],
        grant_types: vec![],
        scope: Scope::parse("read payments:initiate").expect("scope"),
        auth_method: AuthMethod::None,
        jwks: None,
        resources: vec![],
        access_token_ttl: None,
        created_at: 0,
        updated_at: 0,
        post_logout_redirect_uris: vec![],
        id_token_alg: crate::tokens::Alg::RS256,
        agents: vec![],
    }
}

fn user(groups: &[&str]) -> User {
    User {
        id: UserId::from_stored("8d3c8a6e-0000-4000-8000-000000000001".into()),
        username: "alice".into(),
        display_name: "Alice".into(),
        email: String::new(),
        password_hash: String::new(),
        disabled: false,
        created_at: 0,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn pay(amount: &str) -> AuthorizationDetails {
    AuthorizationDetails::from_value(&json!([{"type": "payment_initiation",
        "instructedAmount": {"currency": "EUR", "amount": amount}, "creditorAccount": {"iban": "DE02100100109307118603"}}]))
    .expect("details")
}

struct Case<'a> {
    action: Action,
    agent: &'a Agent,
    next: Option<&'a Agent>,
    user: &'a User,
    scope: &'a str,
    audience: &'a str,
    details: Option<&'a AuthorizationDetails>,
}

impl Case<'_> {
    fn decide(&self, engine: &PolicyEngine, set: &CompiledSet, at: i64) -> Verdict {
        let c = client();
        let scope = Scope::parse(self.scope).expect("scope");
        let chain = vec![self.agent.id.clone()];
        let input = PolicyInput {
            action: self.action,
            principal: Principal::Agent(self.agent),
            resource: match self.next {
                Some(n) => Target::Agent(n),
                None => Target::Resource(self.audience),
            },
            client: &c,
            user: Some(self.user),
            grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
            scope: &scope,
            audience: self.audience,
            details: self.details,
            ttl: 120,
            chain: &chain,
            address: Some("127.0.0.1".parse().expect("ip")),
            sender_constrained: false,
            now: at,
        };
        engine.decide_with(set, &input, &engine.local_time(at))
    }
}

// 2026-12-02 (a Wednesday) and 2026-12-05 (a Saturday), noon UTC.
const WEDNESDAY: i64 = 1_796_212_800;
const SATURDAY: i64 = 1_796_472_000;

fn exchange<'a>(agent: &'a Agent, user: &'a User) -> Case<'a> {
    Case {
        action: Action::TokenExchange,
        agent,
        next: None,
        user,
        scope: "read",
        audience: API,
        details: None,
    }
}

#[test]
fn the_schema_parses_and_the_builtin_set_allows() {
    assert!(schema::schema().is_ok(), "{:?}", schema::schema().err());
    let engine = PolicyEngine::new("UTC").expect("engine");
    let set = CompiledSet::builtin();
    let (a, u) = (agent("planner", "Acme"), user(&[]));
    let v = exchange(&a, &u).decide(&engine, &set, WEDNESDAY);
    assert!(v.allowed && v.policy_ids.is_empty() && v.version == 0, "{v:?}");
}

#[test]
fn the_published_schema_file_is_the_one_deputy_uses() {
    // docs/policy-schema.cedarschema is `deputy policy schema`'s output; keep it so.
    assert_eq!(include_str!("../../docs/policy-schema.cedarschema"), schema::source());
}

#[test]
fn the_request_deputy_builds_conforms_to_the_schema() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let (a, u, c) = (agent("planner", "Acme"), user(&["finance"]), client());
    let d = pay("12.5");
    let scope = Scope::parse("read payments:initiate").expect("scope");
    let chain = vec!["booker".to_owned(), "planner".to_owned()];
    let input = PolicyInput {
        action: Action::TokenExchange,
        principal: Principal::Agent(&a),
        resource: Target::Resource(BANK),
        client: &c,
        user: Some(&u),
        grant_type: "x",
        scope: &scope,
        audience: BANK,
        details: Some(&d),
        ttl: 60,
        chain: &chain,
        address: Some("10.0.0.1".parse().expect("ip")),
        sender_constrained: true,
        now: WEDNESDAY,
    };
    let (_, request, entities) = input::build(&input, &engine.local_time(WEDNESDAY)).expect("built");
    let schema = schema::schema().expect("schema");
    let context = request.context().expect("context").clone();
    let action: cedar_policy::EntityUid = set::action_uid(Action::TokenExchange).parse().expect("uid");
    cedar_policy::Request::new(
        request.principal().expect("principal").clone(),
        action,
        request.resource().expect("resource").clone(),
        context,
        Some(schema),
    )
    .expect("the context conforms to the schema");
    cedar_policy::Entities::from_entities(entities.iter().cloned(), Some(schema)).expect("the entities conform");
}

#[test]
fn the_example_guardrails_compile() {
    let set = set::compile(EXAMPLES, false, 7).expect("examples compile");
    assert_eq!(
        set.ids,
        [
            "max-500-eur-per-token",
            "booker-working-days-only",
            "no-subdelegation-shady-agents",
            "payments-finance-only",
            "bank-tokens-30s"
        ]
    );
}

#[test]
fn no_agent_moves_more_than_500_eur_in_one_token() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let set = set::compile(EXAMPLES, false, 1).expect("compile");
    let (a, u) = (agent("planner", "Acme"), user(&["finance"]));
    let (ok, over) = (pay("500.00"), pay("500.01"));
    let case = |d| Case {
        scope: "read",
        details: Some(d),
        ..exchange(&a, &u)
    };
    assert!(case(&ok).decide(&engine, &set, WEDNESDAY).allowed);
    let v = case(&over).decide(&engine, &set, WEDNESDAY);
    assert!(!v.allowed);
    assert_eq!(v.policy_ids, ["max-500-eur-per-token"]);
    assert_eq!(v.error.as_deref(), Some("invalid_authorization_details"));
    assert_eq!(v.explain(), "denied by policy max-500-eur-per-token");
}

#[test]
fn the_booker_acts_only_on_working_days_in_berlin() {
    let engine = PolicyEngine::new("Europe/Berlin").expect("engine");
    let set = set::compile(EXAMPLES, false, 1).expect("compile");
    let (booker, planner, u) = (agent("booker", "Acme"), agent("planner", "Acme"), user(&[]));
    assert!(exchange(&booker, &u).decide(&engine, &set, WEDNESDAY).allowed);
    let v = exchange(&booker, &u).decide(&engine, &set, SATURDAY);
    assert_eq!(
        (v.allowed, v.policy_ids.as_slice()),
        (false, &["booker-working-days-only".to_owned()][..])
    );
    assert!(exchange(&planner, &u).decide(&engine, &set, SATURDAY).allowed);
    // Friday 23:30 UTC is already Saturday in Berlin (winter time, UTC+1).
    let friday_late_utc = SATURDAY - 12 * 3600 - 30 * 60;
    assert!(!exchange(&booker, &u).decide(&engine, &set, friday_late_utc).allowed);
    let utc = PolicyEngine::new("UTC").expect("engine");
    assert!(exchange(&booker, &u).decide(&utc, &set, friday_late_utc).allowed);
}

#[test]
fn agents_of_a_publisher_may_not_sub_delegate() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let set = set::compile(EXAMPLES, false, 1).expect("compile");
    let (shady, good, next, u) = (
        agent("shady", "Shady Agents Ltd"),
        agent("planner", "Acme"),
        agent("helper", "Acme"),
        user(&[]),
    );
    let delegate = |from| Case {
        action: Action::Delegate,
        next: Some(&next),
        ..exchange(from, &u)
    };
    let v = delegate(&shady).decide(&engine, &set, WEDNESDAY);
    assert_eq!(
        (v.allowed, v.policy_ids.as_slice()),
        (false, &["no-subdelegation-shady-agents".to_owned()][..])
    );
    assert!(delegate(&good).decide(&engine, &set, WEDNESDAY).allowed);
    // The shady agent may still act itself.
    assert!(exchange(&shady, &u).decide(&engine, &set, WEDNESDAY).allowed);
}

#[test]
fn payment_scopes_only_for_the_finance_group() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let set = set::compile(EXAMPLES, false, 1).expect("compile");
    let a = agent("planner", "Acme");
    let (finance, other) = (user(&["finance"]), user(&["sales"]));
    let case = |u| Case {
        scope: "read payments:initiate",
        ..exchange(&a, u)
    };
    assert!(case(&finance).decide(&engine, &set, WEDNESDAY).allowed);
    let v = case(&other).decide(&engine, &set, WEDNESDAY);
    assert_eq!((v.allowed, v.error.as_deref()), (false, Some("invalid_scope")));
    assert!(exchange(&a, &other).decide(&engine, &set, WEDNESDAY).allowed);
}

#[test]
fn bank_tokens_live_at_most_30_seconds() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let set = set::compile(EXAMPLES, false, 1).expect("compile");
    let (a, u) = (agent("planner", "Acme"), user(&[]));
    let v = Case {
        audience: BANK,
        ..exchange(&a, &u)
    }
    .decide(&engine, &set, WEDNESDAY);
    assert_eq!((v.allowed, v.max_ttl), (true, Some(30)));
    assert_eq!(v.policy_ids, ["bank-tokens-30s"]);
    assert_eq!(exchange(&a, &u).decide(&engine, &set, WEDNESDAY).max_ttl, None);
}

#[test]
fn default_deny_needs_a_permit_and_scope_annotations_intersect() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let src = r#"
        @id("planner-reads") @scope("read write") @ttl("60")
        permit (principal == Deputy::Agent::"planner", action == Deputy::Action::"token_exchange", resource);
        @id("reads-only") @scope("read")
        permit (principal, action, resource) when { context.scopes.contains("read") };
    "#;
    let set = set::compile(src, true, 3).expect("compile");
    let (planner, booker, u) = (agent("planner", "Acme"), agent("booker", "Acme"), user(&[]));
    let v = exchange(&planner, &u).decide(&engine, &set, WEDNESDAY);
    assert!(v.allowed);
    assert_eq!(v.scope, Some(Scope::parse("read").expect("scope")));
    assert_eq!(v.max_ttl, Some(60));
    let v = Case {
        scope: "write",
        ..exchange(&booker, &u)
    }
    .decide(&engine, &set, WEDNESDAY);
    assert_eq!((v.allowed, v.explain()), (false, "no policy permits it".to_owned()));
}

#[test]
fn a_policy_that_fails_to_evaluate_denies() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    // Valid against the schema, but it overflows at run time: a guardrail
    // that cannot be evaluated must deny, not be skipped.
    let src =
        r#"@id("needs-user") forbid (principal, action, resource) when { context.ttl * 9223372036854775807 > 0 };"#;
    let set = set::compile(src, false, 1).expect("compile");
    let c = client();
    let scope = Scope::parse("read").expect("scope");
    let input = PolicyInput {
        action: Action::ClientCredentials,
        principal: Principal::Client(&c),
        resource: Target::Resource(API),
        client: &c,
        user: None,
        grant_type: "client_credentials",
        scope: &scope,
        audience: API,
        details: None,
        ttl: 60,
        chain: &[],
        address: None,
        sender_constrained: false,
        now: WEDNESDAY,
    };
    let v = engine.decide_with(&set, &input, &engine.local_time(WEDNESDAY));
    assert_eq!(
        (v.allowed, v.policy_ids.as_slice()),
        (false, &["needs-user".to_owned()][..])
    );
}

#[test]
fn bad_policy_sources_are_refused_with_diagnostics() {
    for (case, src, says) in [
        ("syntax", "permit(principal, action resource);".to_owned(), ""),
        ("no id", "permit(principal, action, resource);".to_owned(), "@id"),
        (
            "duplicate id",
            r#"@id("a") permit(principal, action, resource); @id("a") forbid(principal, action, resource);"#.to_owned(),
            "used twice",
        ),
        (
            "id with a quote",
            r#"@id("a\"b") permit(principal, action, resource);"#.to_owned(),
            "printable",
        ),
        (
            "reserved id",
            r#"@id("deputy.x") permit(principal, action, resource);"#.to_owned(),
            "deputy.",
        ),
        (
            "schema violation",
            r#"@id("a") forbid(principal, action, resource) when { context.no_such_field };"#.to_owned(),
            "",
        ),
        (
            "bad ttl",
            r#"@id("a") @ttl("soon") permit(principal, action, resource);"#.to_owned(),
            "@ttl",
        ),
        (
            "bad error",
            r#"@id("a") @error("server_error") forbid(principal, action, resource);"#.to_owned(),
            "@error",
        ),
        ("too large", "/".repeat(set::MAX_SOURCE_BYTES + 1), "larger"),
        (
            "too many",
            (0..=set::MAX_POLICIES)
                .map(|i| format!("@id(\"p{i}\")forbid(principal,action,resource);"))
                .collect::<String>(),
            "",
        ),
        (
            "deep nesting",
            format!(
                "@id(\"a\") forbid(principal, action, resource) when {{ {}true{} }};",
                "(".repeat(5000),
                ")".repeat(5000)
            ),
            "",
        ),
        (
            "template",
            r#"@id("a") permit(principal == ?principal, action, resource);"#.to_owned(),
            "template",
        ),
    ] {
        match set::compile(&src, false, 1) {
            Ok(_) => panic!("{case} was accepted"),
            Err(errors) => {
                assert!(!errors.is_empty(), "{case}");
                assert!(errors.iter().any(|e| e.contains(says)), "{case}: {errors:?}");
            }
        }
    }
}

#[test]
fn principal_specific_policies_apply_to_that_principal_only() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let mut src = String::new();
    for i in 0..200 {
        src.push_str(&format!(
            "@id(\"p{i}\") forbid (principal == Deputy::Agent::\"agent{i}\", action, resource);\n"
        ));
    }
    let set = set::compile(&src, false, 1).expect("compile");
    let u = user(&[]);
    let a5 = agent("agent5", "Acme");
    let v = exchange(&a5, &u).decide(&engine, &set, WEDNESDAY);
    assert_eq!(v.policy_ids, ["p5"]);
    let planner = agent("planner", "Acme");
    assert!(exchange(&planner, &u).decide(&engine, &set, WEDNESDAY).allowed);
    let slice = set
        .slice(Action::TokenExchange, "Deputy::Agent::\"agent5\"")
        .expect("slice");
    assert_eq!(slice.num_of_policies(), 2, "the default allow and p5");
}

#[test]
fn a_set_that_cannot_be_compiled_denies_everything_without_evaluating() {
    let engine = PolicyEngine::new("UTC").expect("engine");
    let (a, u) = (agent("planner", "Acme"), user(&[]));
    let v = exchange(&a, &u).decide(&engine, &CompiledSet::deny_all(4), WEDNESDAY);
    assert_eq!((v.allowed, v.version), (false, 4));
    // The built-in set is decided without building a request: allowed, no policy named.
    let v = exchange(&a, &u).decide(&engine, &CompiledSet::builtin(), WEDNESDAY);
    assert!(v.allowed && v.policy_ids.is_empty());
}
