//! "What agents did on your behalf": audit events told in words a person
//! reads — who acted for whom, what, the outcome, why it was refused and which
//! policy decided, the transaction details — plus the agents' suspensions.

use std::collections::{BTreeSet, HashMap};

use super::format_time;
use super::pages::ActivityLine;
use crate::domain::AuthorizationDetails;
use crate::storage::audit::{self, AuditEvent, AuditFilter};
use crate::storage::{agents, DbConnection, StorageError};

/// The latest `limit` events about the user's agents, newest first.
pub fn for_user(c: &mut DbConnection, user_id: &str, limit: usize) -> Result<Vec<ActivityLine>, StorageError> {
    let mine = audit::query(
        c,
        &AuditFilter {
            user: Some(user_id.to_owned()),
            newest_first: true,
            limit: Some(200),
            ..Default::default()
        },
    )?;
    let mut events: Vec<AuditEvent> = mine.into_iter().filter(|e| e.agent_id.is_some()).collect();
    // The agents the user dealt with: their suspensions and resumptions matter to the user too.
    let ids: BTreeSet<String> = events.iter().flat_map(agents_of).collect();
    for id in ids.iter().take(20) {
        let about = audit::query(
            c,
            &AuditFilter {
                agent: Some(id.clone()),
                newest_first: true,
                limit: Some(50),
                ..Default::default()
            },
        )?;
        events.extend(
            about
                .into_iter()
                .filter(|e| matches!(e.event.as_str(), "agent_suspended" | "agent_resumed")),
        );
    }
    events.sort_by_key(|e| std::cmp::Reverse(e.seq));
    events.truncate(limit);
    let mut names: HashMap<String, String> = HashMap::new();
    for id in events.iter().flat_map(agents_of) {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
            let name = agents::get(c, slot.key())?
                .map(|a| a.name)
                .unwrap_or_else(|| slot.key().clone());
            slot.insert(name);
        }
    }
    Ok(events.iter().map(|e| line(e, &names)).collect())
}

/// The agents an event names: its chain (outermost first), else its agent.
fn agents_of(e: &AuditEvent) -> Vec<String> {
    let chain: Vec<String> = e
        .chain
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    if chain.is_empty() {
        e.agent_id.iter().cloned().collect()
    } else {
        chain
    }
}

fn line(e: &AuditEvent, names: &HashMap<String, String>) -> ActivityLine {
    let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
    let chain = agents_of(e);
    let who = match chain.as_slice() {
        [] => "An agent".to_owned(),
        [one] => name(one),
        [current, rest @ ..] => {
            let others: Vec<String> = rest.iter().map(name).collect();
            format!("{}, acting for {}", name(current), others.join(", acting for "))
        }
    };
    let what = match e.event.as_str() {
        "token_exchange" => "asked for a token to act for you",
        "authorization_code" => "asked for a token under your approval",
        "refresh_token" => "asked to renew its token",
        "consent_given" => "was approved by you",
        "consent_denied" => "was denied by you",
        "consent_withdrawn" => "lost your approval (withdrawn)",
        "consent" => "asked for your approval",
        "agent_suspended" => "was suspended by an administrator",
        "agent_resumed" => "was resumed by an administrator",
        "token_revoked" => "had a token revoked",
        other => other,
    };
    let outcome = match e.decision.as_str() {
        "issued" => Some("granted"),
        "denied" => Some("refused"),
        _ => None,
    };
    let policies: Vec<String> = e
        .policy_ids
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let why = (e.decision == "denied").then(|| {
        let reason = e.reason.clone().unwrap_or_else(|| "no reason was recorded".into());
        match policies.as_slice() {
            [] => reason,
            ids if reason.contains(&ids[0]) => reason,
            ids => format!("{reason} (policy {})", ids.join(", ")),
        }
    });
    let details = e
        .authorization_details
        .as_deref()
        .and_then(|d| AuthorizationDetails::parse(d).ok())
        .map(|d| d.describe())
        .unwrap_or_default();
    ActivityLine {
        when: format_time(e.at),
        who,
        what: what.to_owned(),
        outcome: outcome.map(str::to_owned),
        why,
        scope: e.scope.clone().unwrap_or_default(),
        audience: e.audience.clone().unwrap_or_default(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_sub_agent_exchange_reads_as_a_sentence() {
        let e = AuditEvent {
            event: "token_exchange".into(),
            decision: "denied".into(),
            reason: Some("invalid_grant: denied by policy acme-keeps-its-tokens".into()),
            chain: Some(r#"["booker","planner"]"#.into()),
            agent_id: Some("booker".into()),
            policy_ids: Some(r#"["acme-keeps-its-tokens"]"#.into()),
            authorization_details: Some(r#"[{"type":"tool_invocation","tool":"calendar.read"}]"#.into()),
            ..Default::default()
        };
        let names = HashMap::from([
            ("booker".to_owned(), "Booker".to_owned()),
            ("planner".to_owned(), "Trip planner".to_owned()),
        ]);
        let l = line(&e, &names);
        assert_eq!(l.who, "Booker, acting for Trip planner");
        assert_eq!(
            (l.what.as_str(), l.outcome.as_deref()),
            ("asked for a token to act for you", Some("refused"))
        );
        assert_eq!(
            l.why.as_deref(),
            Some("invalid_grant: denied by policy acme-keeps-its-tokens")
        );
        assert_eq!(l.details, ["Use the tool calendar.read"]);
    }
}
