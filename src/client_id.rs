//! The client_id: a JWS signed by the registrar's active key that carries the validated
//! metadata (docs/design.md, "The client_id"), and the secrets derived from it.
//!
//! The client_id is public (it travels in URLs and logs), so it holds no secret: the
//! client_secret and the registration access token are HMACs over its `jti` under keys only the
//! registrar holds, recomputed when needed and compared in constant time.

use serde::{Deserialize, Serialize};

use crate::jose::{self, CompactJws};
use crate::keys::{DerivationKeys, RegistrarKeys, VerifierSet};
use crate::metadata::{json::compact, ClientMetadata};
use crate::secret::Secret;
use crate::status_list::{StatusClaim, StatusReference};

/// The `typ` header of client_ids, so that no other token signed by the registrar's keys can be
/// taken for one (RFC 8725 §3.11).
pub const CLIENT_ID_TYP: &str = "client-id+jwt";

/// Random bytes in a client_id's `jti`: 128 bits, so that no two registrations share a
/// client_id (OIDC DCR §3.2).
pub const JTI_BYTES: usize = 16;

const SECRET_PURPOSE: &[u8] = b"client_secret";
const RAT_PURPOSE: &[u8] = b"registration_access_token";

/// The claims of a client_id. The short member names are the wire format: client_ids issued
/// earlier must keep verifying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientIdClaims {
    /// The registrar.
    pub iss: String,
    /// 128 random bits, base64url: identifies the client in status records and derivations.
    pub jti: String,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// kid of the key the client_secret is derived with; absent when no secret was issued.
    #[serde(rename = "csk", default, skip_serializing_if = "Option::is_none")]
    pub client_secret_kid: Option<String>,
    /// kid of the key the registration access token is derived with; absent with
    /// `management = "none"`.
    #[serde(rename = "rtk", default, skip_serializing_if = "Option::is_none")]
    pub access_token_kid: Option<String>,
    /// The software statement the metadata came from.
    #[serde(rename = "stmt", default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The sector of a pairwise client (OIDC Core §8.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// The client's entry in the registrar's status list: the client_id is a Referenced Token
    /// (draft-ietf-oauth-status-list-18 §6.2), so a verifier with only the registrar's keys
    /// learns of a delete or an update from the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusClaim>,
    /// The validated metadata, defaults left out.
    #[serde(with = "compact")]
    pub metadata: ClientMetadata,
}

/// Where a client's metadata came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The statement's issuer.
    pub iss: String,
    /// The statement's `jti`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// ...or its base64url SHA-256 when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The metadata members the statement supplied: they keep precedence in an update that does
    /// not present a statement again (RFC 7591 §2.3, §3.1.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<String>,
    /// The statement's entry in its issuer's status list: checked again at every use, so that
    /// the issuer withdraws every client registered with the statement at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusReference>,
    /// The organisation of a UK Open Banking SSA (`org_id`, `org_name`) and the software's
    /// roles (`software_roles`): what an OP's authorization decisions rest on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software_roles: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MintError {
    #[error("the client_id would be {length} characters, more than the limit of {max}; register fewer or shorter values (a jwks_uri instead of jwks, fewer redirect URIs or localized names)")]
    TooLong { length: usize, max: usize },
    #[error("signing failed: {0}")]
    Crypto(String),
}

/// Why a presented client_id is not a valid one. Never shown in detail to the presenter
/// (OIDC DCR §4.4: an invalid client gets the same 401 as an unknown one).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClientIdError {
    #[error("not a client_id issued by this registrar")]
    Malformed,
    #[error("signed with an unknown key")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("issued by another registrar")]
    WrongIssuer,
    #[error("expired")]
    Expired,
}

/// Sign a client_id with the active key. Refused, never truncated, past `max_length`.
pub fn mint(
    keys: &RegistrarKeys,
    claims: &ClientIdClaims,
    max_length: usize,
) -> Result<String, MintError> {
    let payload = serde_json::to_vec(claims).map_err(|e| MintError::Crypto(e.to_string()))?;
    let token = jose::sign_typed(keys.signing_key(), CLIENT_ID_TYP, &payload)
        .map_err(|e| MintError::Crypto(e.to_string()))?;
    if token.len() > max_length {
        return Err(MintError::TooLong {
            length: token.len(),
            max: max_length,
        });
    }
    Ok(token)
}

/// The length a client_id with these claims would have, computed without signing: what
/// `mint` would refuse, an update must refuse too, since its metadata must fit a client_id just
/// the same.
pub fn check_length(
    keys: &RegistrarKeys,
    claims: &ClientIdClaims,
    max_length: usize,
) -> Result<(), MintError> {
    let key = keys.signing_key();
    let header = serde_json::json!({"alg": key.alg, "kid": key.kid, "typ": CLIENT_ID_TYP});
    let encoded = |len: usize| {
        len.div_ceil(3)
            .saturating_mul(4)
            .saturating_sub((3 - len % 3) % 3)
    };
    let header_len = serde_json::to_vec(&header)
        .map_err(|e| MintError::Crypto(e.to_string()))?
        .len();
    let payload_len = serde_json::to_vec(claims)
        .map_err(|e| MintError::Crypto(e.to_string()))?
        .len();
    let length = encoded(header_len)
        .saturating_add(encoded(payload_len))
        .saturating_add(encoded(key.signer.signature_len()))
        .saturating_add(2);
    if length > max_length {
        return Err(MintError::TooLong {
            length,
            max: max_length,
        });
    }
    Ok(())
}

/// Verify a client_id: compact form, `typ`, a listed `kid` (retired keys still verify),
/// signature, issuer and `exp`. `now` is seconds since the epoch.
pub fn verify(
    verifiers: &VerifierSet,
    issuer: &str,
    token: &str,
    now: u64,
) -> Result<ClientIdClaims, ClientIdError> {
    let jws = CompactJws::parse(token).map_err(|_| ClientIdError::Malformed)?;
    if jws.typ() != Some(CLIENT_ID_TYP) {
        return Err(ClientIdError::Malformed);
    }
    let kid = jws.kid().ok_or(ClientIdError::Malformed)?;
    if !verifiers.has_kid(kid) {
        return Err(ClientIdError::UnknownKey);
    }
    let verifier = verifiers
        .select(Some(kid), jws.alg().unwrap_or_default())
        .ok_or(ClientIdError::BadSignature)?;
    let payload = jws
        .verify(verifier)
        .map_err(|_| ClientIdError::BadSignature)?;
    // One client, one client_id string: OPs key consent, deny lists and rate limits on it.
    if !jws.has_canonical_signature() {
        return Err(ClientIdError::BadSignature);
    }
    let claims: ClientIdClaims =
        serde_json::from_slice(&payload).map_err(|_| ClientIdError::Malformed)?;
    if claims.iss != issuer {
        return Err(ClientIdError::WrongIssuer);
    }
    if claims.exp.is_some_and(|exp| now >= exp) {
        return Err(ClientIdError::Expired);
    }
    Ok(claims)
}

/// A fresh `jti`: 128 random bits, base64url.
pub fn new_jti() -> Result<String, MintError> {
    jose::random_id::<JTI_BYTES>()
        .map(|b| jose::base64url(&b))
        .map_err(|e| MintError::Crypto(e.to_string()))
}

/// The client_secret of a client: base64url(HMAC-SHA256(key, purpose ‖ jti ‖ generation 0)),
/// 256 bits (OIDC Core §16.19 wants at least 32 octets for HS256), with the key named `kid`.
/// `None` when that key is no longer configured.
pub fn client_secret(keys: &DerivationKeys, kid: &str, jti: &str) -> Option<Secret> {
    derive(keys.get(kid)?, SECRET_PURPOSE, jti, 0)
}

/// The registration access token of a generation (0 until an update rotates it), with the key
/// named `kid`.
pub fn registration_access_token(
    keys: &DerivationKeys,
    kid: &str,
    jti: &str,
    generation: u64,
) -> Option<Secret> {
    derive(keys.get(kid)?, RAT_PURPOSE, jti, generation)
}

fn derive(key: &jose::HmacKey, purpose: &[u8], jti: &str, generation: u64) -> Option<Secret> {
    let generation = generation.to_string();
    let mac = jose::hmac_sha256(key, &[purpose, jti.as_bytes(), generation.as_bytes()]);
    Some(Secret::new(jose::base64url(&mac)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningAlg;
    use crate::metadata::SubjectType;
    use serde_json::{json, Map};

    fn new_keys() -> RegistrarKeys {
        let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn claims(keys: &RegistrarKeys) -> ClientIdClaims {
        ClientIdClaims {
            iss: "https://registrar.example".into(),
            jti: new_jti().unwrap(),
            iat: 100,
            exp: Some(1000),
            client_secret_kid: Some(keys.client_secret().active_kid().to_owned()),
            access_token_kid: Some(keys.registration_access_token().active_kid().to_owned()),
            provenance: None,
            sector: None,
            status: None,
            metadata: ClientMetadata::parse(&Map::new(), SubjectType::Public).unwrap(),
        }
    }

    #[test]
    fn mint_verify_round_trip_and_expiry_boundary() {
        let keys = new_keys();
        let c = claims(&keys);
        let token = mint(&keys, &c, 4096).unwrap();
        assert!(
            token.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "a client_id is VSCHAR (RFC 6749 Appendix A.1)"
        );
        assert_eq!(verify(keys.verifiers(), &c.iss, &token, 999).unwrap(), c);
        // the second of exp is already too late (RFC 7519 §4.1.4: on or after)
        assert_eq!(
            verify(keys.verifiers(), &c.iss, &token, 1000),
            Err(ClientIdError::Expired)
        );
        assert_eq!(
            verify(keys.verifiers(), "https://other.example", &token, 999),
            Err(ClientIdError::WrongIssuer)
        );
        let other = new_keys();
        assert_eq!(
            verify(other.verifiers(), &c.iss, &token, 999),
            Err(ClientIdError::UnknownKey)
        );
    }

    #[test]
    fn the_wire_names_stay_short() {
        let keys = new_keys();
        let value = serde_json::to_value(claims(&keys)).unwrap();
        for member in ["csk", "rtk", "metadata", "jti", "iat", "exp", "iss"] {
            assert!(value.get(member).is_some(), "{member} in {value}");
        }
        assert_eq!(value["metadata"], json!({}));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        // OIDC DCR §7: a client_id cannot be altered without the registrar's key
        let keys = new_keys();
        let c = claims(&keys);
        let token = mint(&keys, &c, 4096).unwrap();
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            let mut flipped = bytes.to_vec();
            flipped[i] ^= 1;
            let Ok(flipped) = String::from_utf8(flipped) else {
                continue;
            };
            if flipped == token {
                continue;
            }
            // a flip in the last base64 character's unused bits can decode to the same bytes
            if let Ok(v) = verify(keys.verifiers(), &c.iss, &flipped, 999) {
                assert_eq!(i, bytes.len() - 1, "accepted a change at {i}");
                assert_eq!(v, c);
            }
        }
    }

    #[test]
    fn a_client_id_has_exactly_one_valid_spelling() {
        // ECDSA is malleable: (r, n - s) verifies too. The twin of a client_id is refused, so
        // that no second string resolves to the same client.
        let keys = new_keys();
        let c = claims(&keys);
        for _ in 0..10 {
            let token = mint(&keys, &c, 4096).unwrap();
            let (input, signature) = token.rsplit_once('.').unwrap();
            let bytes = jose::tests::decode(signature);
            let twin = format!("{input}.{}", jose::base64url(&jose::tests::twin_of(&bytes)));
            assert_ne!(twin, token);
            assert!(verify(keys.verifiers(), &c.iss, &token, 999).is_ok());
            assert_eq!(
                verify(keys.verifiers(), &c.iss, &twin, 999),
                Err(ClientIdError::BadSignature)
            );
        }
    }

    #[test]
    fn the_computed_length_is_the_minted_length() {
        let keys = new_keys();
        for name_len in [0, 1, 2, 3, 100, 1000, 2999] {
            let mut c = claims(&keys);
            c.metadata
                .localized
                .insert("client_name".into(), "x".repeat(name_len));
            let minted = mint(&keys, &c, 65536).unwrap().len();
            assert!(check_length(&keys, &c, minted).is_ok(), "{name_len}");
            assert_eq!(
                check_length(&keys, &c, minted - 1),
                Err(MintError::TooLong {
                    length: minted,
                    max: minted - 1
                })
            );
        }
    }

    #[test]
    fn too_long_is_refused_not_truncated() {
        let keys = new_keys();
        let mut c = claims(&keys);
        c.metadata
            .localized
            .insert("client_name".into(), "x".repeat(5000));
        assert!(matches!(
            mint(&keys, &c, 4096),
            Err(MintError::TooLong { max: 4096, .. })
        ));
    }

    #[test]
    fn secrets_are_derived_per_client_and_purpose() {
        let keys = new_keys();
        let a = claims(&keys);
        let b = claims(&keys);
        let csk = a.client_secret_kid.as_deref().unwrap();
        let rtk = a.access_token_kid.as_deref().unwrap();
        let secrets = keys.client_secret();
        let tokens = keys.registration_access_token();
        let secret_a = client_secret(secrets, csk, &a.jti).unwrap();
        assert_eq!(secret_a.len(), 43);
        assert_eq!(client_secret(secrets, csk, &a.jti).unwrap(), secret_a);
        assert_ne!(client_secret(secrets, csk, &b.jti).unwrap(), secret_a);
        let rat0 = registration_access_token(tokens, rtk, &a.jti, 0).unwrap();
        assert_ne!(rat0, secret_a);
        assert_ne!(
            registration_access_token(tokens, rtk, &a.jti, 1).unwrap(),
            rat0
        );
        assert!(secret_a.matches(secret_a.expose()));
        assert!(!secret_a.matches(rat0.expose()));
        assert!(client_secret(secrets, "retired-and-removed", &a.jti).is_none());
    }

    #[test]
    fn derivations_are_unchanged_so_issued_secrets_stay_valid() {
        // values computed by the earlier HMAC implementation (RFC 2104 written out over
        // OpenSSL SHA-256): the switch to ring must not change a single secret or token
        let key = jose::HmacKey::new(&[7u8; 32]);
        let secret = derive(&key, SECRET_PURPOSE, "jti-golden", 0).unwrap();
        assert_eq!(
            secret.expose(),
            "piVbt9C3t8WgATPsR4M1p8pMhgYoGzB4t0bIMGsnwYw"
        );
        let token = derive(&key, RAT_PURPOSE, "jti-golden", 3).unwrap();
        assert_eq!(
            token.expose(),
            "sR_u-DrEooL-lqMX6KOfAALt1o9HOkRBmxZFCWqEBhI"
        );
    }
}
