//! The registration request of an `openbanking-uk` issuer's software, against its SSA
//! (OB DCR 3.3; docs/profiles/openbanking-uk.md).

use serde_json::{Map, Value};

use super::RegistrationError;
use crate::metadata::ClientMetadata;
use crate::statement::openbanking::{OpenBankingClaims, ROLE_SCOPES};

/// OB DCR 3.3: the request's `redirect_uris` are among the SSA's `software_redirect_uris`
/// (a subset, never replaced by them), its `software_id` is the SSA's, and a scope of the
/// Read/Write API is asked for only with the role that grants it.
pub(crate) fn check_request(
    ssa: &OpenBankingClaims,
    metadata: &ClientMetadata,
    request: &Map<String, Value>,
) -> Result<(), RegistrationError> {
    if let Some(uri) = metadata
        .redirect_uris
        .iter()
        .find(|uri| !ssa.software_redirect_uris.contains(uri))
    {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "redirect_uri {uri:?} is not one of the software statement's software_redirect_uris"
        )));
    }
    if let Some(requested) = request.get("software_id") {
        if requested.as_str() != metadata.software_id.as_deref() {
            return Err(RegistrationError::InvalidClientMetadata(
                "software_id is not the software statement's software_id".into(),
            ));
        }
    }
    if let Some(scope) = &metadata.scope {
        for value in scope.split(' ') {
            let missing_role = ROLE_SCOPES.iter().find(|(scope, role)| {
                *scope == value && !ssa.software_roles.iter().any(|r| r == role)
            });
            if let Some((scope, role)) = missing_role {
                return Err(RegistrationError::InvalidClientMetadata(format!(
                    "scope {scope} needs the role {role}, which the software statement does not give"
                )));
            }
        }
    }
    Ok(())
}
