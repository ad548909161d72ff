//! A consent grant: a user's approval that a client may act with some scopes
//! on some resources until a time. Every token issued under it carries its id,
//! so withdrawing it revokes them all.

use super::{AuthorizationDetails, ClientId, ResourceUri, Scope, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantStatus {
    Active,
    Revoked,
}

impl GrantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            GrantStatus::Active => "active",
            GrantStatus::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scope: Scope,
    pub resources: Vec<ResourceUri>,
    pub status: GrantStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    /// Agents the user approved to act under this grant (RFC 8693 §4.4 `may_act`).
    pub agents: Vec<String>,
    /// RFC 9396 transaction details the user approved; `None` covers none.
    pub authorization_details: Option<AuthorizationDetails>,
}

impl Grant {
    pub fn is_usable(&self, now: i64) -> bool {
        self.status == GrantStatus::Active && self.expires_at > now
    }

    /// True if this grant already covers `scope` on `resource`, and the
    /// transaction details asked for (no new consent needed).
    pub fn covers(
        &self,
        scope: &Scope,
        resource: Option<&ResourceUri>,
        details: Option<&AuthorizationDetails>,
    ) -> bool {
        scope.is_subset(&self.scope)
            && resource.is_none_or(|r| self.resources.contains(r))
            && details.is_none_or(|d| {
                self.authorization_details
                    .as_ref()
                    .is_some_and(|held| held.covers(d).is_ok())
            })
    }
}
