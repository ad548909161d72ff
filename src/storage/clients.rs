//! The client registry table.

use diesel::prelude::*;

use super::agents::SUSPENDED;
use super::kill_switches::{self, Kind};
use super::revocation_log::{self, Entry};
use super::schema::{clients, refresh_tokens};
use super::{grants, DbConnection, StorageError};
use crate::domain::{AuthMethod, Client, ClientId, GrantType, ResourceUri, Scope};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
struct ClientRow {
    client_id: String,
    client_name: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    grant_types: String,
    scope: String,
    token_endpoint_auth_method: String,
    jwks: Option<String>,
    resources: String,
    access_token_ttl: Option<i64>,
    created_at: i64,
    updated_at: i64,
    post_logout_redirect_uris: String,
    id_token_signed_response_alg: String,
    agents: String,
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(format!("client row: {what}"))
}

impl TryFrom<ClientRow> for Client {
    type Error = StorageError;

    fn try_from(r: ClientRow) -> Result<Client, StorageError> {
        let strings = |s: &str| serde_json::from_str::<Vec<String>>(s).map_err(|_| corrupt("list"));
        let grant_types = strings(&r.grant_types)?
            .iter()
            .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant type")))
            .collect::<Result<_, _>>()?;
        let resources = strings(&r.resources)?
            .iter()
            .map(|s| ResourceUri::parse(s).map_err(|_| corrupt("resource")))
            .collect::<Result<_, _>>()?;
        Ok(Client {
            id: ClientId::parse(&r.client_id).map_err(|_| corrupt("client_id"))?,
            name: r.client_name,
            secret_hash: r.secret_hash,
            redirect_uris: strings(&r.redirect_uris)?,
            grant_types,
            scope: Scope::parse(&r.scope).map_err(|_| corrupt("scope"))?,
            auth_method: AuthMethod::parse(&r.token_endpoint_auth_method).ok_or_else(|| corrupt("auth method"))?,
            jwks: r
                .jwks
                .map(|j| serde_json::from_str(&j).map_err(|_| corrupt("jwks")))
                .transpose()?,
            resources,
            access_token_ttl: r.access_token_ttl,
            created_at: r.created_at,
            updated_at: r.updated_at,
            post_logout_redirect_uris: strings(&r.post_logout_redirect_uris)?,
            id_token_alg: crate::tokens::Alg::parse(&r.id_token_signed_response_alg)
                .ok_or_else(|| corrupt("id_token_signed_response_alg"))?,
            agents: strings(&r.agents)?,
        })
    }
}

impl From<&Client> for ClientRow {
    fn from(c: &Client) -> ClientRow {
        let json = |v: Vec<&str>| serde_json::Value::from(v).to_string();
        ClientRow {
            client_id: c.id.as_str().to_owned(),
            client_name: c.name.clone(),
            secret_hash: c.secret_hash.clone(),
            redirect_uris: json(c.redirect_uris.iter().map(String::as_str).collect()),
            grant_types: json(c.grant_types.iter().map(|g| g.as_str()).collect()),
            scope: c.scope.to_string(),
            token_endpoint_auth_method: c.auth_method.as_str().to_owned(),
            jwks: c.jwks.as_ref().map(|j| j.to_string()),
            resources: json(c.resources.iter().map(ResourceUri::as_str).collect()),
            access_token_ttl: c.access_token_ttl,
            created_at: c.created_at,
            updated_at: c.updated_at,
            post_logout_redirect_uris: json(c.post_logout_redirect_uris.iter().map(String::as_str).collect()),
            id_token_signed_response_alg: c.id_token_alg.as_str().to_owned(),
            agents: json(c.agents.iter().map(String::as_str).collect()),
        }
    }
}

pub fn get(conn: &mut DbConnection, id: &ClientId) -> Result<Option<Client>, StorageError> {
    clients::table
        .find(id.as_str())
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?
        .map(Client::try_from)
        .transpose()
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Client>, StorageError> {
    clients::table
        .order(clients::client_id)
        .select(ClientRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

/// Registers a client. A client re-created with the id of a deleted one starts
/// clean: its kill switch, set by the deletion, is lowered to now (logged for
/// Redis), so that nothing issued before, up to this second, comes back.
pub fn insert(conn: &mut DbConnection, c: &Client) -> Result<(), StorageError> {
    conn.transaction(|conn| {
        diesel::insert_into(clients::table)
            .values(ClientRow::from(c))
            .execute(conn)?;
        let lifted = kill_switches::lift(conn, Kind::Client, c.id.as_str(), c.created_at)?;
        revocation_log::append(conn, lifted.into_iter().collect(), c.created_at)?;
        Ok(())
    })
}

/// Replaces every field but `created_at`. Returns false when the client does not exist.
pub fn update(conn: &mut DbConnection, c: &Client) -> Result<bool, StorageError> {
    let mut row = ClientRow::from(c);
    let existing: Option<i64> = clients::table
        .find(c.id.as_str())
        .select(clients::created_at)
        .first(conn)
        .optional()?;
    let Some(created_at) = existing else { return Ok(false) };
    row.created_at = created_at;
    let n = diesel::update(clients::table.find(c.id.as_str()))
        .set(row)
        .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a client, in one transaction: its kill switch is set (every token
/// whose `client_id` it is, is revoked), its consents are withdrawn (so every
/// token derived from them, through any exchange, is revoked too) and its
/// refresh tokens revoked; all of it logged for Redis. `None` if there is no
/// such client.
pub fn delete(conn: &mut DbConnection, id: &ClientId, now: i64) -> Result<Option<Vec<Entry>>, StorageError> {
    conn.transaction(|conn| {
        if diesel::delete(clients::table.find(id.as_str())).execute(conn)? != 1 {
            return Ok(None);
        }
        let mut changes = vec![kill_switches::set(conn, Kind::Client, id.as_str(), SUSPENDED)?];
        changes.extend(grants::revoke_all_unlogged(conn, Kind::Client, id.as_str(), now)?);
        diesel::update(refresh_tokens::table.filter(refresh_tokens::client_id.eq(id.as_str())))
            .set(refresh_tokens::revoked.eq(true))
            .execute(conn)?;
        Ok(Some(revocation_log::append(conn, changes, now)?))
    })
}
