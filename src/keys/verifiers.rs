//! Signature verifiers and signers built from JWKs (josekit). The key fixes the algorithm: a
//! token is only ever verified with a verifier chosen by its `kid` from configured keys, whose
//! algorithm must equal the token's `alg` (RFC 8725 §3.1).

use std::collections::HashMap;

use josekit::jwk::Jwk;
use josekit::jws::{self, JwsSigner, JwsVerifier};
use serde_json::Value;

use super::ecdsa::{EcdsaSigner, EcdsaVerifier};
use crate::jwks::{JwkSetError, PublicJwkSet};

/// Public-key verifiers selected by `kid`.
#[derive(Debug, Default)]
pub struct VerifierSet {
    by_kid: HashMap<String, Vec<Box<dyn JwsVerifier>>>,
    /// Verifiers of keys without a `kid`.
    unnamed: Vec<Box<dyn JwsVerifier>>,
    /// The number of distinct signature keys.
    key_count: usize,
}

impl VerifierSet {
    /// The verifiers of a public JWK Set; keys marked `"use":"enc"` are skipped, every other
    /// key must be usable for signatures.
    pub fn from_set(set: &PublicJwkSet) -> Result<Self, JwkSetError> {
        let mut verifiers = VerifierSet::default();
        for (index, jwk) in set.keys().iter().enumerate() {
            if jwk.key_use() == Some("enc") {
                continue;
            }
            let for_key =
                verifiers_for(jwk).map_err(|reason| JwkSetError::Unusable { index, reason })?;
            verifiers.key_count += 1;
            match jwk.key_id() {
                Some(kid) => verifiers
                    .by_kid
                    .entry(kid.to_owned())
                    .or_default()
                    .extend(for_key),
                None => verifiers.unnamed.extend(for_key),
            }
        }
        if verifiers.key_count == 0 {
            return Err(JwkSetError::NoVerificationKey);
        }
        Ok(verifiers)
    }

    /// Parse a public JWK Set and build its verifiers.
    pub fn from_jwks(jwks: &Value) -> Result<Self, JwkSetError> {
        Self::from_set(&PublicJwkSet::parse(jwks)?)
    }

    /// The verifier for a token's `kid` and `alg`. Without a `kid`, only a set of exactly one
    /// key can answer, so that the choice of key never depends on the token alone.
    pub fn select(&self, kid: Option<&str>, alg: &str) -> Option<&dyn JwsVerifier> {
        let candidates = match kid {
            Some(kid) => self.by_kid.get(kid)?,
            None if self.key_count == 1 => {
                if self.unnamed.is_empty() {
                    self.by_kid.values().next()?
                } else {
                    &self.unnamed
                }
            }
            None => return None,
        };
        candidates
            .iter()
            .find(|v| v.algorithm().name() == alg)
            .map(|v| v.as_ref())
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }
}

/// The verifiers a public JWK can serve: its `alg` if it names one, otherwise what the key type
/// and curve fix. An RSA key without `alg` may be used with RS* and PS* (the same key either way;
/// pin `alg` in the JWK to allow only one).
fn verifiers_for(jwk: &Jwk) -> Result<Vec<Box<dyn JwsVerifier>>, String> {
    let curve = jwk.parameter("crv").and_then(Value::as_str);
    let algs: Vec<&str> = match (jwk.key_type(), jwk.algorithm(), curve) {
        ("oct", _, _) => return Err("symmetric (oct) keys are not accepted".into()),
        (_, Some(alg), _) => vec![alg],
        ("EC", None, Some("P-256")) => vec!["ES256"],
        ("EC", None, Some("P-384")) => vec!["ES384"],
        ("EC", None, Some("P-521")) => vec!["ES512"],
        ("OKP", None, Some("Ed25519" | "Ed448")) => vec!["EdDSA"],
        ("RSA", None, _) => vec!["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        (kty, None, crv) => {
            return Err(format!(
                "unsupported key type {kty} (curve {})",
                crv.unwrap_or("none")
            ))
        }
    };
    algs.into_iter()
        .map(|alg| verifier(alg, jwk))
        .collect::<Result<Vec<_>, _>>()
}

fn verifier(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, String> {
    let err = |e: josekit::JoseError| e.to_string();
    Ok(match alg {
        // prepared OpenSSL keys, without josekit's per-call EVP set-up (keys/ecdsa.rs); josekit
        // first, for its checks of the JWK's use, key_ops and alg
        "ES256" | "ES384" | "ES512" => {
            match alg {
                "ES256" => jws::ES256.verifier_from_jwk(jwk).map(drop),
                "ES384" => jws::ES384.verifier_from_jwk(jwk).map(drop),
                _ => jws::ES512.verifier_from_jwk(jwk).map(drop),
            }
            .map_err(err)?;
            Box::new(EcdsaVerifier::from_jwk(jwk, alg).map_err(err)?)
        }
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(jwk).map_err(err)?),
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk).map_err(err)?),
        "RS384" => Box::new(jws::RS384.verifier_from_jwk(jwk).map_err(err)?),
        "RS512" => Box::new(jws::RS512.verifier_from_jwk(jwk).map_err(err)?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk).map_err(err)?),
        "PS384" => Box::new(jws::PS384.verifier_from_jwk(jwk).map_err(err)?),
        "PS512" => Box::new(jws::PS512.verifier_from_jwk(jwk).map_err(err)?),
        other => return Err(format!("algorithm {other} is not accepted")),
    })
}

/// A signer for a private JWK: its `alg`, or the one its curve fixes.
pub fn signer_for(jwk: &Jwk) -> Result<(&'static str, Box<dyn JwsSigner>), String> {
    let curve = jwk.parameter("crv").and_then(Value::as_str);
    let err = |e: josekit::JoseError| e.to_string();
    let alg = match (jwk.key_type(), jwk.algorithm(), curve) {
        (_, Some(alg), _) => alg.to_owned(),
        ("EC", None, Some("P-256")) => "ES256".into(),
        ("EC", None, Some("P-384")) => "ES384".into(),
        ("EC", None, Some("P-521")) => "ES512".into(),
        ("OKP", None, Some("Ed25519" | "Ed448")) => "EdDSA".into(),
        ("RSA", None, _) => "PS256".into(),
        (kty, None, _) => return Err(format!("cannot sign with a {kty} key")),
    };
    let Some(alg) = SIGNING_ALGS.iter().copied().find(|a| *a == alg) else {
        return Err(format!("cannot sign with algorithm {alg}"));
    };
    let signer: Box<dyn JwsSigner> = match alg {
        "ES256" | "ES384" | "ES512" => {
            match alg {
                "ES256" => jws::ES256.signer_from_jwk(jwk).map(drop),
                "ES384" => jws::ES384.signer_from_jwk(jwk).map(drop),
                _ => jws::ES512.signer_from_jwk(jwk).map(drop),
            }
            .map_err(err)?;
            Box::new(EcdsaSigner::from_jwk(jwk, alg).map_err(err)?)
        }
        "EdDSA" => Box::new(jws::EdDSA.signer_from_jwk(jwk).map_err(err)?),
        "RS256" => Box::new(jws::RS256.signer_from_jwk(jwk).map_err(err)?),
        "PS256" => Box::new(jws::PS256.signer_from_jwk(jwk).map_err(err)?),
        other => return Err(format!("cannot sign with algorithm {other}")),
    };
    Ok((alg, signer))
}

/// The algorithms [`signer_for`] signs with.
const SIGNING_ALGS: [&str; 6] = ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_authority_key, SigningAlg};
    use serde_json::json;

    #[test]
    fn verifier_set_refuses_private_and_symmetric_keys() {
        let (private, public) = generate_authority_key(SigningAlg::EdDsa).unwrap();
        assert!(VerifierSet::from_jwks(&public).is_ok());
        let err = VerifierSet::from_jwks(&json!({ "keys": [private] })).unwrap_err();
        assert!(err.to_string().contains("private"), "{err}");
        let oct = json!({"keys":[{"kty":"oct","k":"AAAA"}]});
        assert!(VerifierSet::from_jwks(&oct).is_err());
        assert!(VerifierSet::from_jwks(&json!({"keys": []})).is_err());
        assert!(VerifierSet::from_jwks(&json!([])).is_err());
    }

    #[test]
    fn encryption_keys_are_skipped_but_must_be_public() {
        let (_, public) = generate_authority_key(SigningAlg::Es256).unwrap();
        let mut enc = public["keys"][0].clone();
        enc["use"] = json!("enc");
        enc["kid"] = json!("enc-1");
        let set = json!({ "keys": [public["keys"][0].clone(), enc.clone()] });
        let verifiers = VerifierSet::from_jwks(&set).unwrap();
        assert!(!verifiers.has_kid("enc-1"));
        assert_eq!(
            VerifierSet::from_jwks(&json!({ "keys": [enc] })).unwrap_err(),
            JwkSetError::NoVerificationKey
        );
    }
}
