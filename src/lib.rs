//! stateless-dcr: OpenID Connect Dynamic Client Registration 1.0, RFC 7591 and RFC 7592 without a
//! client database.
//!
//! A relying party presents its metadata in a software statement signed by a federation authority
//! the registrar trusts. The registrar verifies the statement, validates the merged metadata
//! against the rules of the specifications (each listed with its source and its test in
//! docs/conformance.md) and answers with a `client_id` that is itself a signed token carrying
//! the validated metadata. The `client_secret` and the registration access token are derived
//! from keys, never stored.
//!
//! The crate is a library with a thin binary: [`startup::Application`] runs the HTTP service,
//! [`registrar::Registrar`] holds the protocol logic independent of HTTP, and [`cli`] implements
//! the command line.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod client_id;
pub mod clock;
pub mod config;
pub mod documents;
pub mod edge;
pub mod fetch;
pub mod fuzzing;
pub mod http;
pub mod iat;
pub mod jose;
pub mod jwks;
pub mod keys;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod ratelimit;
pub mod registrar;
pub mod resolve;
pub mod secret;
pub mod startup;
pub mod statement;
pub mod status;
pub mod status_list;

pub use config::Config;
pub use registrar::Registrar;
pub use startup::Application;
