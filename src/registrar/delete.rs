//! Delete a client (RFC 7592 §2.3): afterwards the client_id, its secret and its registration
//! access token all fail. The revocation is kept until the client_id's `exp`, forever when it
//! has none. Its status list entry becomes INVALID in the same write.

use super::audit::{Audit, Operation};
use super::{Registrar, RegistrationError};
use crate::status::{ClientStatus, WriteOutcome};

impl Registrar {
    pub async fn delete(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<(), RegistrationError> {
        Audit::record(Operation::Delete, async |audit| {
            let keys = self.keys.snapshot();
            let current = self.authenticate(&keys, client_id, token).await?;
            audit.describe(&current);
            let outcome = self
                .store()?
                .write(
                    &keys,
                    current.jti(),
                    current.generation(),
                    &ClientStatus::Revoked,
                    current.claims.exp,
                    self.list_entry(&current, crate::status_list::INVALID),
                )
                .await?;
            match outcome {
                // a concurrent delete won; the client is gone either way
                WriteOutcome::Written | WriteOutcome::AlreadyRevoked => Ok(()),
                // the token was rotated by an update this node had not seen yet
                WriteOutcome::Conflict => Err(RegistrationError::InvalidToken),
            }
        })
        .await
    }
}
