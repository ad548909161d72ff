//! RFC 9396 transaction details: asked for at /authorize, shown in words and
//! approved one by one on the consent screen, carried by the user's tokens,
//! and never widened by an exchange, a sub-agent's re-exchange or a refresh.

use serde_json::{json, Value};

use crate::browser_flow::{pkce, query_param, sign_in, Browser};
use crate::helpers::{basic, RedisChoice};
use crate::token_exchange::{alice_token_for_planner, exchange, world, World, API, BOOKER, PLANNER, REDIRECT};

const IBAN: &str = "DE02100100109307118603";

fn payment(amount: &str, currency: &str, iban: &str) -> Value {
    json!({"type": "payment_initiation", "instructedAmount": {"currency": currency, "amount": amount},
           "creditorName": "Hotel Adlon", "creditorAccount": {"iban": iban}})
}

fn tool(name: &str) -> Value {
    json!({"type": "tool_invocation", "tool": name})
}

fn encode(v: &Value) -> String {
    url::form_urlencoded::byte_serialize(v.to_string().as_bytes()).collect()
}

/// Alice signs in for `client`, asking `details` for `API`, and approves the
/// entries at `approve` (indexes); the client redeems the code. Returns the
/// token response, the consent screen and alice's browser.
async fn alice_approves_details(
    w: &World,
    client: (&str, &str),
    scopes: &str,
    details: &Value,
    approve: &[usize],
) -> (Value, String, Browser) {
    let scopes: Vec<&str> = scopes.split("%20").collect();
    let extra = format!("&resource={API}&authorization_details={}", encode(details));
    let (tokens, browser, consent) =
        crate::token_exchange::alice_approves_details(w, client, &scopes, &extra, approve).await;
    (tokens, consent, browser)
}

fn token(r: &crate::helpers::Reply) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["access_token"].as_str().expect("access_token").to_owned()
}

#[tokio::test]
async fn an_exchange_cannot_add_details_the_user_never_consented_to() {
    let w = world(RedisChoice::ByBackend).await;
    // Alice consented to `read` only: her token carries no transaction details.
    let user_token = alice_token_for_planner(&w).await;
    let million = json!([payment("1000000", "EUR", "ATTACKER")]).to_string();
    let r = exchange(
        &w,
        PLANNER,
        &w.planner,
        &user_token,
        &[("authorization_details", &million)],
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_authorization_details"),
        "{:?}",
        r.body
    );
    assert!(r.body["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("covers none"));
    // A detail-free planner token: the booker cannot add a wildcard tool either.
    let planner_token = token(&exchange(&w, PLANNER, &w.planner, &user_token, &[]).await);
    let any_tool = json!([tool("*")]).to_string();
    let r = exchange(
        &w,
        BOOKER,
        &w.booker,
        &planner_token,
        &[("authorization_details", &any_tool)],
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_authorization_details"),
        "{:?}",
        r.body
    );
    // The refusals are audited with what was asked.
    let events = w.app.cli(&["audit", "tail"]).await;
    let log = String::from_utf8_lossy(&events.stdout);
    assert!(
        log.contains("ATTACKER"),
        "the refused request's details are in the audit: {log}"
    );
}

#[tokio::test]
async fn consented_details_reach_the_token_and_every_derived_token_stays_within_them() {
    let w = world(RedisChoice::ByBackend).await;
    let details = json!([payment("500.00", "EUR", IBAN), tool("calendar.*")]);
    let (tokens, consent, _) = alice_approves_details(&w, PLANNER, "openid%20read", &details, &[0, 1]).await;
    // The consent screen says it in words, never as raw JSON.
    assert!(
        consent.contains("Pay up to 500.00 EUR to Hotel Adlon (account DE02100100109307118603)"),
        "{consent}"
    );
    assert!(
        consent.contains("Use any tool whose name starts with calendar."),
        "{consent}"
    );
    assert!(!consent.contains("instructedAmount"), "{consent}");
    // RFC 9396 §7: the token response returns the granted details; §9.2: introspection reports them.
    assert_eq!(tokens["authorization_details"], details);
    let user_token = tokens["access_token"].as_str().expect("token").to_owned();
    let seen = w.app.introspect(&w.rs, &user_token).await;
    assert_eq!(seen.body["authorization_details"], details);

    // With none asked, the planner's token inherits them unchanged.
    let r = exchange(&w, PLANNER, &w.planner, &user_token, &[]).await;
    assert_eq!(r.body["authorization_details"], details, "{:?}", r.body);
    // The planner narrows to 200 EUR of the 500 and one calendar tool.
    let narrow = json!([payment("200", "EUR", IBAN), tool("calendar.create_event")]);
    let r = exchange(
        &w,
        PLANNER,
        &w.planner,
        &user_token,
        &[("authorization_details", &narrow.to_string())],
    )
    .await;
    let planner_token = token(&r);
    assert_eq!(r.body["authorization_details"], narrow);

    // The booker's re-exchange without details keeps the planner's restriction.
    let r = exchange(&w, BOOKER, &w.booker, &planner_token, &[]).await;
    token(&r);
    assert_eq!(r.body["authorization_details"], narrow);
    let seen = w
        .app
        .introspect(&w.rs, r.body["access_token"].as_str().expect("token"))
        .await;
    assert_eq!(seen.body["authorization_details"], narrow);

    // Anything wider than the planner holds is refused, naming what is wrong.
    for (case, asked, says) in [
        ("more money", json!([payment("200.01", "EUR", IBAN)]), "exceeds"),
        (
            "more money over two entries",
            json!([payment("150", "EUR", IBAN), payment("150", "EUR", IBAN)]),
            "exceeds",
        ),
        (
            "another currency",
            json!([payment("1", "USD", IBAN)]),
            "another currency",
        ),
        (
            "another creditor",
            json!([payment("1", "EUR", "ATTACKER")]),
            "creditor account ATTACKER",
        ),
        ("any tool", json!([tool("*")]), "not within"),
        ("another tool", json!([tool("calendar.delete_event")]), "not within"),
    ] {
        let r = exchange(
            &w,
            BOOKER,
            &w.booker,
            &planner_token,
            &[("authorization_details", &asked.to_string())],
        )
        .await;
        assert_eq!(
            (r.status, r.error()),
            (400, "invalid_authorization_details"),
            "{case}: {:?}",
            r.body
        );
        let description = r.body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{case}: {description}");
    }
}

#[tokio::test]
async fn the_user_approves_or_denies_each_detail_and_the_account_page_shows_them() {
    let w = world(RedisChoice::ByBackend).await;
    let details = json!([payment("80", "EUR", IBAN), tool("calendar.read")]);
    // Alice unticks the payment.
    let (tokens, _, browser) = alice_approves_details(&w, PLANNER, "openid%20read", &details, &[1]).await;
    assert_eq!(tokens["authorization_details"], json!([tool("calendar.read")]));
    let user_token = tokens["access_token"].as_str().expect("token").to_owned();
    let r = exchange(
        &w,
        PLANNER,
        &w.planner,
        &user_token,
        &[("authorization_details", &json!([payment("1", "EUR", IBAN)]).to_string())],
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_authorization_details"),
        "{:?}",
        r.body
    );
    let (status, _, page) = browser.get("/account").await;
    assert_eq!(status, 200);
    // The approval shows what was approved, in words; the activity shows the refused request's details.
    let (approvals, activity) = page.split_at(page.find("id=\"activity\"").expect("activity section"));
    assert!(approvals.contains("Use the tool calendar.read"), "{approvals}");
    assert!(!approvals.contains("Pay up to"), "{approvals}");
    assert!(
        activity.contains("Pay up to 1 EUR to Hotel Adlon (account DE02100100109307118603)"),
        "{activity}"
    );
}

#[tokio::test]
async fn an_earlier_approval_covers_only_the_details_it_approved() {
    let w = world(RedisChoice::ByBackend).await;
    let details = json!([payment("100", "EUR", IBAN)]);
    alice_approves_details(&w, PLANNER, "openid%20read", &details, &[0]).await;
    // Asking again for less is covered by the approval: no consent screen.
    let b = Browser::new(&w.app);
    let (_, challenge) = pkce();
    let ask = |d: &Value| {
        format!(
            "/authorize?response_type=code&client_id=planner-client&redirect_uri={REDIRECT}&scope=openid%20read\
             &resource={API}&authorization_details={}&state=st&code_challenge={challenge}&code_challenge_method=S256",
            encode(d)
        )
    };
    let (_, at, _) = b.follow(&ask(&json!([payment("60", "EUR", IBAN)]))).await;
    let (_, next, _) = sign_in(&b, &at, "alice", "correct horse battery").await;
    let (_, next, _) = b.follow(&next.expect("location")).await;
    assert!(next.starts_with(REDIRECT) && next.contains("code="), "covered: {next}");
    // Asking for more than was approved needs a new consent.
    let (_, at, _) = b.follow(&ask(&json!([payment("100.01", "EUR", IBAN)]))).await;
    assert!(at.contains("/consent"), "not covered: {at}");
}

#[tokio::test]
async fn a_refresh_keeps_or_narrows_the_details_never_more() {
    let w = world(RedisChoice::ByBackend).await;
    w.app
        .import(&format!(
            r#"
[[clients]]
client_id = "wallet"
client_name = "Wallet"
client_secret = "wallet-secret-0123456789"
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["{REDIRECT}"]
scope = "openid read offline_access"
resources = ["{API}"]
"#
        ))
        .await;
    let wallet = ("wallet", "wallet-secret-0123456789");
    let details = json!([payment("100", "EUR", IBAN)]);
    let (tokens, _, _) = alice_approves_details(&w, wallet, "openid%20read%20offline_access", &details, &[0]).await;
    let refresh = |rt: String, extra: Option<Value>| {
        let app = &w.app;
        async move {
            let mut params = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", rt)];
            if let Some(d) = extra {
                params.push(("authorization_details", d.to_string()));
            }
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form("/token", Some(&basic(wallet.0, wallet.1)), &p).await
        }
    };
    let rt = tokens["refresh_token"].as_str().expect("refresh_token").to_owned();
    // Kept.
    let r = refresh(rt, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["authorization_details"], details);
    // Narrowed for this access token only (RFC 9396 §6)...
    let rt = r.body["refresh_token"].as_str().expect("refresh_token").to_owned();
    let r = refresh(rt, Some(json!([payment("10", "EUR", IBAN)]))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["authorization_details"], json!([payment("10", "EUR", IBAN)]));
    // ...the family keeps what was approved; more than that is refused.
    let rt = r.body["refresh_token"].as_str().expect("refresh_token").to_owned();
    let r = refresh(rt.clone(), Some(json!([payment("100.50", "EUR", IBAN)]))).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_authorization_details"),
        "{:?}",
        r.body
    );
    let r = refresh(rt, None).await;
    assert_eq!(r.body["authorization_details"], details, "{:?}", r.body);
}

#[tokio::test]
async fn malformed_details_at_authorize_are_sent_back_as_invalid_authorization_details() {
    let w = world(RedisChoice::ByBackend).await;
    let (_, challenge) = pkce();
    for (case, raw) in [
        ("unknown type", encode(&json!([{"type": "launch_missiles"}]))),
        ("not JSON", "%7Bnot".to_owned()),
        ("an object", encode(&json!({"type": "tool_invocation", "tool": "x"}))),
        (
            "amount as a number",
            encode(&json!([{"type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": 5}, "creditorAccount": {"iban": IBAN}}])),
        ),
    ] {
        let r = w
            .app
            .get(&format!(
                "/authorize?response_type=code&client_id=planner-client&redirect_uri={REDIRECT}&scope=read\
                 &authorization_details={raw}&state=st&code_challenge={challenge}&code_challenge_method=S256"
            ))
            .await;
        let location = r.header("location").unwrap_or_default().to_owned();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("invalid_authorization_details"),
            "{case}: {location}"
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("st"), "{case}");
    }
    // And at the token endpoint, for an exchange.
    let user_token = alice_token_for_planner(&w).await;
    let r = exchange(
        &w,
        PLANNER,
        &w.planner,
        &user_token,
        &[("authorization_details", "[{\"type\":\"x\"}]")],
    )
    .await;
    assert_eq!((r.status, r.error()), (400, "invalid_authorization_details"));
}
