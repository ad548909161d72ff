//! askama page models; the templates are in `templates/`.

use askama::Template;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf: &'a str,
    pub request: Option<&'a str>,
    pub client_name: Option<&'a str>,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

/// What the consent screen shows about a registered agent.
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub publisher: String,
    pub homepage: Option<String>,
    pub description: String,
    pub scopes: String,
    pub audiences: Vec<String>,
    pub max_token_ttl: i64,
    pub max_delegation_depth: i64,
    pub may_delegate_to: Vec<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub agent: Option<AgentView>,
    /// False when a third-party application asks that the agent act with its tokens.
    pub client_is_agent: bool,
    pub csrf: &'a str,
    pub request: &'a str,
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub kind: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine>,
    /// RFC 9396 transaction details asked for, in words; approved one by one.
    pub details: Vec<String>,
    pub resources: Vec<String>,
    pub durations: &'a [(i64, &'a str)],
}

pub struct GrantLine {
    pub id: String,
    pub client_name: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    /// RFC 9396 transaction details approved, in words.
    pub details: Vec<String>,
    pub since: String,
    pub until: String,
    pub last_used: String,
}

pub struct SignInLine {
    pub when: String,
    pub result: &'static str,
    pub from: String,
}

/// One thing an agent did (or was refused) on the user's behalf, in words.
pub struct ActivityLine {
    pub when: String,
    /// "Booker, acting for Trip planner".
    pub who: String,
    pub what: String,
    /// "granted" or "refused", for requests.
    pub outcome: Option<String>,
    /// For a refusal: the reason, and the deciding policy.
    pub why: Option<String>,
    pub scope: String,
    pub audience: String,
    /// RFC 9396 details, in words.
    pub details: Vec<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub activity: Vec<ActivityLine>,
    pub csrf: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub grants: Vec<GrantLine>,
    pub sign_ins: Vec<SignInLine>,
    pub sessions: Vec<SessionLine>,
}

/// One of the user's sessions still going, on the account page.
pub struct SessionLine {
    pub id: String,
    pub current: bool,
    pub created: String,
    pub last_seen: String,
    pub from: String,
    pub user_agent: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage;

/// A sentence for each scope, so the consent screen tells the truth in plain words.
pub fn describe_scope(scope: &str, resources: &[String]) -> String {
    match scope {
        "openid" => "Sign you in and learn your Deputy account identifier".into(),
        "profile" => "See your name and username".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Keep this access while you are away, until it expires or you withdraw it".into(),
        other => match resources {
            [] => format!("Use the “{other}” permission"),
            [one] => format!("Use the “{other}” permission at {one}"),
            _ => format!("Use the “{other}” permission at the resources below"),
        },
    }
}
