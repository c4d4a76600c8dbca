//! Status records, signed by the registrar's active key like client_ids (with their own `typ`),
//! so that a record cannot be forged or moved to another client without the private key.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::client_id::Provenance;
use crate::jose::{self, CompactJws};
use crate::keys::{RegistrarKeys, VerifierSet};
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
}

#[derive(Serialize, Deserialize)]
struct Payload {
    jti: String,
    iat: u64,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amendment: Option<Amendment>,
}

/// Sign a record for `jti`, issued at `now`.
pub fn sign(
    keys: &RegistrarKeys,
    jti: &str,
    status: &ClientStatus,
    now: u64,
) -> Result<String, StoreError> {
    let (name, amendment) = match status {
        ClientStatus::Amended(a) => ("amended", Some(a.as_ref().clone())),
        ClientStatus::Revoked => ("revoked", None),
        ClientStatus::Active => ("active", None),
    };
    let payload = Payload {
        jti: jti.to_owned(),
        iat: now,
        status: name.to_owned(),
        amendment,
    };
    let bytes = serde_json::to_vec(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    jose::sign_typed(keys.signing_key(), STATUS_TYP, &bytes)
        .map_err(|e| StoreError::Corrupt(format!("signing a status record: {e}")))
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
    let payload: Payload = serde_json::from_slice(&bytes).map_err(|e| corrupt(&e.to_string()))?;
    if payload.jti != jti {
        return Err(corrupt("belongs to another client"));
    }
    match (payload.status.as_str(), payload.amendment) {
        ("revoked", _) => Ok(ClientStatus::Revoked),
        ("amended", Some(a)) => Ok(ClientStatus::Amended(Arc::new(a))),
        _ => Err(corrupt("unknown status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningAlg;

    #[test]
    fn records_round_trip_and_cannot_move_between_clients() {
        let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        let keys = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap();
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
        }));
        let signed = sign(&keys, "jti-a", &amended, 100).unwrap();
        assert_eq!(verify(keys.verifiers(), "jti-a", &signed).unwrap(), amended);
        assert!(verify(keys.verifiers(), "jti-b", &signed).is_err());
        let revoked = sign(&keys, "jti-a", &ClientStatus::Revoked, 100).unwrap();
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
