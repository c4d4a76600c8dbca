//! Integration tests: each starts the real server on port 0 and talks HTTP to it
//! (`helpers::spawn_app`). Comments cite specification sections and the rule names of
//! docs/conformance.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod discovery;
mod documents;
mod fetch;
mod fuzz_corpus;
mod garbage;
mod helpers;
mod initial_access;
mod interop;
mod manage;
mod mcp;
mod mtls;
mod openbanking;
mod ops;
mod properties;
mod read;
mod redis;
mod register;
mod register_fetch;
mod resolve;
mod signed_requests;
mod statement;
mod statement_status;
mod status_lists;
mod withdrawals;
