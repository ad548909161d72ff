//! The per-type comparison rules, one test per rule and per refusal.

use serde_json::json;

use super::*;

fn details(v: Value) -> AuthorizationDetails {
    AuthorizationDetails::from_value(&v).expect("valid details")
}

fn pay(amount: &str, currency: &str, iban: &str) -> Value {
    json!({"type": "payment_initiation", "instructedAmount": {"currency": currency, "amount": amount},
           "creditorAccount": {"iban": iban}, "creditorName": "Merchant A"})
}

fn refusal(held: &AuthorizationDetails, requested: Value) -> String {
    held.covers(&details(requested)).expect_err("must be refused")
}

#[test]
fn each_supported_type_parses_and_round_trips() {
    let v = json!([
        pay("123.50", "EUR", "DE02100100109307118603"),
        {"type": "account_information", "accounts": [{"iban": "DE40100100103307118608"}],
         "actions": ["list_accounts", "read_balances"], "locations": ["https://bank.example/accounts"]},
        {"type": "tool_invocation", "tool": "calendar.create_event", "server": "https://mcp.example",
         "arguments": {"calendar": "work"}}
    ]);
    let d = details(v.clone());
    assert_eq!(d.entries().len(), 3);
    assert_eq!(AuthorizationDetails::from_value(&d.to_value()), Ok(d.clone()));
    assert_eq!(d.to_value()[0]["instructedAmount"]["amount"], "123.50");
    assert_eq!(d.to_value()[2]["type"], "tool_invocation");
}

#[test]
fn malformed_details_are_refused_with_a_reason() {
    for (case, v) in [
        ("not an array", json!({"type": "tool_invocation", "tool": "x"})),
        ("empty", json!([])),
        ("unknown type", json!([{"type": "launch_missiles"}])),
        ("no type", json!([{"tool": "x"}])),
        (
            "unknown field",
            json!([{"type": "tool_invocation", "tool": "x", "sudo": true}]),
        ),
        (
            "amount as a number",
            json!([{"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": 10},
            "creditorAccount": {"iban": "DE02100100109307118603"}}]),
        ),
        ("negative amount", json!([pay("-5", "EUR", "DE02100100109307118603")])),
        ("zero amount", json!([pay("0.00", "EUR", "DE02100100109307118603")])),
        ("exponent", json!([pay("1e6", "EUR", "DE02100100109307118603")])),
        (
            "too many decimals",
            json!([pay("1.0000001", "EUR", "DE02100100109307118603")]),
        ),
        ("lowercase currency", json!([pay("1", "eur", "DE02100100109307118603")])),
        (
            "missing creditor",
            json!([{"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "1"}}]),
        ),
        ("bad iban", json!([pay("1", "EUR", "DE02 1001")])),
        (
            "accounts without actions",
            json!([{"type": "account_information", "accounts": [{"iban": "DE40100100103307118608"}]}]),
        ),
        (
            "no accounts",
            json!([{"type": "account_information", "accounts": [], "actions": ["read_balances"]}]),
        ),
        (
            "star inside a tool name",
            json!([{"type": "tool_invocation", "tool": "cal*endar"}]),
        ),
        (
            "control character",
            json!([{"type": "tool_invocation", "tool": "x", "actions": ["a\u{0}b"]}]),
        ),
        (
            "empty action list",
            json!([{"type": "tool_invocation", "tool": "x", "actions": []}]),
        ),
    ] {
        assert!(AuthorizationDetails::from_value(&v).is_err(), "{case} was accepted");
    }
    let many: Vec<Value> = (0..=MAX_ENTRIES)
        .map(|_| json!({"type": "tool_invocation", "tool": "x"}))
        .collect();
    assert!(AuthorizationDetails::from_value(&Value::from(many)).is_err());
    assert!(AuthorizationDetails::parse(&"x".repeat(MAX_JSON_BYTES + 1)).is_err());
    assert!(AuthorizationDetails::parse("{not json").is_err());
}

#[test]
fn equal_and_narrower_payments_are_covered() {
    let held = details(json!([pay("100.00", "EUR", "DE02100100109307118603")]));
    assert_eq!(held.covers(&held), Ok(()));
    assert_eq!(
        held.covers(&details(json!([pay("99.99", "EUR", "DE02100100109307118603")]))),
        Ok(())
    );
    // Exact decimals: 100 equals 100.00.
    assert_eq!(
        held.covers(&details(json!([pay("100", "EUR", "DE02100100109307118603")]))),
        Ok(())
    );
}

#[test]
fn a_larger_amount_is_refused() {
    let held = details(json!([pay("100.00", "EUR", "DE02100100109307118603")]));
    let why = refusal(&held, json!([pay("100.01", "EUR", "DE02100100109307118603")]));
    assert!(why.contains("exceeds"), "{why}");
}

#[test]
fn amounts_are_summed_over_every_entry_of_the_type() {
    let held = details(json!([pay("100", "EUR", "DE02100100109307118603")]));
    let why = refusal(
        &held,
        json!([
            pay("60", "EUR", "DE02100100109307118603"),
            pay("60", "EUR", "DE02100100109307118603")
        ]),
    );
    assert!(why.contains("120 EUR"), "{why}");
    let two = details(json!([
        pay("60", "EUR", "DE02100100109307118603"),
        pay("60", "EUR", "DE02100100109307118603")
    ]));
    assert_eq!(
        two.covers(&details(json!([pay("120", "EUR", "DE02100100109307118603")]))),
        Ok(())
    );
}

#[test]
fn payments_to_one_creditor_that_differ_in_kind_cover_themselves() {
    // Found by the fuzz target in tests/fuzz.rs: two payments to one account,
    // one limited to a datatype, did not cover themselves (each held entry
    // had to cover both requested ones for its amount to count).
    let mut narrow = pay("1", "EUR", "DE02100100109307118603");
    narrow["datatypes"] = json!(["a"]);
    let wide = pay("1", "EUR", "DE02100100109307118603");
    let d = details(json!([narrow.clone(), wide.clone()]));
    assert_eq!(d.covers(&d), Ok(()));
    let mut other_ref = pay("5", "EUR", "DE02100100109307118603");
    other_ref["remittanceInformationUnstructured"] = json!("invoice 2");
    let two_invoices = details(json!([wide.clone(), other_ref.clone()]));
    assert_eq!(two_invoices.covers(&two_invoices), Ok(()));
    // Each requested payment still draws only on the held entries that cover it:
    // the 5 EUR held for invoice 2 cannot pay 2 EUR without that reference.
    let why = refusal(
        &two_invoices,
        json!([pay("2", "EUR", "DE02100100109307118603"), other_ref]),
    );
    assert!(why.contains("exceeds"), "{why}");
    // A general entry is shared, not counted once per requested payment.
    let mut a = pay("10", "EUR", "DE02100100109307118603");
    a["creditorName"] = json!("A");
    let mut b = a.clone();
    b["creditorName"] = json!("B");
    let mut general = pay("100", "EUR", "DE02100100109307118603");
    if let Some(o) = general.as_object_mut() {
        o.remove("creditorName");
    }
    let held = details(json!([a.clone(), b.clone(), general]));
    let (mut a2, mut b2) = (a, b);
    a2["instructedAmount"]["amount"] = json!("100");
    b2["instructedAmount"]["amount"] = json!("100");
    let why = refusal(&held, json!([a2, b2]));
    assert!(why.contains("200 EUR") && why.contains("exceeds the 120 EUR"), "{why}");
}

#[test]
fn another_currency_or_creditor_is_refused() {
    let held = details(json!([pay("1000000", "EUR", "DE02100100109307118603")]));
    let why = refusal(&held, json!([pay("1", "USD", "DE02100100109307118603")]));
    assert!(why.contains("another currency"), "{why}");
    let why = refusal(&held, json!([pay("1", "EUR", "ATTACKER")]));
    assert!(why.contains("creditor account ATTACKER"), "{why}");
}

#[test]
fn a_request_that_drops_a_restriction_is_refused() {
    let held = details(
        json!([{"type": "tool_invocation", "tool": "calendar.read", "actions": ["read"],
        "locations": ["https://cal.example"]}]),
    );
    let why = refusal(
        &held,
        json!([{"type": "tool_invocation", "tool": "calendar.read", "actions": ["read"]}]),
    );
    assert!(why.contains("locations must be limited"), "{why}");
    let why = refusal(
        &held,
        json!([{"type": "tool_invocation", "tool": "calendar.read", "actions": ["read", "write"],
            "locations": ["https://cal.example"]}]),
    );
    assert!(why.contains("actions beyond"), "{why}");
    let held = details(json!([pay("10", "EUR", "DE02100100109307118603")]));
    let mut other_name = pay("10", "EUR", "DE02100100109307118603");
    other_name["creditorName"] = json!("Someone Else");
    assert!(refusal(&held, json!([other_name])).contains("creditorName"));
}

#[test]
fn tools_are_covered_by_name_or_by_prefix() {
    let prefix = details(json!([{"type": "tool_invocation", "tool": "calendar.*"}]));
    assert_eq!(
        prefix.covers(&details(
            json!([{"type": "tool_invocation", "tool": "calendar.create_event"}])
        )),
        Ok(())
    );
    assert_eq!(
        prefix.covers(&details(
            json!([{"type": "tool_invocation", "tool": "calendar.admin.*"}])
        )),
        Ok(())
    );
    assert!(refusal(&prefix, json!([{"type": "tool_invocation", "tool": "mail.send"}])).contains("not within"));
    let exact = details(json!([{"type": "tool_invocation", "tool": "calendar.read"}]));
    assert!(refusal(&exact, json!([{"type": "tool_invocation", "tool": "*"}])).contains("not within"));
    let any = details(json!([{"type": "tool_invocation", "tool": "*"}]));
    assert_eq!(any.covers(&exact), Ok(()));
}

#[test]
fn tool_arguments_and_server_keep_their_granted_values() {
    let held = details(json!([{"type": "tool_invocation", "tool": "calendar.create_event",
        "server": "https://mcp.example", "arguments": {"calendar": "work"}}]));
    let narrower = json!([{"type": "tool_invocation", "tool": "calendar.create_event", "server": "https://mcp.example",
        "arguments": {"calendar": "work", "title": "Lunch"}}]);
    assert_eq!(held.covers(&details(narrower)), Ok(()));
    let why = refusal(
        &held,
        json!([{"type": "tool_invocation", "tool": "calendar.create_event", "server": "https://mcp.example",
            "arguments": {"calendar": "home"}}]),
    );
    assert!(why.contains("argument calendar"), "{why}");
    let why = refusal(
        &held,
        json!([{"type": "tool_invocation", "tool": "calendar.create_event", "arguments": {"calendar": "work"}}]),
    );
    assert!(why.contains("server"), "{why}");
}

#[test]
fn accounts_must_be_a_subset() {
    let held = details(
        json!([{"type": "account_information", "actions": ["read_balances", "read_transactions"],
        "accounts": [{"iban": "DE40100100103307118608"}, {"iban": "DE02100100109307118603"}]}]),
    );
    let fewer = json!([{"type": "account_information", "actions": ["read_balances"],
        "accounts": [{"iban": "DE02100100109307118603"}]}]);
    assert_eq!(held.covers(&details(fewer)), Ok(()));
    let why = refusal(
        &held,
        json!([{"type": "account_information", "actions": ["read_balances"], "accounts": [{"iban": "GB33BUKB20201555555555"}]}]),
    );
    assert!(why.contains("account GB33BUKB20201555555555"), "{why}");
}

#[test]
fn a_type_that_was_not_granted_is_refused() {
    let held = details(json!([{"type": "tool_invocation", "tool": "calendar.read"}]));
    let why = refusal(&held, json!([pay("1", "EUR", "DE02100100109307118603")]));
    assert!(why.contains("nothing of type payment_initiation"), "{why}");
}

#[test]
fn selecting_entries_keeps_only_those_approved() {
    let d = details(json!([{"type": "tool_invocation", "tool": "a"}, {"type": "tool_invocation", "tool": "b"}]));
    let kept = d.select(&[1].into_iter().collect()).expect("one kept");
    assert_eq!(kept.to_value()[0]["tool"], "b");
    assert!(d.select(&BTreeSet::new()).is_none());
}

#[test]
fn entries_are_described_in_words() {
    let d = details(json!([pay("123.50", "EUR", "DE02100100109307118603"),
        {"type": "tool_invocation", "tool": "*"}]));
    let words = d.describe();
    assert_eq!(
        words[0],
        "Pay up to 123.50 EUR to Merchant A (account DE02100100109307118603)"
    );
    assert_eq!(words[1], "Use any tool");
    assert_eq!(
        d.payment_totals().get("EUR").map(ToString::to_string).as_deref(),
        Some("123.50")
    );
}

#[test]
fn error_descriptions_stay_within_the_rfc_6749_charset() {
    let v = json!([{"type": "tool_invocation\"é\\", "tool": "x"}]);
    let why = AuthorizationDetails::from_value(&v).expect_err("refused");
    assert!(
        why.bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
        "{why}"
    );
}

#[test]
fn a_large_group_of_payments_is_compared_conservatively_and_quickly() {
    let many = |n: usize, amount: &str| {
        Value::from(
            (0..n)
                .map(|_| pay(amount, "EUR", "DE02100100109307118603"))
                .collect::<Vec<_>>(),
        )
    };
    let held = details(json!([pay("12", "EUR", "DE02100100109307118603")]));
    let started = std::time::Instant::now();
    assert_eq!(held.covers(&details(many(12, "1"))), Ok(()));
    assert!(held
        .covers(&details(many(16, "1")))
        .expect_err("16 EUR of 12")
        .contains("exceeds"));
    assert!(
        started.elapsed() < std::time::Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}
