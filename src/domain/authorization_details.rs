//! RFC 9396 rich authorization requests: the typed `authorization_details`
//! Deputy accepts, and the one rule that decides whether a set of details
//! covers another (consent → token, token → exchanged token, refresh).
//!
//! Three types are supported, each with the common fields of §2.2
//! (`locations`, `actions`, `datatypes`, `identifier`, `privileges`):
//! - `payment_initiation`: `instructedAmount` {`currency`, `amount`} (amount an
//!   exact decimal given as a string), `creditorAccount` {`iban`}, optional
//!   `creditorName` and `remittanceInformationUnstructured`;
//! - `account_information`: `accounts` [{`iban`}] and `actions`;
//! - `tool_invocation`: `tool` (a name, or a prefix ending in `*`), optional
//!   `server` and `arguments` (argument name → the only value allowed).
//!
//! Unknown types and unknown fields are refused: a field Deputy cannot compare
//! is a field a derived token could widen (STANDARDS rule 8). A field that is
//! absent places no restriction, so a request that omits a field its parent
//! has asks for more than the parent holds.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest `authorization_details` parameter accepted, in bytes.
pub const MAX_JSON_BYTES: usize = 8 * 1024;
/// Payments to one creditor in one currency compared exactly (2^n subsets); a
/// larger group is compared conservatively.
const MAX_EXACT_GROUP: usize = 10;
/// Most entries in one `authorization_details` array.
pub const MAX_ENTRIES: usize = 16;
/// Longest string value, and most items in a list.
const MAX_STR: usize = 256;
const MAX_LIST: usize = 32;
/// The types Deputy accepts.
pub const TYPES: &[&str] = &["payment_initiation", "account_information", "tool_invocation"];

/// ISO 4217 currency codes (the active ones, less metals and test codes).
pub const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD",
    "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
    "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD",
    "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF",
    "XCD", "XCG", "XDR", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

const COMMON: &[&str] = &["type", "locations", "actions", "datatypes", "identifier", "privileges"];

/// RFC 9396 §2.2: fields every type may carry. `None` places no restriction.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Common {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatypes: Option<BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    pub currency: String,
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub iban: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentInitiation {
    #[serde(flatten)]
    pub common: Common,
    #[serde(rename = "instructedAmount")]
    pub instructed_amount: Amount,
    #[serde(rename = "creditorAccount")]
    pub creditor_account: Account,
    #[serde(rename = "creditorName", default, skip_serializing_if = "Option::is_none")]
    pub creditor_name: Option<String>,
    #[serde(
        rename = "remittanceInformationUnstructured",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub remittance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInformation {
    #[serde(flatten)]
    pub common: Common,
    pub accounts: BTreeSet<Account>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInvocation {
    #[serde(flatten)]
    pub common: Common,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<BTreeMap<String, Value>>,
}

/// One validated entry of `authorization_details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Payment(PaymentInitiation),
    AccountInformation(AccountInformation),
    Tool(ToolInvocation),
}

/// A validated, non-empty `authorization_details` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationDetails(Vec<Detail>);

impl AuthorizationDetails {
    /// Parses the request parameter (a JSON string). Errors are descriptions
    /// for `invalid_authorization_details` (RFC 9396 §5).
    pub fn parse(s: &str) -> Result<AuthorizationDetails, String> {
        if s.len() > MAX_JSON_BYTES {
            return Err(format!(
                "authorization_details is larger than {} KiB",
                MAX_JSON_BYTES / 1024
            ));
        }
        let v: Value = serde_json::from_str(s).map_err(|_| "authorization_details is not JSON".to_owned())?;
        Self::from_value(&v)
    }

    /// Validates a JSON value (a request, a stored consent or a token claim).
    pub fn from_value(v: &Value) -> Result<AuthorizationDetails, String> {
        let items = v
            .as_array()
            .ok_or_else(|| "authorization_details must be a JSON array".to_owned())?;
        if items.is_empty() {
            return Err("authorization_details is empty".into());
        }
        if items.len() > MAX_ENTRIES {
            return Err(format!("authorization_details has more than {MAX_ENTRIES} entries"));
        }
        let details = items
            .iter()
            .enumerate()
            .map(|(i, item)| Detail::from_value(item).map_err(|e| format!("authorization_details[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuthorizationDetails(details))
    }

    pub fn entries(&self) -> &[Detail] {
        &self.0
    }

    /// The JSON array, as tokens, responses and consents carry it.
    pub fn to_value(&self) -> Value {
        Value::Array(self.0.iter().map(Detail::to_value).collect())
    }

    /// The entries whose indexes are in `keep`, or `None` if none is kept.
    pub fn select(&self, keep: &BTreeSet<usize>) -> Option<AuthorizationDetails> {
        let kept: Vec<Detail> = self
            .0
            .iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, d)| d.clone())
            .collect();
        (!kept.is_empty()).then_some(AuthorizationDetails(kept))
    }

    /// Whether `self` (what a consent or a parent token holds) covers
    /// `requested`: every requested entry is covered in kind by a held entry
    /// of its type, and payments, summed per currency and creditor, stay
    /// within what the held entries that cover them allow. The error says
    /// which requested entry is not covered, and why.
    pub fn covers(&self, requested: &AuthorizationDetails) -> Result<(), String> {
        for (i, r) in requested.0.iter().enumerate() {
            let same_type: Vec<&Detail> = self.0.iter().filter(|h| h.type_name() == r.type_name()).collect();
            if same_type.is_empty() {
                return Err(format!(
                    "authorization_details[{i}]: nothing of type {} was granted",
                    r.type_name()
                ));
            }
            if let Detail::Payment(p) = r {
                let currency = &p.instructed_amount.currency;
                if !same_type
                    .iter()
                    .any(|h| matches!(h, Detail::Payment(hp) if &hp.instructed_amount.currency == currency))
                {
                    return Err(format!(
                        "authorization_details[{i}]: payments in {currency} were not granted (another currency)"
                    ));
                }
            }
            let reasons: Vec<String> = same_type.iter().filter_map(|h| h.covers_in_kind(r).err()).collect();
            if reasons.len() == same_type.len() {
                let why = match reasons.as_slice() {
                    [one] => one.clone(),
                    _ => "no granted entry of that type covers it".into(),
                };
                return Err(format!("authorization_details[{i}] ({}): {why}", r.type_name()));
            }
        }
        self.covers_amounts(requested)
    }

    /// Payments: per (currency, creditor), the requested amounts must fit in
    /// the held ones, each requested payment drawing only on held entries that
    /// cover it in kind. By the supply-demand theorem (Gale 1957) they fit iff
    /// every subset of the requested payments asks at most what the held
    /// entries covering any of them allow; at most [`MAX_ENTRIES`] requested
    /// entries bound the subsets. Exact decimal arithmetic.
    fn covers_amounts(&self, requested: &AuthorizationDetails) -> Result<(), String> {
        let mut groups: BTreeMap<(String, String), Vec<(usize, &PaymentInitiation)>> = BTreeMap::new();
        for (i, d) in requested.0.iter().enumerate() {
            if let Detail::Payment(p) = d {
                groups.entry(p.group()).or_default().push((i, p));
            }
        }
        for ((currency, creditor), wanted) in groups {
            // For each held payment, the requested ones (as bits) it covers in kind.
            let held: Vec<(u32, &PaymentInitiation)> = self
                .0
                .iter()
                .filter_map(|h| match h {
                    Detail::Payment(hp) => Some(hp),
                    _ => None,
                })
                .map(|hp| {
                    let bits = wanted
                        .iter()
                        .enumerate()
                        .filter(|(_, (_, p))| payment_covers(hp, p).is_ok())
                        .fold(0u32, |bits, (j, _)| bits | 1 << j);
                    (bits, hp)
                })
                .filter(|(bits, _)| *bits != 0)
                .collect();
            // Exact decimals, parsed once: the subsets below add them many times.
            let asked_amounts: Vec<Decimal> = wanted.iter().map(|(_, p)| p.amount()).collect();
            let held_amounts: Vec<(u32, Decimal)> = held.iter().map(|(bits, hp)| (*bits, hp.amount())).collect();
            let add = |acc: Decimal, a: Decimal| {
                acc.checked_add(a)
                    .ok_or_else(|| "authorization_details: the amounts are too large to add up".to_owned())
            };
            // Every subset of the requested payments must fit what the held entries covering any
            // of them allow (the exact condition for sharing held amounts out). Past
            // MAX_EXACT_GROUP payments in one group, the 2^n subsets would be work an attacker
            // chooses: the whole group must then fit the held entries that cover all of it.
            let subsets: Vec<u32> = if wanted.len() <= MAX_EXACT_GROUP {
                (1u32..1 << wanted.len()).collect()
            } else {
                vec![(1u32 << wanted.len()) - 1]
            };
            let all = (1u32 << wanted.len()) - 1;
            for subset in subsets {
                let asked = asked_amounts
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| subset & 1 << j != 0)
                    .try_fold(Decimal::ZERO, |acc, (_, a)| add(acc, *a))?;
                let exact = wanted.len() <= MAX_EXACT_GROUP;
                let allowed = held_amounts
                    .iter()
                    .filter(|(bits, _)| if exact { bits & subset != 0 } else { bits & all == all })
                    .try_fold(Decimal::ZERO, |acc, (_, a)| add(acc, *a))?;
                if asked > allowed {
                    let first = wanted
                        .get(subset.trailing_zeros() as usize)
                        .map(|(i, _)| *i)
                        .unwrap_or_default();
                    return Err(format!(
                        "authorization_details[{first}] (payment_initiation): {asked} {currency} to {creditor} exceeds the {allowed} {currency} granted"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Totals per currency of the payments, for policy context and display.
    pub fn payment_totals(&self) -> BTreeMap<String, Decimal> {
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        for d in &self.0 {
            if let Detail::Payment(p) = d {
                let t = totals.entry(p.instructed_amount.currency.clone()).or_default();
                *t = t.checked_add(p.amount()).unwrap_or(Decimal::MAX);
            }
        }
        totals
    }

    /// Each entry in plain words, for the consent screen and the account page.
    pub fn describe(&self) -> Vec<String> {
        self.0.iter().map(Detail::describe).collect()
    }
}

impl PaymentInitiation {
    /// Validated at parse time; an unparsable amount never gets this far.
    fn amount(&self) -> Decimal {
        Decimal::from_str(&self.instructed_amount.amount).unwrap_or(Decimal::MAX)
    }

    fn group(&self) -> (String, String) {
        (
            self.instructed_amount.currency.clone(),
            self.creditor_account.iban.clone(),
        )
    }
}

impl Detail {
    pub fn type_name(&self) -> &'static str {
        match self {
            Detail::Payment(_) => "payment_initiation",
            Detail::AccountInformation(_) => "account_information",
            Detail::Tool(_) => "tool_invocation",
        }
    }

    fn from_value(v: &Value) -> Result<Detail, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "each entry must be a JSON object".to_owned())?;
        let ty = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| "each entry needs a string type".to_owned())?;
        let fields: &[&str] = match ty {
            "payment_initiation" => &[
                "instructedAmount",
                "creditorAccount",
                "creditorName",
                "remittanceInformationUnstructured",
            ],
            "account_information" => &["accounts"],
            "tool_invocation" => &["tool", "server", "arguments"],
            other => return Err(format!("type {} is not supported", printable(other))),
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !COMMON.contains(&k.as_str()) && !fields.contains(&k.as_str()))
        {
            return Err(format!("{ty}: field {} is not supported", printable(k)));
        }
        let v = v.clone();
        let d = match ty {
            "payment_initiation" => serde_json::from_value(v).map(Detail::Payment),
            "account_information" => serde_json::from_value(v).map(Detail::AccountInformation),
            _ => serde_json::from_value(v).map(Detail::Tool),
        }
        .map_err(|e| format!("{ty}: {}", printable(&e.to_string())))?;
        d.check()?;
        Ok(d)
    }

    fn to_value(&self) -> Value {
        let v = match self {
            Detail::Payment(p) => serde_json::to_value(p),
            Detail::AccountInformation(a) => serde_json::to_value(a),
            Detail::Tool(t) => serde_json::to_value(t),
        };
        // Structs of strings, sets and JSON values always serialize to an object.
        let mut v = v.unwrap_or_else(|_| Value::Object(Map::new()));
        if let Some(obj) = v.as_object_mut() {
            obj.insert("type".into(), Value::from(self.type_name()));
        }
        v
    }

    /// Bounds and shapes serde cannot express.
    fn check(&self) -> Result<(), String> {
        let ty = self.type_name();
        let text = |name: &str, s: &str| -> Result<(), String> {
            if s.is_empty() || s.len() > MAX_STR || s.chars().any(char::is_control) {
                return Err(format!("{ty}: {name} must be 1 to {MAX_STR} printable characters"));
            }
            Ok(())
        };
        let common = self.common();
        for (name, list) in [
            ("locations", &common.locations),
            ("actions", &common.actions),
            ("datatypes", &common.datatypes),
            ("privileges", &common.privileges),
        ] {
            if let Some(l) = list {
                if l.is_empty() || l.len() > MAX_LIST {
                    return Err(format!("{ty}: {name} must list 1 to {MAX_LIST} values"));
                }
                l.iter().try_for_each(|s| text(name, s))?;
            }
        }
        if let Some(id) = &common.identifier {
            text("identifier", id)?;
        }
        match self {
            Detail::Payment(p) => {
                let c = &p.instructed_amount.currency;
                if !CURRENCIES.contains(&c.as_str()) {
                    return Err(format!("{ty}: currency must be an ISO 4217 code such as EUR"));
                }
                check_amount(&p.instructed_amount.amount).map_err(|e| format!("{ty}: {e}"))?;
                iban(&p.creditor_account.iban).map_err(|e| format!("{ty}: creditorAccount {e}"))?;
                if let Some(n) = &p.creditor_name {
                    text("creditorName", n)?;
                }
                if let Some(r) = &p.remittance {
                    text("remittanceInformationUnstructured", r)?;
                }
            }
            Detail::AccountInformation(a) => {
                if a.accounts.is_empty() || a.accounts.len() > MAX_LIST {
                    return Err(format!("{ty}: accounts must list 1 to {MAX_LIST} accounts"));
                }
                a.accounts
                    .iter()
                    .try_for_each(|acc| iban(&acc.iban).map_err(|e| format!("{ty}: accounts {e}")))?;
                if a.common.actions.is_none() {
                    return Err(format!("{ty}: actions are required"));
                }
            }
            Detail::Tool(t) => {
                let name = t.tool.strip_suffix('*').unwrap_or(&t.tool);
                if t.tool.len() > MAX_STR || !name.bytes().all(name_byte) || (name.is_empty() && t.tool != "*") {
                    return Err(format!(
                        "{ty}: tool must be a name of letters, digits and _.:/- (a final * makes it a prefix)"
                    ));
                }
                if let Some(s) = &t.server {
                    text("server", s)?;
                }
                if let Some(args) = &t.arguments {
                    if args.len() > MAX_LIST {
                        return Err(format!("{ty}: arguments may constrain at most {MAX_LIST} names"));
                    }
                    for (k, v) in args {
                        if k.is_empty() || k.len() > 64 || !k.bytes().all(name_byte) {
                            return Err(format!("{ty}: argument names are letters, digits and _.:/-"));
                        }
                        if v.to_string().len() > MAX_STR {
                            return Err(format!("{ty}: argument values are limited to {MAX_STR} characters"));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn common(&self) -> &Common {
        match self {
            Detail::Payment(p) => &p.common,
            Detail::AccountInformation(a) => &a.common,
            Detail::Tool(t) => &t.common,
        }
    }

    /// Whether this held entry covers the requested one, amounts aside.
    fn covers_in_kind(&self, r: &Detail) -> Result<(), String> {
        match (self, r) {
            (Detail::Payment(h), Detail::Payment(r)) => payment_covers(h, r),
            (Detail::AccountInformation(h), Detail::AccountInformation(r)) => {
                common_covers(&h.common, &r.common)?;
                match r.accounts.iter().find(|a| !h.accounts.contains(a)) {
                    Some(a) => Err(format!("the account {} was not granted", a.iban)),
                    None => Ok(()),
                }
            }
            (Detail::Tool(h), Detail::Tool(r)) => {
                common_covers(&h.common, &r.common)?;
                equal_if_held("server", &h.server, &r.server)?;
                if !tool_covers(&h.tool, &r.tool) {
                    return Err(format!("the tool {} is not within the granted {}", r.tool, h.tool));
                }
                for (k, v) in h.arguments.iter().flatten() {
                    if r.arguments.as_ref().and_then(|a| a.get(k)) != Some(v) {
                        return Err(format!("the argument {k} must keep its granted value"));
                    }
                }
                Ok(())
            }
            _ => Err("another type".into()),
        }
    }

    fn describe(&self) -> String {
        let mut s = match self {
            Detail::Payment(p) => {
                let to = match &p.creditor_name {
                    Some(n) => format!("{n} (account {})", p.creditor_account.iban),
                    None => format!("account {}", p.creditor_account.iban),
                };
                let mut s = format!(
                    "Pay up to {} {} to {to}",
                    p.instructed_amount.amount, p.instructed_amount.currency
                );
                if let Some(r) = &p.remittance {
                    s.push_str(&format!(", reference {r}"));
                }
                s
            }
            Detail::AccountInformation(a) => {
                let accounts: Vec<&str> = a.accounts.iter().map(|x| x.iban.as_str()).collect();
                let actions: Vec<String> = a.common.actions.iter().flatten().map(|x| x.replace('_', " ")).collect();
                format!("On account {}: {}", accounts.join(", "), actions.join(", "))
            }
            Detail::Tool(t) => {
                let mut s = match t.tool.as_str() {
                    "*" => "Use any tool".to_owned(),
                    n if n.ends_with('*') => format!("Use any tool whose name starts with {}", &n[..n.len() - 1]),
                    n => format!("Use the tool {n}"),
                };
                if let Some(server) = &t.server {
                    s.push_str(&format!(" on {server}"));
                }
                let args: Vec<String> = t
                    .arguments
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                if !args.is_empty() {
                    s.push_str(&format!(", only with {}", args.join(", ")));
                }
                s
            }
        };
        let c = self.common();
        if !matches!(self, Detail::AccountInformation(_)) {
            if let Some(a) = &c.actions {
                s.push_str(&format!(" (actions: {})", join(a)));
            }
        }
        if let Some(l) = &c.locations {
            s.push_str(&format!(", at {}", join(l)));
        }
        if let Some(d) = &c.datatypes {
            s.push_str(&format!(", data: {}", join(d)));
        }
        if let Some(i) = &c.identifier {
            s.push_str(&format!(", for {i}"));
        }
        s
    }
}

/// A held payment covers a requested one in kind: same currency and creditor,
/// the common fields narrowed (amounts are summed apart).
fn payment_covers(h: &PaymentInitiation, r: &PaymentInitiation) -> Result<(), String> {
    common_covers(&h.common, &r.common)?;
    if h.instructed_amount.currency != r.instructed_amount.currency {
        return Err("another currency".into());
    }
    if h.creditor_account != r.creditor_account {
        return Err(format!(
            "the creditor account {} was not granted",
            r.creditor_account.iban
        ));
    }
    equal_if_held("creditorName", &h.creditor_name, &r.creditor_name)?;
    equal_if_held("remittanceInformationUnstructured", &h.remittance, &r.remittance)
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// RFC 9396 §2.2 fields: a held list restricts, so the request must hold a
/// subset of it; an identifier must be equal.
fn common_covers(h: &Common, r: &Common) -> Result<(), String> {
    for (name, held, req) in [
        ("locations", &h.locations, &r.locations),
        ("actions", &h.actions, &r.actions),
        ("datatypes", &h.datatypes, &r.datatypes),
        ("privileges", &h.privileges, &r.privileges),
    ] {
        if let Some(held) = held {
            match req {
                Some(req) if req.is_subset(held) => {}
                Some(_) => return Err(format!("{name} beyond those granted")),
                None => return Err(format!("{name} must be limited as granted")),
            }
        }
    }
    equal_if_held("identifier", &h.identifier, &r.identifier)
}

fn equal_if_held(name: &str, held: &Option<String>, req: &Option<String>) -> Result<(), String> {
    match held {
        Some(h) if req.as_ref() != Some(h) => Err(format!("{name} must stay {}", printable(h))),
        _ => Ok(()),
    }
}

/// `*` alone is any tool; `prefix*` any tool (or pattern) starting with prefix.
fn tool_covers(held: &str, requested: &str) -> bool {
    match held.strip_suffix('*') {
        Some(prefix) => requested.starts_with(prefix),
        None => held == requested,
    }
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.:/-".contains(&b)
}

/// An account number as banks print it: 5 to 34 capital letters and digits.
fn iban(s: &str) -> Result<(), String> {
    if (5..=34).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("iban must be 5 to 34 capital letters and digits".into())
    }
}

/// A positive exact decimal below 10^12 with at most 4 decimals (so that
/// sums stay within Cedar's `decimal`, which policies compare them with).
fn check_amount(a: &str) -> Result<(), String> {
    let (int, frac) = a.split_once('.').unwrap_or((a, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 12 || !digits(int) || frac.len() > 4 || !digits(frac) || a.ends_with('.') {
        return Err("amount must be a decimal string such as 123.50".into());
    }
    match Decimal::from_str(a) {
        Ok(d) if d > Decimal::ZERO => Ok(()),
        _ => Err("amount must be greater than zero".into()),
    }
}

/// Text from the request, made safe for an RFC 6749 §5.2 error description.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
