//! Typed values and entities, validated at construction. No I/O here.

pub mod agent;
pub mod authorization_details;
pub mod client;
pub mod grant;
pub mod ids;
pub mod resource;
pub mod scope;
pub mod user;

pub use agent::{Agent, AgentStatus};
pub use authorization_details::AuthorizationDetails;
pub use client::{AuthMethod, Client, GrantType};
pub use grant::{Grant, GrantStatus};
pub use ids::ClientId;
pub use resource::ResourceUri;
pub use scope::Scope;
pub use user::{User, UserId};
