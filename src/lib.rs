//! Deputy: an OAuth 2.0 / OpenID Connect identity provider for AI agents.
//!
//! Where each specification lives:
//!
//! | specification | module |
//! |---|---|
//! | RFC 6749 (core grants, errors, client authentication) | [`grants`], [`error`], [`client_auth`], [`form`] |
//! | RFC 6749 §2.3, §10.10 brute force and the work an attacker can cause (STANDARDS rule 11) | [`argon2_pool`], [`auth_limits`], [`client_auth`] |
//! | hostile input refused at the edge (STANDARDS rule 10) | [`form`], [`edge`], [`audit`] |
//! | RFC 6749 §4.1 + RFC 7636 (PKCE) + RFC 9207 (`iss`) authorization code | [`authorize`], [`interaction`], [`grants::authorization_code`] |
//! | RFC 6749 §6 + RFC 9700 §4.14 refresh tokens with rotation | [`grants::refresh_token`] |
//! | RFC 6749 §4.4 client credentials | [`grants::client_credentials`] |
//! | RFC 8693 token exchange (`act`, `may_act`) | [`grants::token_exchange`] |
//! | RFC 9396 rich authorization requests | [`grants::token_exchange`] (`authorization_details`) |
//! | RFC 7523 (`private_key_jwt`, actor assertions) | [`client_auth`], [`tokens::assertion`] |
//! | RFC 7591 client metadata | [`domain::client`], [`client_registry`] |
//! | RFC 7662 introspection | [`introspection`], [`endpoints::introspect`] |
//! | RFC 7009 revocation, cascades, kill switch | [`revocation`] |
//! | RFC 8414 / OIDC Discovery metadata | [`endpoints::discovery`] |
//! | RFC 7517 JWK Set, key rotation | [`endpoints::jwks`], [`tokens::keys`] |
//! | RFC 8707 resource indicators | [`domain::resource`], [`grants::client_credentials`], [`authorize`] |
//! | RFC 9068 JWT access tokens, RFC 8725 JWT BCP | [`tokens::access`] |
//! | OIDC Core: ID tokens, UserInfo | [`tokens::id_token`], [`userinfo`] |
//! | OIDC RP-Initiated Logout | [`interaction::logout`] |
//! | RFC 6750 bearer token errors | [`error`] (`invalid_token`, `insufficient_scope`) |
//! | runtime policy (Cedar): schema, versioned sets, decisions | [`policy`], [`storage::policies`], [`admin::policies`] |
//! | agents, audit trail, admin API | [`domain::agent`], [`agent_registry`], [`audit`], [`admin`] |

pub mod admin;
pub mod agent_registry;
pub mod argon2_pool;
pub mod audit;
pub mod auth_limits;
pub mod authorize;
pub mod cache;
pub mod cli;
pub mod client_auth;
pub mod client_registry;
pub mod clock;
pub mod config;
pub mod domain;
pub mod edge;
pub mod endpoints;
pub mod error;
pub mod form;
pub mod grants;
pub mod import;
pub mod interaction;
pub mod introspection;
pub mod policy;
pub mod revocation;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tokens;
pub mod user_registry;
pub mod userinfo;
