//! The kill switches of users and clients, one capability for the pages, the
//! admin API, the CLI and `deputy import`: each change is committed to the
//! database with its revocation-log rows before it is reported done, then
//! Redis is told (one try; otherwise it hears of it from the log).

use super::{RevocationError, Revocations};
use crate::domain::{ClientId, UserId};
use crate::storage::audit::AuditEvent;
use crate::storage::{clients, users};

impl Revocations {
    /// Disables a user: every token naming them as its `sub` (their own, and
    /// every token exchanged from one) is revoked at once; their consents are
    /// withdrawn, refresh tokens revoked and sessions ended. `None`: no such user.
    pub async fn disable_user(&self, username: &str, now: i64) -> Result<Option<UserId>, RevocationError> {
        let u = username.to_owned();
        let done = self.db().run(move |c| users::disable(c, &u, now)).await?;
        Ok(match done {
            Some((id, logged)) => {
                self.propagate(&logged).await;
                Some(id)
            }
            None => None,
        })
    }

    /// Enables a user again; nothing issued before (up to this second) comes
    /// back. `None`: no such user.
    pub async fn enable_user(&self, username: &str, now: i64) -> Result<Option<UserId>, RevocationError> {
        let u = username.to_owned();
        let done = self.db().run(move |c| users::enable(c, &u, now)).await?;
        Ok(match done {
            Some((id, logged)) => {
                self.propagate(&logged).await;
                Some(id)
            }
            None => None,
        })
    }

    /// Deletes a client: every token whose `client_id` it is, its refresh
    /// tokens and its consents (and what was exchanged from them) end; a client
    /// registered later with the same id inherits nothing. False: no such client.
    pub async fn delete_client(&self, id: &ClientId, now: i64) -> Result<bool, RevocationError> {
        let i = id.clone();
        match self.db().run(move |c| clients::delete(c, &i, now)).await? {
            Some(logged) => {
                self.propagate(&logged).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// A change of an identity's kill switch, as the audit trail records it.
pub enum IdentityChange<'a> {
    UserDisabled(&'a UserId),
    UserEnabled(&'a UserId),
    ClientDeleted(&'a ClientId),
}

impl IdentityChange<'_> {
    /// The audit event; `who` says who did it and through what ("deputy user
    /// disable", "admin API, client ops").
    pub fn audit_event(&self, who: &str) -> AuditEvent {
        let (event, decision) = match self {
            IdentityChange::UserDisabled(_) => ("user_disabled", "disabled"),
            IdentityChange::UserEnabled(_) => ("user_enabled", "enabled"),
            IdentityChange::ClientDeleted(_) => ("client_deleted", "deleted"),
        };
        let (user_id, client_id) = match self {
            IdentityChange::UserDisabled(u) | IdentityChange::UserEnabled(u) => (Some(u.to_string()), None),
            IdentityChange::ClientDeleted(c) => (None, Some(c.to_string())),
        };
        AuditEvent {
            event: event.into(),
            decision: decision.into(),
            reason: Some(who.to_owned()),
            user_id,
            client_id,
            ..AuditEvent::default()
        }
    }
}
