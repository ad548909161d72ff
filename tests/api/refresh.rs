//! The refresh token grant (RFC 6749 §6) with rotation and family revocation
//! (RFC 9700 §4.14.2); refresh tokens at /revoke (RFC 7009); consent withdrawn
//! on the account page and users disabled by the operator; and userinfo's
//! bearer errors (RFC 6750 §3, OIDC Core §5.3).

use std::collections::BTreeSet;

use crate::authorize_errors::{
    active, authorize_in, code_of, pkce, redeem, refresh, rp, rp_tokens, str_of, AuthRequest, API, PASSWORD,
};
use crate::browser_flow::{hidden, seed, sign_in, Browser};
use crate::helpers::{basic, spawn_app, TestApp};

/// Another confidential RP allowed refresh tokens.
const RP2: &str = "[[clients]]\nclient_id = \"rp2\"\nclient_name = \"Other RP\"\n\
    client_secret = \"rp2-secret-0123456789\"\ngrant_types = [\"authorization_code\", \"refresh_token\"]\n\
    redirect_uris = [\"https://rp2.example/cb\"]\nscope = \"openid offline_access read\"\n\
    resources = [\"https://api.example.com\"]\n";

fn rp2() -> (String, String) {
    ("rp2".to_owned(), "rp2-secret-0123456789".to_owned())
}

fn scopes(s: &str) -> BTreeSet<&str> {
    s.split(' ').collect()
}

async fn revoke(app: &TestApp, (id, secret): &(String, String), token: &str) -> crate::helpers::Reply {
    app.post_form("/revoke", Some(&basic(id, secret)), &[("token", token)])
        .await
}

async fn userinfo(app: &TestApp, token: Option<&str>) -> crate::helpers::Reply {
    let mut req = app.http.get(format!("{}/userinfo", app.address));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("userinfo request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    crate::helpers::Reply { status, headers, body }
}

#[tokio::test]
async fn each_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let (a0, r0) = (str_of(&t0, "access_token"), str_of(&t0, "refresh_token"));

    let t1 = refresh(&app, &rp(), r0, None).await;
    assert_eq!(t1.status, 200, "{:?}", t1.body);
    assert_eq!(t1.header("cache-control"), Some("no-store"));
    let (a1, r1) = (str_of(&t1.body, "access_token"), str_of(&t1.body, "refresh_token"));
    assert_ne!(r1, r0, "a new refresh token each time");
    assert_ne!(a1, a0);
    assert_eq!(scopes(str_of(&t1.body, "scope")), scopes("openid offline_access read"));

    let t2 = refresh(&app, &rp(), r1, None).await;
    assert_eq!(t2.status, 200, "{:?}", t2.body);
    let (a2, r2) = (str_of(&t2.body, "access_token"), str_of(&t2.body, "refresh_token"));
    assert!(r2 != r1 && r2 != r0);
    for a in [a0, a1, a2] {
        assert!(
            active(&app, &rp(), a).await,
            "before the reuse, every access token works"
        );
    }

    // The first refresh token, presented again.
    let reused = refresh(&app, &rp(), r0, None).await;
    assert_eq!(
        (reused.status, reused.error()),
        (400, "invalid_grant"),
        "{:?}",
        reused.body
    );
    // The whole family is revoked: the newest refresh token, and every access token it issued.
    let newest = refresh(&app, &rp(), r2, None).await;
    assert_eq!(
        (newest.status, newest.error()),
        (400, "invalid_grant"),
        "{:?}",
        newest.body
    );
    for (i, a) in [a0, a1, a2].into_iter().enumerate() {
        assert!(
            !active(&app, &rp(), a).await,
            "access token {i} is revoked with its family"
        );
    }
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_not_widen_it() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let r0 = str_of(&t0, "refresh_token");

    // Narrower: a subset of the original grant.
    let narrow = refresh(&app, &rp(), r0, Some("offline_access read")).await;
    assert_eq!(narrow.status, 200, "{:?}", narrow.body);
    assert_eq!(scopes(str_of(&narrow.body, "scope")), scopes("offline_access read"));
    assert!(narrow.body.get("id_token").is_none(), "no openid, no ID token");
    let r1 = str_of(&narrow.body, "refresh_token");

    // Wider than what was granted (email is registered for the client, but was not asked for).
    let r = refresh(&app, &rp(), r1, Some("offline_access read email")).await;
    assert_eq!((r.status, r.error()), (400, "invalid_scope"), "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());
    // Beyond the registration, on another family.
    let other = rp_tokens(&app, &b).await;
    let r = refresh(&app, &rp(), str_of(&other, "refresh_token"), Some("openid read admin")).await;
    assert_eq!((r.status, r.error()), (400, "invalid_scope"), "{:?}", r.body);
}

#[tokio::test]
async fn a_refused_refresh_request_does_not_use_up_the_refresh_token() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let (a0, r0) = (str_of(&t0, "access_token"), str_of(&t0, "refresh_token"));

    let r = refresh(&app, &rp(), r0, Some("openid offline_access read email")).await;
    assert_eq!((r.status, r.error()), (400, "invalid_scope"), "{:?}", r.body);

    // RFC 6749 §6: the server "MAY revoke the old refresh token *after* issuing a new
    // refresh token to the client". A refused request issued nothing, so the client's
    // refresh token must still work (and retrying it is not a reuse that revokes the family).
    let retry = refresh(&app, &rp(), r0, None).await;
    assert_eq!(
        retry.status, 200,
        "a refused refresh request must not burn the client's refresh token: {:?}",
        retry.body
    );
    assert!(active(&app, &rp(), a0).await, "nor revoke its family");
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant() {
    let app = spawn_app().await;
    seed(&app).await;
    app.import(RP2).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let r = refresh(&app, &rp2(), str_of(&t0, "refresh_token"), None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_it_and_its_access_token_but_only_its_own_client_may() {
    let app = spawn_app().await;
    seed(&app).await;
    app.import(RP2).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let (a0, r0) = (str_of(&t0, "access_token"), str_of(&t0, "refresh_token"));

    // Another client may not revoke it (RFC 7009 §2.1), and it keeps working.
    let r = revoke(&app, &rp2(), r0).await;
    assert_eq!((r.status, r.error()), (400, "unauthorized_client"), "{:?}", r.body);
    assert!(active(&app, &rp(), a0).await);
    let t1 = refresh(&app, &rp(), r0, None).await;
    assert_eq!(t1.status, 200, "a refused revocation changed nothing: {:?}", t1.body);
    let (a1, r1) = (str_of(&t1.body, "access_token"), str_of(&t1.body, "refresh_token"));

    let r = revoke(&app, &rp(), r1).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = refresh(&app, &rp(), r1, None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert!(!active(&app, &rp(), a1).await, "its access token is revoked with it");
    assert!(!active(&app, &rp(), a0).await, "and so is the family's earlier one");
}

/// Withdraws alice's only approval on the account page of `b`; returns the grant id.
async fn withdraw_on_account_page(b: &Browser) -> String {
    let (status, _, account) = b.get("/account").await;
    assert_eq!(status, 200, "{account}");
    let grant_id = hidden(&account, "grant_id");
    let csrf = hidden(&account, "csrf");
    let (status, next, body) = b
        .post(
            "/account/grants/revoke",
            &[("csrf", csrf.as_str()), ("grant_id", grant_id.as_str())],
        )
        .await;
    assert_eq!((status, next.as_deref()), (303, Some("/account")), "{body}");
    let (_, _, account) = b.get("/account").await;
    assert!(!account.contains(&grant_id), "the approval is gone: {account}");
    grant_id
}

#[tokio::test]
async fn withdrawing_consent_on_the_account_page_ends_refresh_and_access_on_every_instance() {
    let app = spawn_app().await;
    seed(&app).await;
    let peer = app.spawn_peer().await;
    let b = Browser::new(&app);
    // Two families under the same approval: one for each instance to try.
    let first = rp_tokens(&app, &b).await;
    let second = rp_tokens(&app, &b).await;
    let (a_app, r_app) = (str_of(&first, "access_token"), str_of(&first, "refresh_token"));
    let (a_peer, r_peer) = (str_of(&second, "access_token"), str_of(&second, "refresh_token"));
    for a in [a_app, a_peer] {
        assert!(active(&app, &rp(), a).await);
        assert!(active(&peer, &rp(), a).await, "the peer has seen the token active");
    }

    withdraw_on_account_page(&b).await;

    let r = refresh(&app, &rp(), r_app, None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    let r = refresh(&peer, &rp(), r_peer, None).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_grant"),
        "on the peer: {:?}",
        r.body
    );
    for a in [a_app, a_peer] {
        assert!(!active(&app, &rp(), a).await);
        assert!(!active(&peer, &rp(), a).await, "inactive on the peer too");
    }
    let info = userinfo(&peer, Some(a_peer)).await;
    assert_eq!(info.status, 401, "{:?}", info.body);
}

#[tokio::test]
async fn a_disabled_user_can_neither_refresh_nor_sign_in() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let (a0, r0) = (str_of(&t0, "access_token"), str_of(&t0, "refresh_token"));

    let out = app.cli(&["user", "disable", "alice"]).await;
    assert!(out.status.success(), "{out:?}");

    let r = refresh(&app, &rp(), r0, None).await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "{:?}", r.body);
    assert!(!active(&app, &rp(), a0).await, "their approvals were withdrawn");
    // The existing session no longer counts.
    let (status, location, _) = b.get("/account").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    // And a new sign-in is refused, with no session created.
    let fresh = Browser::new(&app);
    let (status, location, page) = sign_in(&fresh, "/login", "alice", PASSWORD).await;
    assert_eq!((status, location), (403, None), "{page}");
    assert!(page.contains("disabled"), "{page}");
    let (status, location, _) = fresh.get("/account").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
}

#[tokio::test]
async fn userinfo_refuses_a_missing_a_non_openid_and_a_revoked_token() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let access = str_of(&t0, "access_token");

    let ok = userinfo(&app, Some(access)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert!(ok.body["sub"].is_string());

    let none = userinfo(&app, None).await;
    assert_eq!(none.status, 401, "{:?}", none.body);
    let challenge = none.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.starts_with("Bearer "), "RFC 6750 §3: {challenge}");

    let garbage = userinfo(&app, Some("not-a-token")).await;
    assert_eq!(garbage.status, 401);
    let challenge = garbage.header("www-authenticate").expect("WWW-Authenticate");
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );

    let svc = app.client("svc", "read", &[API]).await;
    let cc = app.token(&svc, &[]).await;
    let r = userinfo(&app, Some(&cc)).await;
    assert_eq!((r.status, r.error()), (403, "insufficient_scope"), "{:?}", r.body);
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");

    let revoked = app
        .post_form(
            "/revoke",
            Some(&basic("rp", "rp-secret-0123456789")),
            &[("token", access)],
        )
        .await;
    assert_eq!(revoked.status, 200);
    let r = userinfo(&app, Some(access)).await;
    assert_eq!((r.status, r.error()), (401, "invalid_token"), "{:?}", r.body);
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn a_refresh_token_from_a_second_authorization_is_a_separate_family() {
    // Reusing one family's token must not take down another family of the same grant.
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let p = pkce();
    let first = rp_tokens(&app, &b).await;
    let code = code_of(&app, &authorize_in(&b, &AuthRequest::rp(&p.challenge)).await);
    let second = redeem(&app, &code, &p.verifier).await;
    assert_eq!(second.status, 200, "{:?}", second.body);

    let r0 = str_of(&first, "refresh_token");
    assert_eq!(refresh(&app, &rp(), r0, None).await.status, 200);
    let reused = refresh(&app, &rp(), r0, None).await;
    assert_eq!(reused.error(), "invalid_grant");

    let other = refresh(&app, &rp(), str_of(&second.body, "refresh_token"), None).await;
    assert_eq!(other.status, 200, "another family is untouched: {:?}", other.body);
    assert!(active(&app, &rp(), str_of(&second.body, "access_token")).await);
}

#[tokio::test]
async fn a_refresh_narrowed_without_offline_access_still_rotates_and_keeps_the_refresh_scope() {
    let app = spawn_app().await;
    seed(&app).await;
    let b = Browser::new(&app);
    let t0 = rp_tokens(&app, &b).await;
    let r0 = str_of(&t0, "refresh_token");

    // RFC 6749 §6: the access token gets the narrower scope; a new refresh token
    // is issued (rotation) with the scope of the one presented.
    let narrow = refresh(&app, &rp(), r0, Some("read")).await;
    assert_eq!(narrow.status, 200, "{:?}", narrow.body);
    assert_eq!(str_of(&narrow.body, "scope"), "read");
    let (_, claims) = crate::helpers::verify_with_jwks(&app, str_of(&narrow.body, "access_token")).await;
    assert_eq!(claims["scope"], "read");
    let r1 = str_of(&narrow.body, "refresh_token");
    assert_ne!(r1, r0);

    // The old one is spent; the new one still carries the whole original scope.
    let wide = refresh(&app, &rp(), r1, None).await;
    assert_eq!(wide.status, 200, "{:?}", wide.body);
    assert_eq!(
        scopes(str_of(&wide.body, "scope")),
        scopes("openid offline_access read")
    );
    assert!(wide.body["refresh_token"].is_string(), "{:?}", wide.body);
    let again = refresh(&app, &rp(), r0, None).await;
    assert_eq!(
        (again.status, again.error()),
        (400, "invalid_grant"),
        "{:?}",
        again.body
    );
}
