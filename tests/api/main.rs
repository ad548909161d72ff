//! Black-box tests: the real server on a random port, spoken to over HTTP with
//! real client libraries. One binary; one file per endpoint or grant.

mod helpers;

mod admin_api;
mod admin_authority;
mod audit_trail;
mod authorization_details;
mod authorize_errors;
mod browser_flow;
mod cli;
mod client_auth_load;
mod client_credentials;
mod discovery;
mod e2e_agents;
mod e2e_browser;
mod exchange_subjects;
mod hostile_input;
mod identity_kill_switches;
mod introspection;
mod keys;
mod kill_switch;
mod pages;
mod policies;
mod private_key_jwt;
mod refresh;
mod revocation;
mod revocation_faults;
mod revocation_kill;
mod revocation_soak;
mod serve;
mod sessions;
mod third_party_agents;
mod token_errors;
mod token_exchange;
