//! Black-box tests: the real server on a random port, spoken to over HTTP with
//! real client libraries. One binary; one file per endpoint or grant.

mod helpers;

mod browser_flow;
mod cli;
mod client_credentials;
mod discovery;
mod introspection;
mod keys;
mod private_key_jwt;
mod revocation;
mod serve;
mod token_errors;
