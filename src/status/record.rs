//! Status records, signed by the registrar's active key like client_ids (with their own `typ`),
//! so that a record cannot be forged or moved to another client without the private key.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::client_id::Provenance;
use crate::jose::{self, CompactJws};
use crate::keys::{SigningKey, VerifierSet};
use crate::metadata::{json::compact, ClientMetadata};

/// `typ` of status records (RFC 8725 §3.11: explicit typing keeps them apart from client_ids).
pub const STATUS_TYP: &str = "client-status+jwt";

/// A client's state beyond its client_id.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientStatus {
    /// No record: the client_id's own metadata applies.
    Active,
    /// Updated (RFC 7592 §2.2): this metadata replaces the client_id's.
    Amended(Arc<Amendment>),
    /// Deleted (RFC 7592 §2.3): the client_id, its secret and its RAT no longer work.
    Revoked,
}

/// The replacement produced by an update (RFC 7592 §2.2). The short member names are the
/// stored format: records written earlier must keep verifying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Amendment {
    /// The registration access token generation; each update increments it, rotating the RAT.
    #[serde(rename = "gen")]
    pub generation: u64,
    /// The validated metadata, defaults left out like the client_id's `metadata` claim.
    #[serde(with = "compact")]
    pub metadata: ClientMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// kid of the client_secret derivation key, when the client has a secret.
    #[serde(rename = "csk", default, skip_serializing_if = "Option::is_none")]
    pub client_secret_kid: Option<String>,
    #[serde(rename = "stmt", default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// When the update was made, and a digest of its request with the token it presented, so
    /// that the same request sent again soon after (its answer was lost) gets the answer it
    /// would have had instead of a 401.
    #[serde(rename = "req", default, skip_serializing_if = "Option::is_none")]
    pub request: Option<UpdateRequest>,
}

/// What identifies the update request that wrote an amendment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRequest {
    /// Seconds since the epoch.
    pub at: u64,
    /// base64url SHA-256 of the presented registration access token and the request body.
    pub digest: String,
}

/// A record's payload as read back.
#[derive(Deserialize)]
struct Payload {
    jti: String,
    #[allow(dead_code)]
    iat: u64,
    status: String,
    #[serde(default)]
    amendment: Option<Amendment>,
}

/// A record's payload as written (the same members, borrowed).
#[derive(Serialize)]
struct PayloadOut<'a> {
    jti: &'a str,
    iat: u64,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    amendment: Option<&'a Amendment>,
}

/// Sign a record for `jti`, issued at `now`. A failure is the server's own fault
/// ([`StoreError::Internal`]), never a refusal of the client.
pub fn sign(
    key: &SigningKey,
    jti: &str,
    status: &ClientStatus,
    now: u64,
) -> Result<String, StoreError> {
    let (name, amendment) = match status {
        ClientStatus::Amended(a) => ("amended", Some(a.as_ref())),
        ClientStatus::Revoked => ("revoked", None),
        ClientStatus::Active => ("active", None),
    };
    let payload = PayloadOut {
        jti,
        iat: now,
        status: name,
        amendment,
    };
    let internal = |e: String| StoreError::Internal(format!("signing a status record: {e}"));
    let bytes = serde_json::to_vec(&payload).map_err(|e| internal(e.to_string()))?;
    jose::sign_typed(key, STATUS_TYP, &bytes).map_err(|e| internal(e.to_string()))
}

/// Verify a stored record for `jti`: signature by a listed registrar key, `typ`, and the `jti`.
pub fn verify(
    verifiers: &VerifierSet,
    jti: &str,
    signed: &str,
) -> Result<ClientStatus, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("record of {jti}: {why}"));
    let jws = CompactJws::parse(signed).map_err(|e| corrupt(&e.to_string()))?;
    if jws.typ() != Some(STATUS_TYP) {
        return Err(corrupt("wrong typ"));
    }
    let verifier = verifiers
        .select(jws.kid(), jws.alg().unwrap_or_default())
        .ok_or_else(|| corrupt("signed with an unknown key"))?;
    let bytes = jws.verify(verifier).map_err(|e| corrupt(&e.to_string()))?;
    if !jws.has_canonical_signature() {
        return Err(corrupt(
            "the signature is not in the form the registrar writes",
        ));
    }
    // The registrar signed this record: content it cannot read is its own fault (a bug, or a
    // record written by a newer version), not a reason to refuse the client.
    let internal = |why: String| StoreError::Internal(format!("record of {jti}: {why}"));
    let payload: Payload = serde_json::from_slice(&bytes).map_err(|e| internal(e.to_string()))?;
    if payload.jti != jti {
        // a valid record copied to another client's key: refuse the client
        return Err(corrupt("belongs to another client"));
    }
    match (payload.status.as_str(), payload.amendment) {
        ("revoked", _) => Ok(ClientStatus::Revoked),
        ("amended", Some(a)) => Ok(ClientStatus::Amended(Arc::new(a))),
        (other, _) => Err(internal(format!("unknown status {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{RegistrarKeys, SigningAlg};

    fn keys() -> RegistrarKeys {
        let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap()
    }

    /// A signer that always fails, like an HSM that is gone.
    #[derive(Debug)]
    struct FailingSigner;

    impl josekit::jws::JwsSigner for FailingSigner {
        fn algorithm(&self) -> &dyn josekit::jws::JwsAlgorithm {
            &josekit::jws::ES256
        }
        fn key_id(&self) -> Option<&str> {
            None
        }
        fn signature_len(&self) -> usize {
            64
        }
        fn sign(&self, _: &[u8]) -> Result<Vec<u8>, josekit::JoseError> {
            Err(josekit::JoseError::InvalidKeyFormat(
                std::io::Error::other("the key is gone").into(),
            ))
        }
        fn box_clone(&self) -> Box<dyn josekit::jws::JwsSigner> {
            Box::new(FailingSigner)
        }
    }

    #[test]
    fn a_record_that_cannot_be_signed_is_a_server_fault() {
        let key = SigningKey {
            kid: "k".into(),
            alg: "ES256",
            signer: Box::new(FailingSigner),
        };
        let err = sign(&key, "jti-a", &ClientStatus::Revoked, 100).unwrap_err();
        assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    }

    #[test]
    fn a_signed_record_the_registrar_cannot_read_is_a_server_fault_not_a_refusal() {
        let keys = keys();
        let payload = serde_json::json!({
            "jti": "jti-a", "iat": 1, "status": "amended",
            "amendment": {"gen": 1, "metadata": {"grant_types": ["magic"]}},
        });
        let signed = jose::sign_typed(
            keys.signing_key(),
            STATUS_TYP,
            payload.to_string().as_bytes(),
        )
        .unwrap();
        let err = verify(keys.verifiers(), "jti-a", &signed).unwrap_err();
        assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
        // a record moved to another client is still a refusal
        let err = verify(keys.verifiers(), "jti-b", &signed).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Internal(_) | StoreError::Corrupt(_)
        ));
    }

    #[test]
    fn records_round_trip_and_cannot_move_between_clients() {
        let keys = keys();
        let metadata = ClientMetadata::parse(
            serde_json::json!({"redirect_uris": ["https://rp.example/cb"]})
                .as_object()
                .unwrap(),
            crate::metadata::SubjectType::Public,
        )
        .unwrap();
        let amended = ClientStatus::Amended(Arc::new(Amendment {
            generation: 3,
            metadata,
            sector: None,
            client_secret_kid: Some("k".into()),
            provenance: None,
            request: None,
        }));
        let signed = sign(keys.signing_key(), "jti-a", &amended, 100).unwrap();
        assert_eq!(verify(keys.verifiers(), "jti-a", &signed).unwrap(), amended);
        assert!(verify(keys.verifiers(), "jti-b", &signed).is_err());
        let revoked = sign(keys.signing_key(), "jti-a", &ClientStatus::Revoked, 100).unwrap();
        assert_eq!(
            verify(keys.verifiers(), "jti-a", &revoked).unwrap(),
            ClientStatus::Revoked
        );
        let mut tampered = signed.into_bytes();
        let i = tampered.len() / 2;
        tampered[i] ^= 1;
        assert!(verify(
            keys.verifiers(),
            "jti-a",
            &String::from_utf8(tampered).unwrap()
        )
        .is_err());
    }
}
