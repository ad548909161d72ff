//! The registry reads an exchange needs (the client's agent, the consent grant,
//! the agents already in the chain), cached for `client_cache_ttl_ms` so that a
//! busy agent costs no database round trip; on a miss, everything missing is
//! read in one round trip.
//!
//! Sound because nothing here decides what must bite at once: a withdrawn
//! consent, a revoked token and a suspended agent are checked in the revocation
//! store on every exchange (an agent's kill switch stays set while it is
//! suspended, see [`crate::storage::agents::SUSPENDED`]). A grant's other fields
//! never change; an agent's ceilings may be up to the TTL old, as a client's
//! registration may.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlCache;
use crate::domain::{Agent, ClientId, Grant, User, UserId};
use crate::storage::{agents, grants, users, Db, StorageError};

pub struct RegistryCache {
    by_client: TtlCache<ClientId, Option<Arc<Agent>>>,
    by_id: TtlCache<String, Option<Arc<Agent>>>,
    grants: TtlCache<String, Option<Arc<Grant>>>,
    users: TtlCache<String, Option<Arc<User>>>,
}

/// What an exchange reads from the registry.
pub struct View {
    pub agent: Option<Arc<Agent>>,
    pub grant: Option<Arc<Grant>>,
    /// The agents already in the subject's chain, in its order.
    pub earlier: Vec<Option<Arc<Agent>>>,
    /// The user the subject token acts for (what policies see of them).
    pub user: Option<Arc<User>>,
}

impl RegistryCache {
    pub fn new(ttl: Duration) -> RegistryCache {
        RegistryCache {
            by_client: TtlCache::new(ttl),
            by_id: TtlCache::new(ttl),
            grants: TtlCache::new(ttl),
            users: TtlCache::new(ttl),
        }
    }

    pub fn purge(&self) {
        self.by_client.purge();
        self.by_id.purge();
        self.grants.purge();
        self.users.purge();
    }

    /// The agent whose client this is, if any.
    pub async fn agent_of_client(&self, db: &Db, client: &ClientId) -> Result<Option<Arc<Agent>>, StorageError> {
        if let Some(a) = self.by_client.get(client) {
            return Ok(a);
        }
        let cid = client.clone();
        let agent = db.run(move |c| agents::by_client(c, &cid)).await?.map(Arc::new);
        self.by_client.insert(client.clone(), agent.clone());
        Ok(agent)
    }

    pub async fn view(
        &self,
        db: &Db,
        client: &ClientId,
        grant_id: &str,
        user_id: &str,
        earlier: &[String],
    ) -> Result<View, StorageError> {
        let agent = self.by_client.get(client);
        let grant = self.grants.get(&grant_id.to_owned());
        let user = self.users.get(&user_id.to_owned());
        let cached: Vec<Option<Option<Arc<Agent>>>> = earlier.iter().map(|id| self.by_id.get(id)).collect();
        if let (Some(agent), Some(grant), Some(user)) = (&agent, &grant, &user) {
            if cached.iter().all(Option::is_some) {
                return Ok(View {
                    agent: agent.clone(),
                    grant: grant.clone(),
                    earlier: cached.into_iter().flatten().collect(),
                    user: user.clone(),
                });
            }
        }
        let (cid, gid, uid, ids) = (
            client.clone(),
            grant_id.to_owned(),
            UserId::from_stored(user_id.to_owned()),
            earlier.to_vec(),
        );
        let (agent, grant, user, earlier_agents) = db
            .run(move |c| {
                let agent = agents::by_client(c, &cid)?;
                let grant = grants::get(c, &gid)?;
                let user = users::by_id(c, &uid)?;
                let earlier = ids.iter().map(|id| agents::get(c, id)).collect::<Result<Vec<_>, _>>()?;
                Ok((agent, grant, user, earlier))
            })
            .await?;
        let agent = agent.map(Arc::new);
        let grant = grant.map(Arc::new);
        let user = user.map(Arc::new);
        self.users.insert(user_id.to_owned(), user.clone());
        let earlier_agents: Vec<Option<Arc<Agent>>> = earlier_agents.into_iter().map(|a| a.map(Arc::new)).collect();
        self.by_client.insert(client.clone(), agent.clone());
        self.grants.insert(grant_id.to_owned(), grant.clone());
        for (id, a) in earlier.iter().zip(&earlier_agents) {
            self.by_id.insert(id.clone(), a.clone());
        }
        Ok(View {
            agent,
            grant,
            earlier: earlier_agents,
            user,
        })
    }
}
