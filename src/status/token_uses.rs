//! The uses of initial access tokens of limited uses (RFC 7591 §3; `crate::iat`): one record
//! per token, keyed `iat:{jti}`, whose generation is the number of registrations made with it.
//! Taking a use is the store's conditional write (the same compare-and-set that keeps updates
//! of one client apart), so two nodes on one Redis never both take the last use.

use super::{RecordState, StatusService, StatusStore, StoreError, StoredRecord, WriteOutcome};
use crate::iat;
use crate::keys::RegistrarKeys;

/// What taking one use of a token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// This registration is use number `n`.
    Taken(u64),
    /// Every use is spent.
    Exhausted,
}

/// Conflicting writers retry this often before the store is reported busy.
const ATTEMPTS: usize = 16;

impl StatusService {
    /// Take one of the `max_uses` uses of the token `jti`, recorded until `expires_at` (the
    /// token's `exp`: after it the token is refused anyway).
    pub async fn take_token_use(
        &self,
        keys: &RegistrarKeys,
        jti: &str,
        max_uses: u64,
        expires_at: u64,
    ) -> Result<TokenUse, StoreError> {
        self.require_writable()?;
        let key = iat::use_record_key(jti);
        let verifiers = &self.keys.verification().verifiers;
        for _ in 0..ATTEMPTS {
            let uses = match self.store.load(&key).await? {
                None => 0,
                Some(stored) => match stored.state {
                    RecordState::Revoked => return Ok(TokenUse::Exhausted),
                    RecordState::Amended { generation } => {
                        // the count as the registrar signed it, never a number the store made up
                        let signed = iat::verify_use_record(verifiers, &key, &stored.signed)
                            .ok_or_else(|| {
                                StoreError::Corrupt(format!("use record of {key} does not verify"))
                            })?;
                        if signed != generation {
                            return Err(StoreError::Corrupt(format!(
                                "use record of {key} does not match its generation"
                            )));
                        }
                        generation
                    }
                },
            };
            if uses >= max_uses {
                return Ok(TokenUse::Exhausted);
            }
            let next = uses.saturating_add(1);
            let signed = iat::sign_use_record(keys.signing_key(), &key, next)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let record = StoredRecord {
                state: RecordState::Amended { generation: next },
                signed,
                expires_at: Some(expires_at),
            };
            match self.store.write(&key, uses, &record, None).await? {
                WriteOutcome::Written => return Ok(TokenUse::Taken(next)),
                WriteOutcome::AlreadyRevoked => return Ok(TokenUse::Exhausted),
                // another registration took a use first: count again
                WriteOutcome::Conflict => continue,
            }
        }
        Err(StoreError::Unavailable(format!(
            "too many concurrent uses of one initial access token ({key})"
        )))
    }
}
