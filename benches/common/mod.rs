//! Shared set-up of the criterion benchmarks: the development registrar configuration (run from
//! the crate root, as `cargo bench` does) and statements signed by the development authority.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use stateless_dcr::config::{Config, Management};
use stateless_dcr::{jose, keys};

pub const AUTHORITY_KEY: &str = "keys/dev-authority.private.jwk.json";
pub const EXAMPLE_CLAIMS: &str = "keys/example-statement.json";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The development defaults (dev keys, dev authority trusted), without a status store, with a
/// cache of `statement_cache_entries` verified statements (0: none).
pub fn config(statement_cache_entries: u64) -> Config {
    Config {
        statement_cache_entries,
        management: Management::ReadOnly,
        ..Config::default()
    }
}

pub fn read_json(path: &str) -> Map<String, Value> {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `count` distinct statements (each its own `jti`) over the example claims, valid for a day.
pub fn statements(count: usize) -> Vec<String> {
    let key = josekit::jwk::Jwk::from_map(read_json(AUTHORITY_KEY)).unwrap();
    let (alg, signer) = keys::signer_for(&key).unwrap();
    let mut header = Map::new();
    header.insert("alg".into(), alg.into());
    header.insert("kid".into(), key.key_id().unwrap().into());
    let mut claims = read_json(EXAMPLE_CLAIMS);
    claims.insert("iat".into(), now().into());
    claims.insert("exp".into(), (now() + 86_400).into());
    (0..count)
        .map(|_| {
            let jti = jose::base64url(&jose::random_bytes(16).unwrap());
            claims.insert("jti".into(), jti.into());
            let payload = serde_json::to_vec(&claims).unwrap();
            jose::sign_compact(&header, &payload, signer.as_ref()).unwrap()
        })
        .collect()
}

/// A registration request body carrying `statement`.
pub fn body(statement: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("software_statement".into(), statement.into());
    body
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
