//! What a decision is about, turned into Cedar entities and a context.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;

use cedar_policy::{Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression};

use super::schema::Action;
use super::set::action_uid;
use crate::domain::authorization_details::Detail;
use crate::domain::{Agent, AuthorizationDetails, Client, Scope, User};

/// The party a decision is about.
pub enum Principal<'a> {
    Client(&'a Client),
    Agent(&'a Agent),
}

/// What it would reach: an audience, or (for `delegate`) the next agent.
pub enum Target<'a> {
    Resource(&'a str),
    Agent(&'a Agent),
}

/// Everything a policy may look at; the grants fill it in.
pub struct PolicyInput<'a> {
    pub action: Action,
    pub principal: Principal<'a>,
    pub resource: Target<'a>,
    pub client: &'a Client,
    pub user: Option<&'a User>,
    pub grant_type: &'a str,
    pub scope: &'a Scope,
    pub audience: &'a str,
    pub details: Option<&'a AuthorizationDetails>,
    /// Seconds the token would live.
    pub ttl: i64,
    /// Agent ids of the chain the token would carry, current actor first.
    pub chain: &'a [String],
    pub address: Option<IpAddr>,
    pub sender_constrained: bool,
    pub now: i64,
}

/// The local time fields of the context.
pub struct LocalTime {
    pub weekday: i64,
    pub hour: i64,
    pub minute_of_day: i64,
    pub date: String,
    pub zone: String,
}

impl LocalTime {
    /// `now` (Unix seconds) in the zone, daylight saving included.
    pub fn at(now: i64, zone: &jiff::tz::TimeZone, name: &str) -> LocalTime {
        let ts = jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let z = ts.to_zoned_datetime(zone.clone());
        LocalTime {
            weekday: i64::from(z.weekday().to_monday_one_offset()),
            hour: i64::from(z.hour()),
            minute_of_day: i64::from(z.hour()) * 60 + i64::from(z.minute()),
            date: z.date().to_string(),
            zone: name.to_owned(),
        }
    }
}

/// The principal's uid as [`super::set::CompiledSet::slice`] keys it (built the
/// same way as the request's, so the two never disagree).
pub fn principal_key(input: &PolicyInput<'_>) -> Result<String, String> {
    Ok(match input.principal {
        Principal::Client(c) => client_uid(c.id.as_str())?.to_string(),
        Principal::Agent(a) => agent_uid(&a.id)?.to_string(),
    })
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, String> {
    let name = EntityTypeName::from_str(ty).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(name, EntityId::new(id)))
}

pub fn agent_uid(id: &str) -> Result<EntityUid, String> {
    uid("Deputy::Agent", id)
}

pub fn client_uid(id: &str) -> Result<EntityUid, String> {
    uid("Deputy::Client", id)
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(string))
}

fn entity(uid: EntityUid, attrs: Vec<(&str, RestrictedExpression)>) -> Result<Entity, String> {
    let attrs: HashMap<String, RestrictedExpression> = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Entity::new(uid, attrs, HashSet::new()).map_err(|e| e.to_string())
}

fn agent_entity(a: &Agent) -> Result<Entity, String> {
    entity(
        agent_uid(&a.id)?,
        vec![
            ("client_id", string(a.client_id.as_str())),
            ("publisher", string(&a.publisher)),
            ("scopes", strings(a.allowed_scopes.iter())),
            ("audiences", strings(a.allowed_audiences.iter().map(|r| r.as_str()))),
            ("max_token_ttl", RestrictedExpression::new_long(a.max_token_ttl)),
            (
                "max_delegation_depth",
                RestrictedExpression::new_long(a.max_delegation_depth),
            ),
        ],
    )
}

fn client_entity(c: &Client) -> Result<Entity, String> {
    entity(
        client_uid(c.id.as_str())?,
        vec![
            ("client_id", string(c.id.as_str())),
            ("scopes", strings(c.scope.iter())),
            ("resources", strings(c.resources.iter().map(|r| r.as_str()))),
        ],
    )
}

fn user_entity(u: &User) -> Result<Entity, String> {
    entity(
        uid("Deputy::User", u.id.as_str())?,
        vec![
            ("username", string(&u.username)),
            ("groups", strings(u.groups.iter().map(String::as_str))),
        ],
    )
}

/// RFC 9396 details flattened for Cedar, with payments summed per currency.
fn details_record(d: Option<&AuthorizationDetails>) -> Result<RestrictedExpression, String> {
    let mut sets: [(&str, BTreeSet<String>); 8] = [
        ("types", BTreeSet::new()),
        ("tools", BTreeSet::new()),
        ("servers", BTreeSet::new()),
        ("creditors", BTreeSet::new()),
        ("accounts", BTreeSet::new()),
        ("actions", BTreeSet::new()),
        ("locations", BTreeSet::new()),
        ("currencies", BTreeSet::new()),
    ];
    let mut totals = Vec::new();
    if let Some(d) = d {
        for e in d.entries() {
            sets[0].1.insert(e.type_name().to_owned());
            let common = match e {
                Detail::Payment(p) => {
                    sets[3].1.insert(p.creditor_account.iban.clone());
                    sets[7].1.insert(p.instructed_amount.currency.clone());
                    &p.common
                }
                Detail::AccountInformation(a) => {
                    sets[4].1.extend(a.accounts.iter().map(|x| x.iban.clone()));
                    &a.common
                }
                Detail::Tool(t) => {
                    sets[1].1.insert(t.tool.clone());
                    sets[2].1.extend(t.server.iter().cloned());
                    &t.common
                }
            };
            sets[5].1.extend(common.actions.iter().flatten().cloned());
            sets[6].1.extend(common.locations.iter().flatten().cloned());
        }
        for (currency, total) in d.payment_totals() {
            // Cedar decimals hold four places; amounts are validated to fit.
            let text = format!("{:.4}", total);
            totals.push((currency, RestrictedExpression::new_decimal(text)));
        }
    }
    let mut fields: Vec<(String, RestrictedExpression)> = sets
        .into_iter()
        .map(|(k, v)| (k.to_owned(), strings(v.iter().map(String::as_str))))
        .collect();
    fields.push((
        "totals".into(),
        RestrictedExpression::new_record(totals).map_err(|e| e.to_string())?,
    ));
    RestrictedExpression::new_record(fields).map_err(|e| e.to_string())
}

/// The Cedar request and entities for an input, at a local time.
pub fn build(input: &PolicyInput<'_>, time: &LocalTime) -> Result<(EntityUid, Request, Entities), String> {
    let mut entities = vec![client_entity(input.client)?];
    let principal = match input.principal {
        Principal::Client(c) => {
            if c.id != input.client.id {
                entities.push(client_entity(c)?);
            }
            client_uid(c.id.as_str())?
        }
        Principal::Agent(a) => {
            entities.push(agent_entity(a)?);
            agent_uid(&a.id)?
        }
    };
    let resource = match input.resource {
        Target::Resource(r) => {
            let u = uid("Deputy::Resource", r)?;
            entities.push(entity(u.clone(), vec![("uri", string(r))])?);
            u
        }
        Target::Agent(a) => {
            entities.push(agent_entity(a)?);
            agent_uid(&a.id)?
        }
    };
    let mut ctx: Vec<(String, RestrictedExpression)> = vec![
        (
            "client".into(),
            RestrictedExpression::new_entity_uid(client_uid(input.client.id.as_str())?),
        ),
        ("grant_type".into(), string(input.grant_type)),
        ("scopes".into(), strings(input.scope.iter())),
        (
            "scope_families".into(),
            strings(input.scope.iter().filter_map(|s| s.split_once(':').map(|(f, _)| f))),
        ),
        ("audience".into(), string(input.audience)),
        ("authorization_details".into(), details_record(input.details)?),
        (
            "has_authorization_details".into(),
            RestrictedExpression::new_bool(input.details.is_some()),
        ),
        ("ttl".into(), RestrictedExpression::new_long(input.ttl)),
        ("chain".into(), strings(input.chain.iter().map(String::as_str))),
        ("depth".into(), RestrictedExpression::new_long(input.chain.len() as i64)),
        (
            "time".into(),
            RestrictedExpression::new_record([
                ("weekday".to_owned(), RestrictedExpression::new_long(time.weekday)),
                ("hour".to_owned(), RestrictedExpression::new_long(time.hour)),
                (
                    "minute_of_day".to_owned(),
                    RestrictedExpression::new_long(time.minute_of_day),
                ),
                ("date".to_owned(), string(&time.date)),
                ("zone".to_owned(), string(&time.zone)),
            ])
            .map_err(|e| e.to_string())?,
        ),
        (
            "sender_constrained".into(),
            RestrictedExpression::new_bool(input.sender_constrained),
        ),
    ];
    if let Some(u) = input.user {
        entities.push(user_entity(u)?);
        ctx.push((
            "user".into(),
            RestrictedExpression::new_entity_uid(uid("Deputy::User", u.id.as_str())?),
        ));
    }
    if let Some(ip) = input.address {
        ctx.push(("address".into(), RestrictedExpression::new_ip(ip.to_string())));
    }
    let context = Context::from_pairs(ctx).map_err(|e| e.to_string())?;
    let action = EntityUid::from_str(&action_uid(input.action)).map_err(|e| e.to_string())?;
    let request = Request::new(principal.clone(), action, resource, context, None).map_err(|e| e.to_string())?;
    let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
    Ok((principal, request, entities))
}
