//! Typed values and entities, validated at construction. No I/O here.

pub mod client;
pub mod ids;
pub mod resource;
pub mod scope;

pub use client::{AuthMethod, Client, GrantType};
pub use ids::ClientId;
pub use resource::ResourceUri;
pub use scope::Scope;
