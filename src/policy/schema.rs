//! The Cedar schema Deputy publishes (`docs/policy-schema.cedarschema`, and
//! `GET /admin/policies/schema`): the entities a decision knows, one action per
//! decision point, and the context Deputy computes for each request.

use std::sync::OnceLock;

use cedar_policy::Schema;

use crate::domain::authorization_details::CURRENCIES;

/// The decision points, as Cedar actions (`Deputy::Action::"token_exchange"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `/authorize`, before the consent screen is shown or an earlier approval is used.
    Consent,
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
    TokenExchange,
    /// A re-exchange hands the token on: the principal is the current actor, the resource the next agent.
    Delegate,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Consent,
        Action::ClientCredentials,
        Action::AuthorizationCode,
        Action::RefreshToken,
        Action::TokenExchange,
        Action::Delegate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Consent => "consent",
            Action::ClientCredentials => "client_credentials",
            Action::AuthorizationCode => "authorization_code",
            Action::RefreshToken => "refresh_token",
            Action::TokenExchange => "token_exchange",
            Action::Delegate => "delegate",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

const HEAD: &str = r#"// Deputy's policy schema. Entities are built by Deputy at each decision from
// its registry; the context is computed for the request at hand.
namespace Deputy {
  // A person. `groups` is set by an admin (import file or `deputy user groups`).
  entity User = { username: String, groups: Set<String> };
  // An OAuth client.
  entity Client = { client_id: String, scopes: Set<String>, resources: Set<String> };
  // A registered agent, with its publisher and ceilings.
  entity Agent = {
    client_id: String,
    publisher: String,
    scopes: Set<String>,
    audiences: Set<String>,
    max_token_ttl: Long,
    max_delegation_depth: Long,
  };
  // An audience (RFC 8707 resource); its id is the URI.
  entity Resource = { uri: String };

  // The time as Deputy computes it in the configured zone (policy.time_zone):
  // ISO weekday (1 = Monday … 7 = Sunday), minute of the day (0 … 1439).
  type Time = { weekday: Long, hour: Long, minute_of_day: Long, date: String, zone: String };
"#;

const TAIL: &str = r#"
  // RFC 9396 details of the request, flattened: Cedar has no loops, so Deputy
  // collects each field over every entry, and sums payments per currency.
  type AuthorizationDetails = {
    types: Set<String>,
    tools: Set<String>,
    servers: Set<String>,
    creditors: Set<String>,
    accounts: Set<String>,
    actions: Set<String>,
    locations: Set<String>,
    currencies: Set<String>,
    totals: Totals,
  };

  type Context = {
    user?: User,
    client: Client,
    grant_type: String,
    scopes: Set<String>,
    // The part before the first colon of each scope (payments:initiate → payments).
    scope_families: Set<String>,
    audience: String,
    authorization_details: AuthorizationDetails,
    has_authorization_details: Bool,
    // Seconds the token would live, before any policy lowers it.
    ttl: Long,
    // Agent ids of the delegation chain, outermost (current actor) first, and its length.
    chain: Set<String>,
    depth: Long,
    time: Time,
    address?: ipaddr,
    sender_constrained: Bool,
  };

  action consent appliesTo { principal: [Client, Agent], resource: Resource, context: Context };
  action client_credentials appliesTo { principal: [Client, Agent], resource: Resource, context: Context };
  action authorization_code appliesTo { principal: [Client, Agent], resource: Resource, context: Context };
  action refresh_token appliesTo { principal: [Client, Agent], resource: Resource, context: Context };
  action token_exchange appliesTo { principal: Agent, resource: Resource, context: Context };
  // Handing a token on: the principal is the current actor, the resource the next agent.
  action delegate appliesTo { principal: Agent, resource: Agent, context: Context };
}
"#;

/// The schema's source text (Cedar schema syntax).
pub fn source() -> &'static str {
    static SRC: OnceLock<String> = OnceLock::new();
    SRC.get_or_init(|| {
        let totals: Vec<String> = CURRENCIES.iter().map(|c| format!("{c}?: decimal")).collect();
        format!(
            "{HEAD}\n  // Payments summed per ISO 4217 currency, e.g. context.authorization_details.totals.EUR.\n  type Totals = {{ {} }};\n{TAIL}",
            totals.join(", ")
        )
    })
}

/// The parsed schema. The text is a constant, checked by a unit test.
pub fn schema() -> Result<&'static Schema, String> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Schema::from_cedarschema_str(source())
                .map(|(s, _warnings)| s)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}
