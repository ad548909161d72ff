//! Fuzz targets for the small parsing modules (issue 11 item 8), with bolero.
//!
//! Each `#[test]` feeds one parser arbitrary input and checks a property
//! beyond "does not panic" where the module has one. Under `cargo test` a
//! target runs random inputs for [`SECS`] (fewer for the cheap ones); set
//! `BOLERO_RANDOM_TEST_TIME_MS` to run longer, `BOLERO_RANDOM_SEED` to replay
//! a failure. With `cargo bolero test` the same targets run under a real
//! fuzzing engine (see the README, "Fuzzing"). What a target finds becomes
//! a unit test next to the parser.
//!
//! Most targets read their input twice: as raw bytes, and as a sequence of
//! picks from a small alphabet of the parser's own tokens, so that random
//! input reaches past the first syntax check.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deputy::domain::{AuthorizationDetails, ClientId, ResourceUri, Scope};
use deputy::error::in_description_charset;
use deputy::form::{has_control, Form};
use serde_json::{json, Map, Value};

/// Default run length of one target under `cargo test` (CI runs them all once).
const SECS: u64 = 30;

fn run_for(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Reads fuzz bytes as a sequence of choices.
struct Picks<'a>(&'a [u8]);

impl Picks<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        options[self.byte() as usize % options.len()].clone()
    }

    fn flag(&mut self) -> bool {
        self.byte() % 2 == 1
    }
}

/// The input as a text of alphabet tokens, one per byte.
fn spell(bytes: &[u8], alphabet: &[&str]) -> String {
    bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()]).collect()
}

// ---------------------------------------------------------------------------
// application/x-www-form-urlencoded bodies and the query-string edge check

const FORM_ALPHABET: &[&str] = &[
    "a",
    "b",
    "state",
    "scope",
    "=",
    "=",
    "&",
    "&",
    "+",
    "%",
    "%2",
    "%20",
    "%00",
    "%1f",
    "%7F",
    "%0A",
    "%3D",
    "%26",
    "%C3%A9",
    "%C3",
    "%ff",
    "%e2%80%ae",
    "\u{1}",
    "\u{7f}",
    "\t",
    " ",
    "é",
    "~",
    "\"",
    "\\",
];

fn check_form(body: &[u8]) {
    let parsed = Form::parse(body);
    let text = std::str::from_utf8(body).ok();
    let hostile = text.and_then(deputy::edge::hostile_query_parameter);
    match &parsed {
        Ok(form) => {
            // The same grammar as the query-string edge check: nothing it would refuse.
            assert_eq!(hostile, None, "accepted a body the edge check refuses: {body:?}");
            // Differential: the first non-empty value of each name, as the url crate reads it.
            let mut first: Vec<(String, String)> = Vec::new();
            let mut seen_twice: BTreeSet<String> = BTreeSet::new();
            for (k, v) in url::form_urlencoded::parse(body) {
                assert!(
                    !has_control(&k) && !has_control(&v),
                    "control character accepted: {body:?}"
                );
                if v.is_empty() {
                    continue;
                }
                if first.iter().any(|(n, _)| *n == k) {
                    seen_twice.insert(k.into_owned());
                } else {
                    first.push((k.into_owned(), v.into_owned()));
                }
            }
            for (k, v) in &first {
                assert_eq!(form.get(k), Some(v.as_str()), "{body:?}");
            }
            for k in &seen_twice {
                assert!(form.is_repeated(k), "{k} repeated in {body:?}");
            }
            assert_eq!(form.first_repeated().is_some(), !seen_twice.is_empty(), "{body:?}");
        }
        Err(e) => {
            // The refusal is quoted back: it must never echo a control character.
            assert!(!has_control(e), "{e:?}");
        }
    }
    if hostile.is_some() {
        assert!(
            parsed.is_err(),
            "the edge refuses {body:?} but the form parser accepts it"
        );
    }
}

#[test]
fn form_parse_refuses_control_characters_and_reads_what_the_url_crate_reads() {
    bolero::check!().with_test_time(run_for(SECS)).for_each(|bytes: &[u8]| {
        check_form(bytes);
        check_form(spell(bytes, FORM_ALPHABET).as_bytes());
    });
}

// ---------------------------------------------------------------------------
// scope, resource and client_id

const SCOPE_ALPHABET: &[&str] = &[
    "read", "write", "a", "b", " ", " ", ":", "\"", "\\", "!", "#", "é", "\t", "\u{0}",
];

fn check_scope(s: &str) {
    if let Ok(scope) = Scope::parse(s) {
        // What parses prints back to a string that parses to the same scope.
        let printed = scope.to_string();
        assert_eq!(Scope::parse(&printed).as_ref(), Ok(&scope), "{s:?}");
        for t in scope.iter() {
            assert!(!t.is_empty() && t.len() <= 128, "{s:?}");
            assert!(
                t.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)),
                "{s:?}"
            );
        }
    }
}

#[test]
fn scope_parse_round_trips_and_keeps_rfc_6749_token_characters() {
    bolero::check!()
        .with_test_time(run_for(SECS / 2))
        .for_each(|bytes: &[u8]| {
            if let Ok(s) = std::str::from_utf8(bytes) {
                check_scope(s);
            }
            check_scope(&spell(bytes, SCOPE_ALPHABET));
        });
}

const RESOURCE_ALPHABET: &[&str] = &[
    "https://",
    "http:",
    "urn:",
    "api.example.com",
    "/",
    "a",
    ":",
    "#",
    "?",
    "%",
    "%20",
    " ",
    "\t",
    "\n",
    "\u{0}",
    "\u{7f}",
    "é",
    "[",
    "]",
    "@",
    "..",
    "x:",
    "//",
    "\\",
];

fn check_resource(s: &str) {
    if let Ok(r) = ResourceUri::parse(s) {
        // An absolute URI (RFC 3986 §4.3) holds no whitespace, no control
        // character and no fragment; it is kept exactly as given.
        assert_eq!(r.as_str(), s);
        assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()), "{s:?}");
        assert!(!s.contains('#'), "{s:?}");
        let url = url::Url::parse(s).expect("a resource is a URL");
        assert!(url.fragment().is_none());
        // The serde form reads back the same value.
        let json = serde_json::to_string(&r).expect("serializes");
        assert_eq!(serde_json::from_str::<ResourceUri>(&json).ok(), Some(r), "{s:?}");
    }
}

#[test]
fn resource_uri_parse_accepts_only_absolute_uris_without_space_control_or_fragment() {
    bolero::check!()
        .with_test_time(run_for(SECS / 2))
        .for_each(|bytes: &[u8]| {
            if let Ok(s) = std::str::from_utf8(bytes) {
                check_resource(s);
            }
            check_resource(&spell(bytes, RESOURCE_ALPHABET));
        });
}

#[test]
fn client_id_parse_accepts_only_1_to_255_visible_ascii_characters() {
    bolero::check!()
        .with_test_time(run_for(SECS / 3))
        .for_each(|bytes: &[u8]| {
            let s = String::from_utf8_lossy(bytes);
            if let Ok(id) = ClientId::parse(&s) {
                assert_eq!(id.as_str(), s);
                assert!((1..=255).contains(&s.len()), "{s:?}");
                assert!(s.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{s:?}");
                assert!(!s.starts_with(' ') && !s.ends_with(' '), "{s:?}");
                assert_eq!(ClientId::parse(&id.to_string()), Ok(id));
            }
        });
}

// ---------------------------------------------------------------------------
// authorization_details (RFC 9396)

fn check_details_properties(d: &AuthorizationDetails, input: &str) {
    assert_eq!(
        AuthorizationDetails::from_value(&d.to_value()).as_ref(),
        Ok(d),
        "no round trip: {input}"
    );
    assert_eq!(d.covers(d), Ok(()), "does not cover itself: {input}");
    let all: BTreeSet<usize> = (0..d.entries().len()).collect();
    assert_eq!(d.select(&all).as_ref(), Some(d));
    assert_eq!(d.describe().len(), d.entries().len());
    let _ = d.payment_totals();
}

fn check_details_text(s: &str) {
    match AuthorizationDetails::parse(s) {
        Ok(d) => check_details_properties(&d, s),
        Err(e) => assert!(in_description_charset(&e), "{e:?} from {s:?}"),
    }
}

/// One entry of `authorization_details`, built from picks among values that
/// are valid, nearly valid and invalid, so that many inputs parse.
fn detail(p: &mut Picks) -> Value {
    let mut o = Map::new();
    let ty = p.pick(&[
        "payment_initiation",
        "payment_initiation",
        "account_information",
        "tool_invocation",
        "other",
    ]);
    o.insert("type".into(), json!(ty));
    let texts = [
        json!("a"),
        json!("b"),
        json!("a"),
        json!("b"),
        json!(""),
        json!("x\u{0}"),
        json!(1),
    ];
    let lists = [
        json!(["a"]),
        json!(["a", "b"]),
        json!(["b"]),
        json!([]),
        json!("a"),
        json!(["\u{7}"]),
    ];
    for name in ["locations", "actions", "datatypes", "privileges"] {
        if p.byte().is_multiple_of(8) {
            o.insert(name.into(), p.pick(&lists));
        }
    }
    if p.byte().is_multiple_of(4) {
        o.insert("identifier".into(), p.pick(&texts));
    }
    let ibans = [
        json!("DE02100100109307118603"),
        json!("FR7630006000011234567890189"),
        json!("de02"),
        json!(7),
    ];
    match ty {
        "payment_initiation" => {
            let amount = p.pick(&[
                json!("1"),
                json!("0.5"),
                json!("100.00"),
                json!("999999999999.9999"),
                json!("0"),
                json!("-1"),
                json!("1e3"),
                json!("1."),
                json!(12),
            ]);
            let currency = p.pick(&[json!("EUR"), json!("USD"), json!("eur"), json!("XXX")]);
            o.insert(
                "instructedAmount".into(),
                json!({"currency": currency, "amount": amount}),
            );
            o.insert("creditorAccount".into(), json!({"iban": p.pick(&ibans)}));
            if p.flag() {
                o.insert("creditorName".into(), p.pick(&texts));
            }
            if p.flag() {
                o.insert("remittanceInformationUnstructured".into(), p.pick(&texts));
            }
        }
        "account_information" => {
            let n = p.byte() % 3;
            let accounts: Vec<Value> = (0..n).map(|_| json!({"iban": p.pick(&ibans)})).collect();
            o.insert("accounts".into(), Value::Array(accounts));
        }
        _ => {
            let tool = p.pick(&[
                json!("a"),
                json!("a*"),
                json!("*"),
                json!("ab"),
                json!("a b"),
                json!(""),
            ]);
            o.insert("tool".into(), tool);
            if p.flag() {
                o.insert("server".into(), p.pick(&texts));
            }
            if p.flag() {
                let v = p.pick(&[json!("x"), json!(1), json!(1.5), json!(null), json!({"k": [1, 2]})]);
                let k = p.pick(&["calendar", "c2", "bad name", ""]);
                o.insert("arguments".into(), json!({ k: v }));
            }
        }
    }
    if p.byte().is_multiple_of(16) {
        o.insert(p.pick(&["tool", "accounts", "unknown", "type"]).into(), json!("a"));
    }
    Value::Object(o)
}

#[test]
fn authorization_details_errors_stay_in_the_charset_and_what_parses_round_trips_and_covers_itself() {
    bolero::check!().with_test_time(run_for(SECS)).for_each(|bytes: &[u8]| {
        if let Ok(s) = std::str::from_utf8(bytes) {
            check_details_text(s);
        }
        let mut p = Picks(bytes);
        let n = 1 + p.byte() as usize % 4;
        let entries: Vec<Value> = (0..n).map(|_| detail(&mut p)).collect();
        check_details_text(&Value::Array(entries).to_string());
    });
}

// ---------------------------------------------------------------------------
// JWTs: client assertions (RFC 7523) and access tokens (RFC 9068)

/// Text that looks like a compact JWS to a tokenizer: base64url pieces and dots.
const JWT_ALPHABET: &[&str] = &[
    ".",
    ".",
    "eyJ",
    "eyJhbGciOiJFUzI1NiJ9",
    "eyJhbGciOiJub25lIn0",
    "eyJ9",
    "e30",
    "bnVsbA",
    "W10",
    "A",
    "-",
    "_",
    "=",
    "+",
    "/",
    " ",
    "\u{0}",
];

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A claim value: valid, wrong type, out of range, or absent (`None`).
fn claim(p: &mut Picks, valid: &[Value], now: i64) -> Option<Value> {
    match p.byte() % 8 {
        0 => None,
        1 => Some(p.pick(&[
            json!(""),
            json!(1),
            json!(1.5),
            json!(null),
            json!([]),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(now),
            json!(now + 1),
            json!(now - 1),
            json!("x".repeat(300)),
        ])),
        _ => Some(p.pick(valid)),
    }
}

const CLIENT: &str = "fuzz-client";
const ISSUER: &str = "https://deputy.example";

fn assertion_claims(p: &mut Picks, now: i64) -> Map<String, Value> {
    let mut m = Map::new();
    let ids = [json!(CLIENT), json!("other")];
    let times = [
        json!(now + 1),
        json!(now + 60),
        json!(now + 300),
        json!(now + 301),
        json!(now - 5),
    ];
    let fields: [(&str, Vec<Value>); 7] = [
        ("iss", ids.to_vec()),
        ("sub", ids.to_vec()),
        (
            "aud",
            vec![json!(ISSUER), json!([ISSUER]), json!("https://other.example")],
        ),
        ("jti", vec![json!("j1"), json!("j2")]),
        ("exp", times.to_vec()),
        ("iat", vec![json!(now), json!(now + 10), json!(now + 11)]),
        ("nbf", vec![json!(now - 1), json!(now + 11)]),
    ];
    for (name, valid) in fields {
        if let Some(v) = claim(p, &valid, now) {
            m.insert(name.into(), v);
        }
    }
    m
}

#[test]
fn client_assertion_validate_refuses_garbage_and_accepts_only_claims_that_pass_every_rule() {
    use josekit::jws::{JwsHeader, ES256};
    use josekit::jwt::{self, JwtPayload};

    let key = ES256.generate_key_pair().expect("a key pair");
    let mut public = key.to_jwk_public_key();
    public.set_key_id("k1");
    let jwks = json!({ "keys": [Value::Object(public.as_ref().clone())] });
    let mut private = key.to_jwk_private_key();
    private.set_key_id("k1");
    let signer = ES256.signer_from_jwk(&private).expect("a signer");
    let max_lifetime = 300;

    bolero::check!().with_test_time(run_for(SECS)).for_each(|bytes: &[u8]| {
        let now = 1_800_000_000;
        let validate = |t: &str| deputy::tokens::assertion::validate(t, &jwks, CLIENT, ISSUER, now, max_lifetime);
        // Garbage, raw and shaped like a JWS, is refused.
        if let Ok(s) = std::str::from_utf8(bytes) {
            assert!(validate(s).is_err(), "{s:?}");
        }
        let shaped = spell(bytes, JWT_ALPHABET);
        assert!(validate(&shaped).is_err(), "{shaped:?}");

        // Signed by the client's key, with claims picked from the fuzz input.
        let mut p = Picks(bytes);
        let mut header = JwsHeader::new();
        match p.byte() % 4 {
            0 => {}
            1 => header.set_token_type("JWT"),
            2 => header.set_token_type("at+jwt"),
            _ => header.set_token_type("client-authentication+jwt"),
        }
        if p.flag() {
            header.set_key_id("k1");
        }
        if p.byte().is_multiple_of(8) {
            header
                .set_claim("jku", Some(json!("https://attacker.example/jwks")))
                .expect("a claim");
        }
        let claims = assertion_claims(&mut p, now);
        let Ok(payload) = JwtPayload::from_map(claims.clone()) else {
            return;
        };
        let token = jwt::encode_with_signer(&payload, &header, &signer).expect("signs");
        if let Ok(a) = validate(&token) {
            assert_eq!(claims.get("iss"), Some(&json!(CLIENT)));
            assert_eq!(claims.get("sub"), Some(&json!(CLIENT)));
            assert_eq!(claims.get("aud"), Some(&json!(ISSUER)));
            assert!(a.exp > now && a.exp - now <= max_lifetime, "{claims:?}");
            assert!(!a.jti.is_empty() && a.jti.len() <= 256);
            assert!(header.claim("jku").is_none());
            assert_ne!(header.token_type(), Some("at+jwt"));
            // One changed character in the signed token makes it invalid.
            let mut changed = token.clone().into_bytes();
            let at = p.byte() as usize * 31 % changed.len();
            changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).expect("ASCII");
            assert!(validate(&changed).is_err(), "{token} accepted as {changed}");
        }
    });
}

fn access_claims(p: &mut Picks, now: i64) -> Map<String, Value> {
    let mut m = Map::new();
    let text = vec![json!("a"), json!("b")];
    let fields: [(&str, Vec<Value>); 9] = [
        ("iss", vec![json!(ISSUER), json!("https://other.example")]),
        ("sub", text.clone()),
        (
            "aud",
            vec![json!("https://api.example"), json!(["https://api.example"])],
        ),
        ("exp", vec![json!(now + 60), json!(now - 1), json!(now)]),
        ("iat", vec![json!(now), json!(now + 11)]),
        ("jti", text.clone()),
        ("client_id", text.clone()),
        ("nbf", vec![json!(now), json!(now + 11), json!("soon")]),
        (
            "act",
            vec![json!({"sub": "agent"}), json!({"act": {"sub": 1}}), json!("x")],
        ),
    ];
    for (name, valid) in fields {
        if let Some(v) = claim(p, &valid, now) {
            m.insert(name.into(), v);
        }
    }
    m
}

#[test]
fn access_token_validate_refuses_garbage_and_checks_every_claim_of_a_signed_token() {
    use deputy::tokens::access::{self, AccessClaims};
    use deputy::tokens::at_rest::KeyEncryption;
    use deputy::tokens::{Alg, Keys};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = deputy::storage::Db::connect(&dir.path().join("fuzz.db").to_string_lossy(), 2).expect("a database");
    let keys = Keys::load_or_generate(db, Arc::new(KeyEncryption::new(&[7; 32], &[]))).expect("keys");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // The key set and the runtime are only read by the target; a failing case ends the test.
    let (keys, rt) = (AssertUnwindSafe(keys), AssertUnwindSafe(rt));
    let validate = |t: &str, now: i64| rt.block_on(access::validate(&keys, ISSUER, t, now));

    bolero::check!().with_test_time(run_for(SECS)).for_each(|bytes: &[u8]| {
        let now = 1_800_000_000;
        if let Ok(s) = std::str::from_utf8(bytes) {
            assert!(validate(s, now).is_err(), "{s:?}");
        }
        let shaped = spell(bytes, JWT_ALPHABET);
        assert!(validate(&shaped, now).is_err(), "{shaped:?}");
        let mut p = Picks(bytes);
        // An unsigned token (`alg: none`) with any claims is refused.
        let claims = access_claims(&mut p, now);
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "at+jwt"})),
            b64(&Value::Object(claims.clone()))
        );
        assert!(validate(&unsigned, now).is_err());
        // Signed with our key: accepted only if every claim passes.
        let typ = p.pick(&["at+jwt", "application/at+jwt", "JWT", "AT+JWT"]);
        let Ok(token) = keys.current().sign(Alg::ES256, typ, claims.clone()) else {
            return;
        };
        if let Ok(c) = validate(&token, now) {
            let c: AccessClaims = c;
            assert!(typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"));
            assert_eq!(c.iss, ISSUER);
            assert!(c.exp > now && c.iat <= now + 10, "{claims:?}");
            assert!(!c.aud.is_empty() && !c.jti.is_empty() && !c.sub.is_empty() && !c.client_id.is_empty());
            assert!(claims
                .get("nbf")
                .is_none_or(|n| n.as_i64().is_some_and(|n| n <= now + 10)));
            let _ = c.actors();
            // Signed by our ID-token key (RS256): refused as an access token.
            if let Ok(rs) = keys.current().sign(Alg::RS256, typ, claims.clone()) {
                assert!(validate(&rs, now).is_err());
            }
        }
    });
}

// ---------------------------------------------------------------------------
// The import file (TOML) and the admin API's JSON bodies

const IMPORT_ALPHABET: &[&str] = &[
    "[[clients]]\n",
    "[[users]]\n",
    "[[agents]]\n",
    "client_id = \"a\"\n",
    "agent_id = \"a\"\n",
    "username = \"u\"\n",
    "grant_types = [\"client_credentials\"]\n",
    "resources = [\"https://api.example\"]\n",
    "allowed_audiences = [\" https://x\"]\n",
    "max_token_ttl = 9223372036854775807\n",
    "jwks = { keys = [] }\n",
    "name = \"n\"\n",
    "publisher = \"p\"\n",
    "x = 1\n",
    "[",
    "]",
    "=",
    "\"",
    "'''",
    "\\u0000",
    "\n",
    "1979-05-27T07:32:00Z",
    "{",
    "}",
    ",",
    "inf",
    "nan",
];

fn check_import(text: &str) {
    if let Ok(file) = deputy::import::parse(text) {
        for a in &file.agents {
            let _ = deputy::domain::agent::validate_agent_id(&a.agent_id);
            let _ = Scope::parse(&a.allowed_scopes);
            a.allowed_audiences.iter().for_each(|r| {
                let _ = ResourceUri::parse(r);
            });
        }
        for c in &file.clients {
            let _ = c.to_client(None, 0);
        }
    }
}

#[test]
fn import_parse_never_panics_and_its_specs_validate_without_panicking() {
    bolero::check!().with_test_time(run_for(SECS)).for_each(|bytes: &[u8]| {
        if let Ok(s) = std::str::from_utf8(bytes) {
            check_import(s);
        }
        check_import(&spell(bytes, IMPORT_ALPHABET));
    });
}

const JSON_ALPHABET: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"action\"",
    "\"resource\"",
    "\"scope\"",
    "\"authorization_details\"",
    "\"ttl\"",
    "\"address\"",
    "\"agent_id\"",
    "\"client_id\"",
    "\"name\"",
    "\"publisher\"",
    "\"jwks\"",
    "\"allowed_audiences\"",
    "\"consent\"",
    "\"a\"",
    "\"10.0.0.1\"",
    "\"::1\"",
    "1",
    "-1",
    "1e400",
    "9223372036854775808",
    "true",
    "null",
    "\"\\u0000\"",
    "\"\\ud800\"",
    " ",
];

fn check_admin_json(body: &[u8]) {
    if let Ok(spec) = serde_json::from_slice::<deputy::agent_registry::AgentSpec>(body) {
        let _ = deputy::domain::agent::validate_agent_id(&spec.agent_id);
        let _ = ClientId::parse(&spec.client_id);
        let _ = Scope::parse(&spec.allowed_scopes);
    }
    if let Ok(req) = serde_json::from_slice::<deputy::policy::manage::CheckRequest>(body) {
        let _ = Scope::parse(&req.scope);
        if let Some(d) = &req.authorization_details {
            if let Ok(d) = AuthorizationDetails::from_value(d) {
                check_details_properties(&d, &String::from_utf8_lossy(body));
            }
        }
    }
    let _ = serde_json::from_slice::<deputy::client_registry::ClientSpec>(body);
}

#[test]
fn admin_json_bodies_deserialize_or_fail_without_panicking() {
    bolero::check!().with_test_time(run_for(SECS)).for_each(|bytes: &[u8]| {
        check_admin_json(bytes);
        check_admin_json(spell(bytes, JSON_ALPHABET).as_bytes());
    });
}

// ---------------------------------------------------------------------------
// Cedar policy sources

const CEDAR_ALPHABET: &[&str] = &[
    "permit",
    "forbid",
    " (",
    ")",
    "principal",
    "action",
    "resource",
    ",",
    ";",
    " == ",
    " in ",
    " when ",
    " unless ",
    "{",
    "}",
    "@id(\"a\")",
    "@id(\"b\")",
    "@ttl(\"60\")",
    "@scope(\"read\")",
    "@id(\"\\u{0}\")",
    "Deputy::Agent::\"x\"",
    "Deputy::Action::\"consent\"",
    "Deputy::Resource::\"r\"",
    "context.ttl",
    "context.scopes",
    ".contains(\"a\")",
    "decimal(\"1.0\")",
    "ip(\"10.0.0.1\")",
    ".lessThan(",
    "if ",
    " then ",
    " else ",
    "true",
    " && ",
    " || ",
    "!",
    "-",
    "1",
    "9223372036854775807",
    " * ",
    "\"",
    " like \"*\"",
    " has ",
    " is ",
    "[",
    "]",
    "?principal",
    "//",
    "\n",
];

#[test]
fn policy_compile_returns_a_set_or_diagnostics_quickly() {
    bolero::check!().with_test_time(run_for(SECS)).for_each(|bytes: &[u8]| {
        // Capped so that one case stays fast in a debug build.
        let bytes = &bytes[..bytes.len().min(512)];
        for source in [
            String::from_utf8_lossy(bytes).into_owned(),
            spell(bytes, CEDAR_ALPHABET),
        ] {
            let started = Instant::now();
            let deny = bytes.first().is_some_and(|b| b.is_multiple_of(2));
            match deputy::policy::set::compile(&source, deny, 1) {
                Ok(set) => assert!(set.len() <= 512, "{source:?}"),
                Err(diagnostics) => assert!(!diagnostics.is_empty(), "{source:?}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "compiling took {:?}: {source:?}",
                started.elapsed()
            );
        }
    });
}
