//! Public JWK Sets (RFC 7517 §5): one parser and one set of checks for every set the service
//! reads — a client's registered `jwks`, a client's fetched `jwks_uri`, a trusted issuer's keys
//! (from a file or its `jwks_uri`) and the registrar's own published keys.
//!
//! A set holds public keys only: no private members of RFC 7518 §6 (`d`, `p`, `q`, `dp`, `dq`,
//! `qi`, `oth`) and no symmetric (`oct`, `k`) keys (OIDC DCR §2 for client sets; issuers are
//! trusted with public keys only, so a MAC-signed statement can never verify).

use josekit::jwk::Jwk;
use serde_json::{Map, Value};

/// JWK members that only private or symmetric keys have (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
pub const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a document is not an acceptable public JWK Set. The messages are ASCII and safe to show
/// to whoever sent or published the set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkSetError {
    #[error("not a JWK Set: no \"keys\" array")]
    NotASet,
    #[error("the JWK Set holds no key")]
    Empty,
    #[error("the JWK Set holds more than {0} keys")]
    TooManyKeys(usize),
    #[error("key {0} of the JWK Set is not an object")]
    NotAnObject(usize),
    #[error("key {0} of the JWK Set has no \"kty\"")]
    NoKeyType(usize),
    #[error("key {0} of the JWK Set is a symmetric (oct) key")]
    Symmetric(usize),
    #[error("key {index} of the JWK Set holds private key material (\"{member}\")")]
    PrivateMaterial { index: usize, member: &'static str },
    #[error("key {0} of the JWK Set is not a valid JWK")]
    InvalidKey(usize),
    #[error("the JWK Set mixes signing and encryption keys, so every key needs a \"use\" member")]
    UseMissing,
    #[error("key {index} of the JWK Set cannot verify signatures: {reason}")]
    Unusable { index: usize, reason: String },
    #[error("the JWK Set holds no signature verification key")]
    NoVerificationKey,
}

/// A JWK Set that passed [`PublicJwkSet::parse`]: an object with a non-empty `keys` array of
/// valid public JWKs.
#[derive(Debug, Clone)]
pub struct PublicJwkSet {
    keys: Vec<Jwk>,
}

impl PublicJwkSet {
    pub fn parse(value: &Value) -> Result<Self, JwkSetError> {
        match value {
            Value::Object(map) => Self::parse_map(map),
            _ => Err(JwkSetError::NotASet),
        }
    }

    pub fn parse_map(map: &Map<String, Value>) -> Result<Self, JwkSetError> {
        let Some(Value::Array(entries)) = map.get("keys") else {
            return Err(JwkSetError::NotASet);
        };
        if entries.is_empty() {
            return Err(JwkSetError::Empty);
        }
        let keys = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| public_key(index, entry))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PublicJwkSet { keys })
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The rules for a set a client registers inline (OIDC DCR §2): at most `max_keys` keys,
    /// and a `use` on every key once signing and encryption keys are mixed.
    pub fn check_registrable(&self, max_keys: usize) -> Result<(), JwkSetError> {
        if self.keys.len() > max_keys {
            return Err(JwkSetError::TooManyKeys(max_keys));
        }
        let uses: std::collections::BTreeSet<&str> =
            self.keys.iter().filter_map(Jwk::key_use).collect();
        let without_use = self.keys.iter().any(|k| k.key_use().is_none());
        if uses.len() > 1 && without_use {
            return Err(JwkSetError::UseMissing);
        }
        Ok(())
    }
}

fn public_key(index: usize, entry: &Value) -> Result<Jwk, JwkSetError> {
    let Value::Object(map) = entry else {
        return Err(JwkSetError::NotAnObject(index));
    };
    match map.get("kty") {
        Some(Value::String(kty)) if kty == "oct" => return Err(JwkSetError::Symmetric(index)),
        Some(Value::String(_)) => {}
        _ => return Err(JwkSetError::NoKeyType(index)),
    }
    if let Some(member) = PRIVATE_JWK_MEMBERS.iter().find(|m| map.contains_key(**m)) {
        return Err(JwkSetError::PrivateMaterial { index, member });
    }
    Jwk::from_map(map.clone()).map_err(|_| JwkSetError::InvalidKey(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#;

    fn ec() -> Value {
        serde_json::from_str(EC).unwrap()
    }

    #[test]
    fn public_sets_parse() {
        let set = PublicJwkSet::parse(&json!({ "keys": [ec()] })).unwrap();
        assert_eq!(set.keys().len(), 1);
        assert!(set.check_registrable(10).is_ok());
    }

    #[test]
    fn everything_but_a_public_set_is_refused() {
        for (bad, expected) in [
            (json!([]), JwkSetError::NotASet),
            (json!({"keys": {}}), JwkSetError::NotASet),
            (json!({"keys": []}), JwkSetError::Empty),
            (json!({"keys": [1]}), JwkSetError::NotAnObject(0)),
            (
                json!({"keys": [{"crv": "P-256"}]}),
                JwkSetError::NoKeyType(0),
            ),
            (json!({"keys": [{"kty": 7}]}), JwkSetError::NoKeyType(0)),
            (
                json!({"keys": [{"kty": "oct", "k": "AAAA"}]}),
                JwkSetError::Symmetric(0),
            ),
            (
                json!({"keys": [ec(), {"kty": "EC", "d": "secret"}]}),
                JwkSetError::PrivateMaterial {
                    index: 1,
                    member: "d",
                },
            ),
            (
                json!({"keys": [{"kty": "RSA", "use": 5}]}),
                JwkSetError::InvalidKey(0),
            ),
        ] {
            assert_eq!(PublicJwkSet::parse(&bad).unwrap_err(), expected, "{bad}");
        }
    }

    #[test]
    fn registrable_sets_are_bounded_and_name_their_uses() {
        let mut sig = ec();
        sig["use"] = json!("sig");
        let mut enc = ec();
        enc["use"] = json!("enc");
        let mixed = PublicJwkSet::parse(&json!({ "keys": [sig.clone(), enc.clone()] })).unwrap();
        assert!(mixed.check_registrable(10).is_ok());
        let unnamed = PublicJwkSet::parse(&json!({ "keys": [sig, enc, ec()] })).unwrap();
        assert_eq!(unnamed.check_registrable(10), Err(JwkSetError::UseMissing));
        let many = PublicJwkSet::parse(&json!({ "keys": vec![ec(); 11] })).unwrap();
        assert_eq!(
            many.check_registrable(10),
            Err(JwkSetError::TooManyKeys(10))
        );
    }
}
