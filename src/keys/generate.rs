//! New keys for the command line: a registrar key set, and a federation authority's key pair.

use josekit::jwk::alg::ec::EcCurve;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{KeyError, MIN_DERIVATION_KEY_BYTES};
use crate::jose;

/// Signature algorithms the registrar signs client_ids with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
pub enum SigningAlg {
    #[serde(rename = "ES256")]
    #[value(name = "ES256")]
    Es256,
    #[serde(rename = "ES384")]
    #[value(name = "ES384")]
    Es384,
    #[serde(rename = "EdDSA")]
    #[value(name = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Es384 => "ES384",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    fn generate(self) -> Result<Jwk, KeyError> {
        let generated = match self {
            SigningAlg::Es256 => Jwk::generate_ec_key(EcCurve::P256),
            SigningAlg::Es384 => Jwk::generate_ec_key(EcCurve::P384),
            SigningAlg::EdDsa => Jwk::generate_ed_key(EdCurve::Ed25519),
        };
        let mut jwk = generated.map_err(|e| KeyError::Generate(e.to_string()))?;
        jwk.set_algorithm(self.name());
        jwk.set_key_id(new_kid()?);
        Ok(jwk)
    }
}

/// A new registrar key set as JSON (the key file format of docs/configuration.md): one signing
/// key and one derivation key per purpose.
pub fn registrar_key_set(alg: SigningAlg) -> Result<Value, KeyError> {
    let signing = alg.generate()?;
    let kid = signing.key_id().unwrap_or_default().to_owned();
    Ok(json!({
        "signing": { "active": kid, "keys": [Value::Object(signing.into())] },
        "client_secret": derivation_group()?,
        "registration_access_token": derivation_group()?,
    }))
}

fn derivation_group() -> Result<Value, KeyError> {
    let kid = new_kid()?;
    let key = jose::random_bytes(MIN_DERIVATION_KEY_BYTES)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok(json!({
        "active": kid,
        "keys": [{ "kty": "oct", "kid": kid, "k": jose::base64url(&key) }],
    }))
}

/// A software statement issuer's key pair, for `stateless-dcr statement keygen`: the private
/// JWK (kept by the federation authority) and the public JWK Set (given to registrars).
pub fn generate_authority_key(alg: SigningAlg) -> Result<(Value, Value), KeyError> {
    let private = alg.generate()?;
    let kid = private.key_id().unwrap_or_default().to_owned();
    let mut public = private
        .to_public_key()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    // to_public_key drops kid and alg
    public.set_key_id(&kid);
    public.set_algorithm(alg.name());
    public.set_key_use("sig");
    let mut jwks = JwkSet::new();
    jwks.push_key(public);
    Ok((Value::Object(private.into()), Value::Object(jwks.into())))
}

fn new_kid() -> Result<String, KeyError> {
    jose::random_bytes(12)
        .map(|b| jose::base64url(&b))
        .map_err(|e| KeyError::Generate(e.to_string()))
}
