//! Server-side sessions: the cookie carries a session id that must name a
//! session still going in the database, so logging out kills every copy of
//! the cookie, and the account page lists the user's sessions and ends any
//! one of them, or all ("sign out everywhere").

use crate::browser_flow::{hidden, seed, sign_in, Browser};
use crate::helpers::{spawn_app, TestApp};

const PASSWORD: &str = "correct horse battery";

/// Signs alice in with a plain client (no cookie store) and returns the
/// session cookie, as `name=value`, that a thief could copy.
async fn signed_in_cookie(app: &TestApp) -> String {
    let cookie_of = |r: &reqwest::Response| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("deputy_session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .expect("a session cookie")
    };
    let r = app
        .http
        .get(format!("{}/login", app.address))
        .send()
        .await
        .expect("GET");
    let pre = cookie_of(&r);
    let page = r.text().await.expect("page");
    let r = app
        .http
        .post(format!("{}/login", app.address))
        .header("cookie", &pre)
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 303);
    cookie_of(&r)
}

/// GET /account with `cookie`: (status, Location, page).
async fn account_with(app: &TestApp, cookie: &str) -> (u16, Option<String>, String) {
    let r = app
        .http
        .get(format!("{}/account", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET");
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), loc, r.text().await.expect("body"))
}

/// The sessions an account page lists: (id, is this browser).
fn listed_sessions(page: &str) -> Vec<(String, bool)> {
    page.split("<tr id=\"session-")
        .skip(1)
        .map(|row| {
            let id = row.split('"').next().expect("id").to_owned();
            let row = row.split("</tr>").next().expect("row");
            (id, row.contains("(this browser)"))
        })
        .collect()
}

async fn signed_in_browser(app: &TestApp) -> Browser {
    let b = Browser::new(app);
    let (status, next, _) = sign_in(&b, "/login", "alice", PASSWORD).await;
    assert_eq!((status, next.as_deref()), (303, Some("/account")));
    b
}

#[tokio::test]
async fn a_copied_session_cookie_is_dead_after_logout() {
    let app = spawn_app().await;
    seed(&app).await;
    let cookie = signed_in_cookie(&app).await;
    let (status, _, page) = account_with(&app, &cookie).await;
    assert_eq!(status, 200, "{page}");

    // The browser signs out; the copy of its cookie, kept elsewhere, is dead too.
    let r = app
        .http
        .post(format!("{}/logout", app.address))
        .header("cookie", &cookie)
        .form(&[("csrf", hidden(&page, "csrf").as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 200);
    let (status, location, _) = account_with(&app, &cookie).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
}

#[tokio::test]
async fn the_account_page_lists_sessions_and_signing_out_everywhere_ends_another_browsers_session() {
    let app = spawn_app().await;
    seed(&app).await;
    let phone = signed_in_browser(&app).await;
    let laptop = signed_in_browser(&app).await;
    let (status, _, page) = laptop.get("/account").await;
    assert_eq!(status, 200);
    let listed = listed_sessions(&page);
    assert_eq!(listed.len(), 2, "both sessions listed: {page}");
    assert_eq!(listed.iter().filter(|(_, current)| *current).count(), 1);
    assert!(page.contains("127.0.0.1"), "with the address: {page}");

    let (status, location, _) = laptop
        .post("/account/sessions/end-all", &[("csrf", hidden(&page, "csrf").as_str())])
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    for b in [&phone, &laptop] {
        let (status, location, _) = b.get("/account").await;
        assert_eq!((status, location.as_deref()), (303, Some("/login")));
    }
}

#[tokio::test]
async fn ending_one_session_from_the_account_page_ends_only_that_one() {
    let app = spawn_app().await;
    seed(&app).await;
    let other = signed_in_browser(&app).await;
    let me = signed_in_browser(&app).await;
    let (_, _, page) = me.get("/account").await;
    let csrf = hidden(&page, "csrf");
    let (theirs, _) = listed_sessions(&page)
        .into_iter()
        .find(|(_, current)| !current)
        .expect("the other session");

    let (status, location, _) = me
        .post(
            "/account/sessions/end",
            &[("csrf", csrf.as_str()), ("session", theirs.as_str())],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")));
    assert_eq!(other.get("/account").await.1.as_deref(), Some("/login"));
    let (status, _, page) = me.get("/account").await;
    assert_eq!(status, 200, "mine goes on");
    assert_eq!(listed_sessions(&page).len(), 1);

    // Ending it again, or a session that is not hers, finds nothing.
    let (status, _, _) = me
        .post(
            "/account/sessions/end",
            &[("csrf", csrf.as_str()), ("session", theirs.as_str())],
        )
        .await;
    assert_eq!(status, 404);
    // Without this session's CSRF token, nothing is ended.
    let (status, _, _) = other
        .post("/account/sessions/end-all", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(status, 403);
    assert_eq!(me.get("/account").await.0, 200);
}
