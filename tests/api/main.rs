//! Black-box tests: the real server on a random port, spoken to over HTTP with
//! real client libraries. One binary; one file per endpoint or grant.

mod helpers;

mod client_credentials;
mod discovery;
mod token_errors;
