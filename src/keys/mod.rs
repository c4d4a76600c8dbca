//! The registrar's keys: client_id signing, client_secret derivation and registration access
//! token derivation, each group with its own `kid`s so that each can be rotated alone
//! (docs/design.md, "Secrets without storage"). A retired signing key stays listed for
//! verification until its last client_id expires.
//!
//! The running service holds them in a [`KeyRing`]: one atomic swap replaces the whole set, and
//! every request works on one snapshot of it, so no request sees half a rotation.

pub mod ecdsa;
mod generate;
mod verifiers;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use josekit::jwk::Jwk;
use josekit::jws::JwsSigner;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::jose::HmacKey;

pub use generate::{generate_authority_key, registrar_key_set, SigningAlg};
pub use verifiers::{signer_for, VerifierSet};

/// Minimum length of a derivation key: HMAC-SHA256 gains nothing past 32 bytes and loses below
/// (RFC 2104 §3).
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

/// The registrar's signing key (the active one: it signs new client_ids and status records).
pub struct SigningKey {
    pub kid: String,
    pub alg: &'static str,
    pub signer: Box<dyn JwsSigner>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the signer holds the private key
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// HMAC keys for deriving one kind of secret, by `kid`, with the one used for new clients.
pub struct DerivationKeys {
    active_kid: String,
    active_key: HmacKey,
    /// Every key but the active one: earlier keys whose clients still exist.
    retired: HashMap<String, HmacKey>,
}

impl fmt::Debug for DerivationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivationKeys")
            .field("active", &self.active_kid)
            .field("retired", &self.retired.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl DerivationKeys {
    /// The kid of the key new clients get.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    pub fn get(&self, kid: &str) -> Option<&HmacKey> {
        if kid == self.active_kid {
            Some(&self.active_key)
        } else {
            self.retired.get(kid)
        }
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

/// What checking a client needs: the registrar's published signature keys, and, to check
/// client secrets, its `client_secret` derivation keys (and none of its other keys).
#[derive(Debug)]
pub struct VerificationKeys {
    pub verifiers: VerifierSet,
    pub client_secret: Option<Arc<DerivationKeys>>,
}

/// The registrar's key set, loaded from one JSON file (format in docs/configuration.md).
#[derive(Debug)]
pub struct RegistrarKeys {
    signing: SigningKey,
    verification: Arc<VerificationKeys>,
    public_jwks: Value,
    client_secret: Arc<DerivationKeys>,
    registration_access_token: DerivationKeys,
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
            // and signs nothing.
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
            // to_public_key drops kid and alg
            public.set_key_id(&kid);
            public.set_algorithm(alg);
            public.set_key_use("sig");
            public_keys.push(Value::Object(public.into()));
            signing.push((kid, alg, signer));
        }
        let active_index = signing
            .iter()
            .position(|(kid, _, _)| *kid == file.signing.active)
            .ok_or_else(|| {
                format!(
                    "signing.active names kid {:?}, which is not among signing.keys",
                    file.signing.active
                )
            })?;
        let (kid, alg, signer) = signing.swap_remove(active_index);
        let Some(signer) = signer else {
            return Err(format!("the active signing key {kid} has no private part"));
        };
        // The active key first, so that simple clients of the JWKS find it first.
        public_keys.swap(0, active_index);
        let public_jwks = json!({ "keys": public_keys });
        let verifiers = VerifierSet::from_jwks(&public_jwks).map_err(|e| e.to_string())?;
        let client_secret = Arc::new(derivation_keys("client_secret", file.client_secret)?);
        Ok(RegistrarKeys {
            signing: SigningKey { kid, alg, signer },
            verification: Arc::new(VerificationKeys {
                verifiers,
                client_secret: Some(client_secret.clone()),
            }),
            public_jwks,
            client_secret,
            registration_access_token: derivation_keys(
                "registration_access_token",
                file.registration_access_token,
            )?,
            development_only: file.development_only,
        })
    }

    /// A new key set as JSON: see [`registrar_key_set`].
    pub fn generate(alg: SigningAlg) -> Result<Value, KeyError> {
        registrar_key_set(alg)
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verifiers(&self) -> &VerifierSet {
        &self.verification.verifiers
    }

    /// The published keys and the client_secret keys, shareable with a resolver.
    pub fn verification(&self) -> &Arc<VerificationKeys> {
        &self.verification
    }

    pub fn client_secret(&self) -> &DerivationKeys {
        &self.client_secret
    }

    pub fn registration_access_token(&self) -> &DerivationKeys {
        &self.registration_access_token
    }

    /// The public JWK Set published at the jwks_uri.
    pub fn public_jwks(&self) -> &Value {
        &self.public_jwks
    }
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
        keys.insert(kid.to_owned(), HmacKey::new(&key));
    }
    let active_key = keys.remove(&group.active).ok_or_else(|| {
        format!(
            "{purpose}.active names kid {:?}, which is not among {purpose}.keys",
            group.active
        )
    })?;
    Ok(DerivationKeys {
        active_kid: group.active,
        active_key,
        retired: keys,
    })
}

/// The registrar's key set as the running service holds it: replaced whole, in one atomic
/// swap, when the key file changes. Readers take a [`snapshot`](KeyRing::snapshot) and use it
/// for the whole request.
#[derive(Clone)]
pub struct KeyRing(Arc<ArcSwap<RegistrarKeys>>);

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyRing").field(&self.snapshot()).finish()
    }
}

impl KeyRing {
    pub fn new(keys: RegistrarKeys) -> Self {
        KeyRing(Arc::new(ArcSwap::from_pointee(keys)))
    }

    /// The key set in force now.
    pub fn snapshot(&self) -> Arc<RegistrarKeys> {
        self.0.load_full()
    }

    /// Install a new key set: new client_ids are signed with its active key at once, and every
    /// holder of this ring sees the whole new set on its next snapshot.
    pub fn replace(&self, keys: RegistrarKeys) {
        self.0.store(Arc::new(keys));
    }
}

/// The registrar's published keys as an OP or edge node holds them (no private key): replace
/// them when the registrar's `/jwks` changes.
#[derive(Clone)]
pub struct PublishedKeys(Arc<ArcSwap<VerificationKeys>>);

impl fmt::Debug for PublishedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublishedKeys").finish_non_exhaustive()
    }
}

impl PublishedKeys {
    /// From the registrar's `/jwks`, and (to check client secrets) its `client_secret` keys.
    pub fn new(verifiers: VerifierSet, client_secret: Option<DerivationKeys>) -> Self {
        PublishedKeys(Arc::new(ArcSwap::from_pointee(VerificationKeys {
            verifiers,
            client_secret: client_secret.map(Arc::new),
        })))
    }

    /// New published keys, keeping the `client_secret` keys held now.
    pub fn replace_verifiers(&self, verifiers: VerifierSet) {
        let client_secret = self.0.load().client_secret.clone();
        self.0.store(Arc::new(VerificationKeys {
            verifiers,
            client_secret,
        }));
    }

    pub fn replace(&self, verifiers: VerifierSet, client_secret: Option<DerivationKeys>) {
        self.0.store(Arc::new(VerificationKeys {
            verifiers,
            client_secret: client_secret.map(Arc::new),
        }));
    }
}

/// Where a resolver or the status store gets the keys it verifies with.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// The registrar's own ring (the running registrar).
    Registrar(KeyRing),
    /// Only the published keys (an OP or edge node).
    Published(PublishedKeys),
}

impl KeySource {
    /// The keys in force now, as one snapshot.
    pub fn verification(&self) -> Arc<VerificationKeys> {
        match self {
            KeySource::Registrar(ring) => ring.snapshot().verification.clone(),
            KeySource::Published(keys) => keys.0.load_full(),
        }
    }
}

impl From<KeyRing> for KeySource {
    fn from(ring: KeyRing) -> Self {
        KeySource::Registrar(ring)
    }
}

impl From<PublishedKeys> for KeySource {
    fn from(keys: PublishedKeys) -> Self {
        KeySource::Published(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_set_loads_and_signs() {
        for alg in [SigningAlg::Es256, SigningAlg::Es384, SigningAlg::EdDsa] {
            let json = RegistrarKeys::generate(alg).unwrap();
            let keys = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap();
            let key = keys.signing_key();
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
        json["client_secret"]["keys"][0]["k"] = Value::String(crate::jose::base64url(&[1u8; 16]));
        let err = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("at least 32"), "{err}");
        let mut json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        json["signing"]["active"] = Value::String("nope".into());
        let err = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("signing.active"), "{err}");
        let mut json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        json["registration_access_token"]["active"] = Value::String("nope".into());
        let err = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("registration_access_token.active"), "{err}");
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        let keys = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap();
        let ring = KeyRing::new(keys);
        let shown = format!("{ring:?}");
        for group in ["client_secret", "registration_access_token"] {
            let k = json[group]["keys"][0]["k"].as_str().unwrap();
            assert!(!shown.contains(k), "{group} key printed: {shown}");
        }
        let d = json["signing"]["keys"][0]["d"].as_str().unwrap();
        assert!(!shown.contains(d), "signing key printed: {shown}");
    }

    #[test]
    fn a_snapshot_is_one_whole_key_set() {
        let load = || {
            let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
            RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap()
        };
        let ring = KeyRing::new(load());
        let before = ring.snapshot();
        ring.replace(load());
        let after = ring.snapshot();
        // the old snapshot is still complete and consistent with itself
        assert!(before.verifiers().has_kid(&before.signing_key().kid));
        assert!(!after.verifiers().has_kid(&before.signing_key().kid));
        let source = KeySource::from(ring.clone());
        assert!(source
            .verification()
            .verifiers
            .has_kid(&after.signing_key().kid));
    }
}
