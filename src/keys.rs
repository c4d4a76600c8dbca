//! Key sets: the registrar's own keys (client_id signing, client_secret derivation, registration
//! access token derivation, each with a `kid`), verifier sets built from public JWK sets (trusted
//! issuers, the registrar's published JWKS), and key generation for the command line.
//!
//! Separate keys per purpose (design.md "Secrets without storage"; digest D10) let each be rotated
//! alone. Every key has a `kid`; a retired key stays listed for verification until its last
//! client_id expires.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use josekit::jwk::alg::ec::EcCurve;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{self, JwsSigner, JwsVerifier};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::jose;

/// Minimum length of a derivation key: HMAC-SHA256 gains nothing past 32 bytes and loses below.
pub const MIN_DERIVATION_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("key generation failed: {0}")]
    Generate(String),
}

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

/// One of the registrar's signing keys.
#[derive(Debug)]
pub struct SigningKey {
    pub kid: String,
    pub alg: &'static str,
    pub signer: Box<dyn JwsSigner>,
}

/// Keys for HMAC derivation of one kind of secret, by `kid`, with the one used for new clients.
#[derive(Debug)]
pub struct DerivationKeys {
    active: String,
    keys: HashMap<String, Vec<u8>>,
}

impl DerivationKeys {
    pub fn active(&self) -> (&str, &[u8]) {
        // The constructor guarantees the active kid is present.
        let key = self
            .keys
            .get(&self.active)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        (&self.active, key)
    }

    pub fn get(&self, kid: &str) -> Option<&[u8]> {
        self.keys.get(kid).map(Vec::as_slice)
    }

    /// The `client_secret` group of a key file: the registrar's whole key set, or a file holding
    /// only `{"client_secret": {...}}`, which is all an OP needs to check client secrets.
    pub fn load_client_secret_keys(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let invalid = |message: String| KeyError::Invalid {
            path: shown.clone(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let group = value
            .get("client_secret")
            .cloned()
            .ok_or_else(|| invalid("no client_secret group".into()))?;
        let group: KeyGroup = serde_json::from_value(group).map_err(|e| invalid(e.to_string()))?;
        derivation_keys("client_secret", group).map_err(invalid)
    }
}

/// Public-key verifiers selected by `kid`; the key fixes the algorithm (digest §8 step 6).
#[derive(Debug, Default)]
pub struct VerifierSet {
    by_kid: HashMap<String, Vec<Box<dyn JwsVerifier>>>,
    /// Verifiers of keys without a `kid`, and the number of distinct keys.
    unnamed: Vec<Box<dyn JwsVerifier>>,
    key_count: usize,
}

impl VerifierSet {
    /// Build from a public JWK Set. Private members and symmetric keys are refused (issuers are
    /// configured with public keys only, digest C10); keys marked `"use":"enc"` are skipped.
    pub fn from_jwks(jwks: &Value) -> Result<Self, String> {
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWK Set: no \"keys\" array")?;
        let mut set = VerifierSet::default();
        for (index, key) in keys.iter().enumerate() {
            let map = key
                .as_object()
                .ok_or_else(|| format!("key {index} is not an object"))?;
            if map.get("use").and_then(Value::as_str) == Some("enc") {
                continue;
            }
            if PRIVATE_JWK_MEMBERS.iter().any(|m| map.contains_key(*m)) {
                return Err(format!("key {index} holds private key material"));
            }
            let jwk = Jwk::from_map(map.clone()).map_err(|e| format!("key {index}: {e}"))?;
            let verifiers = verifiers_for(&jwk).map_err(|e| format!("key {index}: {e}"))?;
            set.key_count += 1;
            match jwk.key_id() {
                Some(kid) => set
                    .by_kid
                    .entry(kid.to_owned())
                    .or_default()
                    .extend(verifiers),
                None => set.unnamed.extend(verifiers),
            }
        }
        if set.key_count == 0 {
            return Err("the JWK Set holds no signature verification key".into());
        }
        Ok(set)
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

/// JWK members that only private or symmetric keys have (RFC 7518 §6).
pub const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

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
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk).map_err(err)?),
        "ES384" => Box::new(jws::ES384.verifier_from_jwk(jwk).map_err(err)?),
        "ES512" => Box::new(jws::ES512.verifier_from_jwk(jwk).map_err(err)?),
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
    Ok(match alg.as_str() {
        "ES256" => (
            "ES256",
            Box::new(jws::ES256.signer_from_jwk(jwk).map_err(err)?),
        ),
        "ES384" => (
            "ES384",
            Box::new(jws::ES384.signer_from_jwk(jwk).map_err(err)?),
        ),
        "ES512" => (
            "ES512",
            Box::new(jws::ES512.signer_from_jwk(jwk).map_err(err)?),
        ),
        "EdDSA" => (
            "EdDSA",
            Box::new(jws::EdDSA.signer_from_jwk(jwk).map_err(err)?),
        ),
        "RS256" => (
            "RS256",
            Box::new(jws::RS256.signer_from_jwk(jwk).map_err(err)?),
        ),
        "PS256" => (
            "PS256",
            Box::new(jws::PS256.signer_from_jwk(jwk).map_err(err)?),
        ),
        other => return Err(format!("cannot sign with algorithm {other}")),
    })
}

/// A value replaced as a whole at run time (key rotation without restart): readers take the
/// current `Arc` and keep using it for the request at hand.
#[derive(Debug)]
pub struct Shared<T>(Arc<std::sync::RwLock<Arc<T>>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Shared<T> {
    pub fn new(value: Arc<T>) -> Self {
        Shared(Arc::new(std::sync::RwLock::new(value)))
    }

    pub fn current(&self) -> Arc<T> {
        // A poisoned lock still holds a complete value: writers only swap an Arc.
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, value: Arc<T>) {
        match self.0.write() {
            Ok(mut guard) => *guard = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

impl<T> From<Arc<T>> for Shared<T> {
    fn from(value: Arc<T>) -> Self {
        Shared::new(value)
    }
}

/// The registrar's key set as the running service holds it: replaced whole when the key file
/// changes, with the verifier and client_secret views that resolvers and the status store share.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Shared<RegistrarKeys>,
    verifiers: Shared<VerifierSet>,
    client_secret: Shared<DerivationKeys>,
}

impl KeyRing {
    pub fn new(keys: RegistrarKeys) -> Self {
        let keys = Arc::new(keys);
        KeyRing {
            verifiers: Shared::new(keys.shared_verifiers()),
            client_secret: Shared::new(keys.client_secret.clone()),
            keys: Shared::new(keys),
        }
    }

    pub fn current(&self) -> Arc<RegistrarKeys> {
        self.keys.current()
    }

    pub fn verifiers(&self) -> Shared<VerifierSet> {
        self.verifiers.clone()
    }

    pub fn client_secret_keys(&self) -> Shared<DerivationKeys> {
        self.client_secret.clone()
    }

    /// Install a new key set: new client_ids are signed with its active key at once, and every
    /// holder of the verifier and secret views sees it on its next request.
    pub fn replace(&self, keys: RegistrarKeys) {
        let keys = Arc::new(keys);
        self.verifiers.replace(keys.shared_verifiers());
        self.client_secret.replace(keys.client_secret.clone());
        self.keys.replace(keys);
    }
}

/// The registrar's key set, loaded from one JSON file (format in docs/configuration.md).
#[derive(Debug)]
pub struct RegistrarKeys {
    active: SigningKey,
    verifiers: Arc<VerifierSet>,
    public_jwks: Value,
    pub client_secret: Arc<DerivationKeys>,
    pub registration_access_token: DerivationKeys,
    pub development_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    development_only: bool,
    #[serde(default, rename = "_comment")]
    _comment: Option<Value>,
    signing: KeyGroup,
    client_secret: KeyGroup,
    registration_access_token: KeyGroup,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyGroup {
    active: String,
    keys: Vec<Map<String, Value>>,
}

impl RegistrarKeys {
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_json(&bytes).map_err(|message| KeyError::Invalid {
            path: shown,
            message,
        })
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;

        let mut signing = Vec::new();
        let mut public_keys = Vec::new();
        for (index, map) in file.signing.keys.into_iter().enumerate() {
            let jwk = Jwk::from_map(map).map_err(|e| format!("signing key {index}: {e}"))?;
            let kid = jwk
                .key_id()
                .ok_or_else(|| format!("signing key {index} has no kid"))?
                .to_owned();
            // A retired key may be kept as its public part only: it verifies old client_ids
            // and signs nothing (D10).
            let (alg, signer) = if jwk.parameter("d").is_some() {
                let (alg, signer) =
                    signer_for(&jwk).map_err(|e| format!("signing key {kid}: {e}"))?;
                (alg, Some(signer))
            } else {
                let alg = match jwk.algorithm() {
                    Some("ES256") => "ES256",
                    Some("ES384") => "ES384",
                    Some("EdDSA") => "EdDSA",
                    _ => return Err(format!("verification-only key {kid} must name its alg")),
                };
                (alg, None)
            };
            let mut public = jwk
                .to_public_key()
                .map_err(|e| format!("signing key {kid}: {e}"))?;
            // to_public_key drops kid and alg (stack-notes §2.5)
            public.set_key_id(&kid);
            public.set_algorithm(alg);
            public.set_key_use("sig");
            public_keys.push(Value::Object(public.into()));
            signing.push((kid, alg, signer));
        }
        let active_signing = signing
            .iter()
            .position(|(kid, _, _)| *kid == file.signing.active)
            .ok_or_else(|| {
                format!(
                    "signing.active names kid {:?}, which is not among signing.keys",
                    file.signing.active
                )
            })?;
        let (kid, alg, signer) = signing.swap_remove(active_signing);
        let Some(signer) = signer else {
            return Err(format!("the active signing key {kid} has no private part"));
        };
        let active = SigningKey { kid, alg, signer };
        // The active key first, so that simple clients of the JWKS find it first.
        public_keys.swap(0, active_signing);
        let public_jwks = json!({ "keys": public_keys });
        let verifiers = Arc::new(VerifierSet::from_jwks(&public_jwks)?);
        Ok(RegistrarKeys {
            active,
            verifiers,
            public_jwks,
            client_secret: Arc::new(derivation_keys("client_secret", file.client_secret)?),
            registration_access_token: derivation_keys(
                "registration_access_token",
                file.registration_access_token,
            )?,
            development_only: file.development_only,
        })
    }

    pub fn active_signing_key(&self) -> &SigningKey {
        &self.active
    }

    pub fn verifiers(&self) -> &VerifierSet {
        &self.verifiers
    }

    /// The verifiers of the published keys, shareable with a [`crate::resolve::Resolver`].
    pub fn shared_verifiers(&self) -> Arc<VerifierSet> {
        self.verifiers.clone()
    }

    /// The public JWK Set published at the jwks_uri.
    pub fn public_jwks(&self) -> &Value {
        &self.public_jwks
    }

    /// A new registrar key set as JSON: one signing key and one derivation key per purpose.
    pub fn generate(alg: SigningAlg) -> Result<Value, KeyError> {
        let signing = alg.generate()?;
        let kid = signing.key_id().unwrap_or_default().to_owned();
        Ok(json!({
            "signing": { "active": kid, "keys": [Value::Object(signing.into())] },
            "client_secret": derivation_group()?,
            "registration_access_token": derivation_group()?,
        }))
    }
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

fn derivation_keys(purpose: &str, group: KeyGroup) -> Result<DerivationKeys, String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut keys = HashMap::new();
    for (index, map) in group.keys.iter().enumerate() {
        let kid = map
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{purpose} key {index} has no kid"))?;
        if map.get("kty").and_then(Value::as_str) != Some("oct") {
            return Err(format!("{purpose} key {kid} must have \"kty\":\"oct\""));
        }
        let key = map
            .get("k")
            .and_then(Value::as_str)
            .and_then(|k| URL_SAFE_NO_PAD.decode(k).ok())
            .ok_or_else(|| format!("{purpose} key {kid}: \"k\" must be base64url"))?;
        if key.len() < MIN_DERIVATION_KEY_BYTES {
            return Err(format!(
                "{purpose} key {kid} is {} bytes; at least {MIN_DERIVATION_KEY_BYTES} are required",
                key.len()
            ));
        }
        keys.insert(kid.to_owned(), key);
    }
    if !keys.contains_key(&group.active) {
        return Err(format!(
            "{purpose}.active names kid {:?}, which is not among {purpose}.keys",
            group.active
        ));
    }
    Ok(DerivationKeys {
        active: group.active,
        keys,
    })
}

/// A software statement issuer's key pair, for `stateless-dcr statement keygen`: the private
/// JWK (kept by the federation authority) and the public JWK Set (given to registrars).
pub fn generate_authority_key(alg: SigningAlg) -> Result<(Value, Value), KeyError> {
    let private = alg.generate()?;
    let kid = private.key_id().unwrap_or_default().to_owned();
    let mut public = private
        .to_public_key()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    public.set_key_id(&kid);
    public.set_algorithm(alg.name());
    public.set_key_use("sig");
    let jwks: JwkSet = {
        let mut set = JwkSet::new();
        set.push_key(public);
        set
    };
    Ok((Value::Object(private.into()), Value::Object(jwks.into())))
}

fn new_kid() -> Result<String, KeyError> {
    jose::random_bytes(12)
        .map(|b| jose::base64url(&b))
        .map_err(|e| KeyError::Generate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_set_loads_and_signs() {
        for alg in [SigningAlg::Es256, SigningAlg::Es384, SigningAlg::EdDsa] {
            let json = RegistrarKeys::generate(alg).unwrap();
            let keys = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap();
            let key = keys.active_signing_key();
            assert_eq!(key.alg, alg.name());
            assert!(keys
                .verifiers()
                .select(Some(&key.kid), alg.name())
                .is_some());
            assert!(keys.verifiers().select(Some(&key.kid), "RS256").is_none());
            let published = keys.public_jwks().to_string();
            assert!(!published.contains("\"d\""), "{published}");
        }
    }

    #[test]
    fn refuses_short_derivation_key_and_unknown_active() {
        let mut json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        json["client_secret"]["keys"][0]["k"] = Value::String(jose::base64url(&[1u8; 16]));
        let err = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("at least 32"), "{err}");
        let mut json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        json["signing"]["active"] = Value::String("nope".into());
        let err = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("signing.active"), "{err}");
    }

    #[test]
    fn verifier_set_refuses_private_and_symmetric_keys() {
        let (private, public) = generate_authority_key(SigningAlg::EdDsa).unwrap();
        assert!(VerifierSet::from_jwks(&public).is_ok());
        let err = VerifierSet::from_jwks(&json!({ "keys": [private] })).unwrap_err();
        assert!(err.contains("private"), "{err}");
        let oct = json!({"keys":[{"kty":"oct","k":"AAAA"}]});
        assert!(VerifierSet::from_jwks(&oct).is_err());
        assert!(VerifierSet::from_jwks(&json!({"keys": []})).is_err());
        assert!(VerifierSet::from_jwks(&json!([])).is_err());
    }
}
