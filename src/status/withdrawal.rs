//! Withdrawals by the operator: every client registered with one `software_id` of one issuer, or
//! with one software statement (its `jti`), optionally only those registered before a time, is
//! refused from then on, with one record for all of them (never one per client).
//!
//! A withdrawal is INVALID (permanent) or SUSPENDED (it can be lifted), the two statuses of
//! draft-ietf-oauth-status-list-18 §7.1. Records are signed by the registrar like status
//! records, so a node that reads the store with only the public keys can trust them, and are
//! kept in memory as a [`WithdrawalSet`]: checking a client costs two hash lookups, nothing when
//! there are none.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::jose::{self, CompactJws};
use crate::keys::{SigningKey, VerifierSet};

/// `typ` of withdrawal records (RFC 8725 §3.11).
pub const WITHDRAWAL_TYP: &str = "withdrawal+jwt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Permanent: the clients never work again.
    Invalid,
    /// Temporary: lifting the withdrawal brings the clients back.
    Suspended,
}

impl WithdrawalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Invalid => "invalid",
            WithdrawalStatus::Suspended => "suspended",
        }
    }
}

/// Which clients a withdrawal covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every client whose metadata names this `software_id` and whose statement came from the
    /// issuer.
    SoftwareId(String),
    /// Every client registered with the issuer's statement of this `jti`.
    StatementJti(String),
}

/// One withdrawal, as signed and as shown by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// Derived from the issuer and the target: the same target always has the same id.
    pub id: String,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_jti: Option<String>,
    /// Only clients registered (client_id `iat`) before this time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_before: Option<u64>,
    pub status: WithdrawalStatus,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Withdrawal {
    pub fn new(
        issuer: String,
        target: Target,
        registered_before: Option<u64>,
        status: WithdrawalStatus,
        created_at: u64,
        reason: Option<String>,
    ) -> Withdrawal {
        let id = withdrawal_id(&issuer, &target);
        let (software_id, statement_jti) = match target {
            Target::SoftwareId(id) => (Some(id), None),
            Target::StatementJti(jti) => (None, Some(jti)),
        };
        Withdrawal {
            id,
            issuer,
            software_id,
            statement_jti,
            registered_before,
            status,
            created_at,
            reason,
        }
    }

    pub fn target(&self) -> Option<Target> {
        match (&self.software_id, &self.statement_jti) {
            (Some(id), None) => Some(Target::SoftwareId(id.clone())),
            (None, Some(jti)) => Some(Target::StatementJti(jti.clone())),
            _ => None,
        }
    }

    fn covers_registration_at(&self, registered_at: u64) -> bool {
        self.registered_before
            .is_none_or(|before| registered_at < before)
    }
}

/// The id of a withdrawal: 128 bits of SHA-256 over the issuer and the target, base64url.
pub fn withdrawal_id(issuer: &str, target: &Target) -> String {
    let (kind, value) = match target {
        Target::SoftwareId(id) => ("software_id", id.as_str()),
        Target::StatementJti(jti) => ("statement_jti", jti.as_str()),
    };
    let digest = jose::sha256(format!("{kind}\0{issuer}\0{value}").as_bytes());
    jose::base64url(&digest[..16])
}

/// Sign a withdrawal with the registrar's active key.
pub fn sign(key: &SigningKey, withdrawal: &Withdrawal) -> Result<String, StoreError> {
    let internal = |e: String| StoreError::Internal(format!("signing a withdrawal: {e}"));
    let payload = serde_json::to_vec(withdrawal).map_err(|e| internal(e.to_string()))?;
    jose::sign_typed(key, WITHDRAWAL_TYP, &payload).map_err(|e| internal(e.to_string()))
}

/// Verify a stored withdrawal: a registrar key, its `typ`, and an id that belongs to its target
/// (a record copied under another id is refused).
pub fn verify(verifiers: &VerifierSet, signed: &str) -> Result<Withdrawal, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("withdrawal record: {why}"));
    let jws = CompactJws::parse(signed).map_err(|e| corrupt(&e.to_string()))?;
    if jws.typ() != Some(WITHDRAWAL_TYP) {
        return Err(corrupt("wrong typ"));
    }
    let verifier = verifiers
        .select(jws.kid(), jws.alg().unwrap_or_default())
        .ok_or_else(|| corrupt("signed with an unknown key"))?;
    let bytes = jws.verify(verifier).map_err(|e| corrupt(&e.to_string()))?;
    let withdrawal: Withdrawal =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(&e.to_string()))?;
    let target = withdrawal
        .target()
        .ok_or_else(|| corrupt("names no single target"))?;
    if withdrawal_id(&withdrawal.issuer, &target) != withdrawal.id {
        return Err(corrupt("its id does not belong to its target"));
    }
    Ok(withdrawal)
}

/// What a client is matched on: where its metadata came from and when it registered.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub issuer: &'a str,
    pub software_id: Option<&'a str>,
    pub statement_jti: Option<&'a str>,
    /// The client_id's `iat`.
    pub registered_at: u64,
}

/// Every withdrawal in force, indexed by issuer and target.
#[derive(Debug, Default)]
pub struct WithdrawalSet {
    by_software_id: Index,
    by_statement_jti: Index,
    count: usize,
}

impl WithdrawalSet {
    pub fn new(withdrawals: impl IntoIterator<Item = Withdrawal>) -> WithdrawalSet {
        let mut set = WithdrawalSet::default();
        for withdrawal in withdrawals {
            let (index, value) = match withdrawal.target() {
                Some(Target::SoftwareId(id)) => (&mut set.by_software_id, id),
                Some(Target::StatementJti(jti)) => (&mut set.by_statement_jti, jti),
                None => continue,
            };
            index
                .entry(withdrawal.issuer.clone())
                .or_default()
                .insert(value, withdrawal);
            set.count += 1;
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Every withdrawal, permanent ones first, then by issuer and id.
    pub fn all(&self) -> Vec<&Withdrawal> {
        let mut all: Vec<&Withdrawal> = self
            .by_software_id
            .values()
            .chain(self.by_statement_jti.values())
            .flat_map(HashMap::values)
            .collect();
        all.sort_by(|a, b| {
            (a.status != WithdrawalStatus::Invalid, &a.issuer, &a.id).cmp(&(
                b.status != WithdrawalStatus::Invalid,
                &b.issuer,
                &b.id,
            ))
        });
        all
    }

    /// The withdrawal that covers a registration, the permanent one when two do.
    pub fn covering(&self, registration: &Registration<'_>) -> Option<&Withdrawal> {
        if self.count == 0 {
            return None;
        }
        let by_software = find(&self.by_software_id, registration, registration.software_id);
        let by_statement = find(
            &self.by_statement_jti,
            registration,
            registration.statement_jti,
        );
        match (by_software, by_statement) {
            (Some(_), Some(b)) if b.status == WithdrawalStatus::Invalid => Some(b),
            (Some(a), _) => Some(a),
            (None, b) => b,
        }
    }
}

type Index = HashMap<String, HashMap<String, Withdrawal>>;

fn find<'a>(
    index: &'a Index,
    registration: &Registration<'_>,
    value: Option<&str>,
) -> Option<&'a Withdrawal> {
    index
        .get(registration.issuer)?
        .get(value?)
        .filter(|w| w.covers_registration_at(registration.registered_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{RegistrarKeys, SigningAlg};

    fn withdrawal(target: Target, before: Option<u64>, status: WithdrawalStatus) -> Withdrawal {
        Withdrawal::new(
            "https://federation.test".into(),
            target,
            before,
            status,
            100,
            None,
        )
    }

    #[test]
    fn a_withdrawal_covers_its_issuers_clients_of_its_target_before_its_time() {
        let set = WithdrawalSet::new([
            withdrawal(
                Target::SoftwareId("app".into()),
                Some(1_000),
                WithdrawalStatus::Suspended,
            ),
            withdrawal(
                Target::StatementJti("s-1".into()),
                None,
                WithdrawalStatus::Invalid,
            ),
        ]);
        assert_eq!(set.len(), 2);
        let client = |issuer, software_id, jti, at| Registration {
            issuer,
            software_id,
            statement_jti: jti,
            registered_at: at,
        };
        let fed = "https://federation.test";
        let hit = set.covering(&client(fed, Some("app"), None, 999)).unwrap();
        assert_eq!(hit.status, WithdrawalStatus::Suspended);
        assert!(set
            .covering(&client(fed, Some("app"), None, 1_000))
            .is_none());
        assert!(set
            .covering(&client("https://other.test", Some("app"), None, 1))
            .is_none());
        assert!(set.covering(&client(fed, Some("other"), None, 1)).is_none());
        // both match: the permanent one wins
        let hit = set
            .covering(&client(fed, Some("app"), Some("s-1"), 1))
            .unwrap();
        assert_eq!(hit.status, WithdrawalStatus::Invalid);
        assert!(WithdrawalSet::default()
            .covering(&client(fed, Some("app"), Some("s-1"), 1))
            .is_none());
    }

    #[test]
    fn records_verify_and_cannot_move_to_another_id() {
        let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        let keys = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap();
        let original = withdrawal(
            Target::SoftwareId("app".into()),
            None,
            WithdrawalStatus::Invalid,
        );
        let signed = sign(keys.signing_key(), &original).unwrap();
        assert_eq!(verify(keys.verifiers(), &signed).unwrap(), original);
        let mut moved = original.clone();
        moved.software_id = Some("another-app".into());
        let signed = sign(keys.signing_key(), &moved).unwrap();
        assert!(matches!(
            verify(keys.verifiers(), &signed),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(
            withdrawal_id("i", &Target::SoftwareId("x".into())),
            withdrawal_id("i", &Target::SoftwareId("x".into()))
        );
        assert_ne!(
            withdrawal_id("i", &Target::SoftwareId("x".into())),
            withdrawal_id("i", &Target::StatementJti("x".into()))
        );
    }
}
