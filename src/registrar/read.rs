//! Read a client's current configuration (RFC 7592 §2.1, OIDC DCR §4.2). Nothing is written.

use super::audit::{Audit, Operation};
use super::{ClientInformation, Registrar, RegistrationError};

impl Registrar {
    pub async fn read(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<ClientInformation, RegistrationError> {
        Audit::record(Operation::Read, async |audit| {
            let keys = self.keys.snapshot();
            let client = self.authenticate(&keys, client_id, token).await?;
            audit.describe(&client);
            // Reads do not echo the software statement: it is not kept (RFC 7592 §3 returns
            // the registered metadata).
            self.client_information(&keys, client.as_ref().clone(), None)
        })
        .await
    }
}
