//! The client registry table.

use diesel::prelude::*;

use super::schema::clients;
use super::{DbConnection, StorageError};
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

pub fn insert(conn: &mut DbConnection, c: &Client) -> Result<(), StorageError> {
    diesel::insert_into(clients::table)
        .values(ClientRow::from(c))
        .execute(conn)?;
    Ok(())
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

pub fn delete(conn: &mut DbConnection, id: &ClientId) -> Result<bool, StorageError> {
    Ok(diesel::delete(clients::table.find(id.as_str())).execute(conn)? == 1)
}
