//! What runtime policy adds to a token exchange: one Cedar decision (two for a
//! delegation) with 0, 10, 100 and 1,000 active policies, measured on the
//! engine Deputy runs (`PolicyEngine::decide`, building the entities and the
//! context included), on one core.
//!
//! Run pinned:
//!     taskset -c 0 cargo bench --bench policy_cost
//!
//! Two policy mixes per size:
//! - "realistic": nine in ten policies name one agent (`principal == Agent::"aN"`),
//!   so slicing by principal leaves only the generic tenth to evaluate;
//! - "generic": every policy applies to every agent (the worst case).
//!
//! Env: POLICY_COST_N (decisions per size, default 20000). Prints a markdown
//! table: p50, p99 and decisions/s per size and mix.

use std::hint::black_box;
use std::time::Instant;

use deputy::domain::{
    Agent, AgentStatus, AuthMethod, AuthorizationDetails, Client, ClientId, ResourceUri, Scope, User, UserId,
};
use deputy::policy::{set, Action, PolicyEngine, PolicyInput, Principal, Target};

const API: &str = "https://api.example.com";

fn policies(n: usize, generic_share: usize) -> String {
    (0..n)
        .map(|i| {
            if i % 10 < generic_share {
                format!(
                    "@id(\"g{i}\") forbid (principal, action == Deputy::Action::\"token_exchange\", resource) \
                     when {{ context.authorization_details.totals has EUR && \
                     context.authorization_details.totals.EUR.greaterThan(decimal(\"{}.0\")) }};\n",
                    1000 + i
                )
            } else {
                format!(
                    "@id(\"a{i}\") forbid (principal == Deputy::Agent::\"a{i}\", action, resource) \
                     when {{ context.scopes.contains(\"admin\") }};\n"
                )
            }
        })
        .collect()
}

fn main() {
    let n: usize = std::env::var("POLICY_COST_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let engine = PolicyEngine::new("Europe/Berlin").expect("engine");
    let agent = Agent {
        id: "planner".into(),
        client_id: ClientId::parse("planner-client").expect("id"),
        name: "Trip planner".into(),
        description: String::new(),
        publisher: "Acme Agents".into(),
        homepage: None,
        status: AgentStatus::Active,
        jwks: None,
        allowed_scopes: Scope::parse("read write").expect("scope"),
        allowed_audiences: vec![ResourceUri::parse(API).expect("uri")],
        max_token_ttl: 120,
        max_delegation_depth: 2,
        may_delegate_to: vec!["booker".into()],
        created_at: 0,
    };
    let client = Client {
        id: ClientId::parse("planner-client").expect("id"),
        name: "Trip planner".into(),
        secret_hash: None,
        redirect_uris: vec![],
        grant_types: vec![],
        scope: Scope::parse("openid read write").expect("scope"),
        auth_method: AuthMethod::ClientSecretBasic,
        jwks: None,
        resources: vec![ResourceUri::parse(API).expect("uri")],
        access_token_ttl: None,
        created_at: 0,
        updated_at: 0,
        post_logout_redirect_uris: vec![],
        id_token_alg: deputy::tokens::Alg::ES256,
        agents: vec![],
    };
    let user = User {
        id: UserId::from_stored("2f1c0f0e-5d2a-4b7e-9a51-0c1d2e3f4a5b".into()),
        username: "alice".into(),
        display_name: "Alice".into(),
        email: String::new(),
        password_hash: String::new(),
        disabled: false,
        created_at: 0,
        groups: vec!["staff".into()],
    };
    let details = AuthorizationDetails::parse(
        r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"120.00"},
             "creditorAccount":{"iban":"DE02100100109307118603"}},{"type":"tool_invocation","tool":"calendar.create_event"}]"#,
    )
    .expect("details");
    let scope = Scope::parse("read").expect("scope");
    let chain = vec!["planner".to_owned()];
    println!("| policies | mix | p50 µs | p99 µs | decisions/s |");
    println!("|---|---|---|---|---|");
    for size in [0usize, 10, 100, 1000] {
        for (mix, share) in [("realistic", 1usize), ("generic", 10)] {
            if size == 0 && mix == "generic" {
                continue;
            }
            let compiled = set::compile(&policies(size, share), false, 1).expect("compile");
            engine.install(compiled);
            let now = deputy::clock::now();
            let input = PolicyInput {
                action: Action::TokenExchange,
                principal: Principal::Agent(&agent),
                resource: Target::Resource(API),
                client: &client,
                user: Some(&user),
                grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
                scope: &scope,
                audience: API,
                details: Some(&details),
                ttl: 120,
                chain: &chain,
                address: Some("127.0.0.1".parse().expect("ip")),
                sender_constrained: false,
                now,
            };
            for _ in 0..n / 10 {
                black_box(engine.decide(&input));
            }
            let mut times = Vec::with_capacity(n);
            let start = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                let v = engine.decide(black_box(&input));
                times.push(t.elapsed().as_nanos() as u64);
                assert!(v.allowed);
            }
            let total = start.elapsed();
            times.sort_unstable();
            let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)] as f64 / 1000.0;
            println!(
                "| {size} | {mix} | {:.1} | {:.1} | {:.0} |",
                pct(0.50),
                pct(0.99),
                n as f64 / total.as_secs_f64()
            );
        }
    }
}
