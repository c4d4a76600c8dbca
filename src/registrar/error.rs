//! The outcomes of the registrar's operations that are not success, each carrying its error
//! code (RFC 7591 §3.2.2, RFC 6750 §3.1). The HTTP layer maps them to status codes in one place
//! (`http/errors.rs`).

use crate::client_id::MintError;
use crate::clock::ClockError;
use crate::metadata::{MetadataError, MetadataErrorCode};
use crate::resolve::ResolveError;
use crate::statement::StatementError;
use crate::status::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error("{0}")]
    InvalidSoftwareStatement(String),
    #[error("{0}")]
    UnapprovedSoftwareStatement(String),
    /// No registration access token was presented (RFC 6750 §3.1: no error code).
    #[error("a registration access token is required")]
    MissingToken,
    /// The token, or the client it is presented for, is not valid. One answer for all causes so
    /// that nothing reveals which clients exist (OIDC DCR §4.4).
    #[error("the registration access token or client is not valid")]
    InvalidToken,
    /// Registration needs an initial access token and none was presented (RFC 7591 §3; RFC
    /// 6750 §3.1: no error code in the challenge).
    #[error("{0}")]
    MissingInitialAccessToken(&'static str),
    /// The initial access token presented is not one this registrar accepts now.
    #[error("{0}")]
    InvalidInitialAccessToken(crate::iat::TokenError),
    /// The status store cannot be reached: update and delete never report a success they could
    /// not record, and reads never serve a client that might have been deleted.
    #[error("the client status store is temporarily unavailable; try again")]
    Unavailable(String),
    /// A status list the answer depends on cannot be read now (a federation authority's, or
    /// the registrar's on an edge node): fail closed, and say which (the text is safe to show).
    #[error("{0}")]
    StatusUnavailable(String),
    /// The statement issuer's registration budget is spent (`rate_limits.registration_per_issuer`).
    #[error("too many registrations for this software statement issuer; retry later")]
    RateLimited { retry_after: u64 },
    /// Something on the server's side failed; the message goes to the log, not the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistrationError {
    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
            RegistrationError::InvalidSoftwareStatement(_) => "invalid_software_statement",
            RegistrationError::UnapprovedSoftwareStatement(_) => "unapproved_software_statement",
            RegistrationError::MissingToken
            | RegistrationError::InvalidToken
            | RegistrationError::MissingInitialAccessToken(_)
            | RegistrationError::InvalidInitialAccessToken(_) => "invalid_token",
            RegistrationError::Unavailable(_) | RegistrationError::StatusUnavailable(_) => {
                "temporarily_unavailable"
            }
            RegistrationError::RateLimited { .. } => "too_many_requests",
            RegistrationError::Internal(_) => "server_error",
        }
    }

    /// A fault of the server or of what it depends on, as opposed to a refusal of the request.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            RegistrationError::Internal(_)
                | RegistrationError::Unavailable(_)
                | RegistrationError::StatusUnavailable(_)
        )
    }
}

impl From<MetadataError> for RegistrationError {
    fn from(e: MetadataError) -> Self {
        match e.code {
            MetadataErrorCode::InvalidRedirectUri => {
                RegistrationError::InvalidRedirectUri(e.description)
            }
            MetadataErrorCode::InvalidClientMetadata => {
                RegistrationError::InvalidClientMetadata(e.description)
            }
        }
    }
}

impl From<StatementError> for RegistrationError {
    fn from(e: StatementError) -> Self {
        match e {
            StatementError::Invalid(m) => RegistrationError::InvalidSoftwareStatement(m),
            StatementError::Unapproved(m) => RegistrationError::UnapprovedSoftwareStatement(m),
        }
    }
}

impl From<MintError> for RegistrationError {
    fn from(e: MintError) -> Self {
        match e {
            // over the limit: invalid_client_metadata naming the limit (docs/design.md)
            MintError::TooLong { .. } => RegistrationError::InvalidClientMetadata(e.to_string()),
            MintError::Crypto(m) => RegistrationError::Internal(m),
        }
    }
}

impl From<StoreError> for RegistrationError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => RegistrationError::Unavailable(m),
            // A record that does not verify (tampered, or signed by a key no longer listed):
            // the client is not trusted, and the operator is told loudly.
            StoreError::Corrupt(m) => {
                tracing::error!(detail = %m, "status record failed verification; client refused");
                RegistrationError::InvalidToken
            }
            StoreError::Internal(m) => RegistrationError::Internal(m),
        }
    }
}

impl From<ClockError> for RegistrationError {
    fn from(e: ClockError) -> Self {
        RegistrationError::Internal(e.to_string())
    }
}

impl From<ResolveError> for RegistrationError {
    /// At the configuration endpoint every invalid client is the same 401 (OIDC DCR §4.4).
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::InvalidClient(_) => RegistrationError::InvalidToken,
            ResolveError::Store(e) => e.into(),
            ResolveError::Clock(e) => e.into(),
            // the client's status cannot be read: it may have been withdrawn (fail closed)
            ResolveError::StatusList(e) => RegistrationError::StatusUnavailable(format!(
                "the client's status cannot be checked now: {e}"
            )),
            ResolveError::Amendment(m) => RegistrationError::StatusUnavailable(format!(
                "the client's status cannot be checked now: {m}"
            )),
            ResolveError::DocumentUnavailable(m) => RegistrationError::StatusUnavailable(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_record_fault_of_the_server_is_a_server_error() {
        let e = RegistrationError::from(StoreError::Internal("signing failed".into()));
        assert_eq!(e.code(), "server_error");
        assert!(e.is_server_fault());
        let e = RegistrationError::from(StoreError::Corrupt("tampered".into()));
        assert_eq!(e, RegistrationError::InvalidToken);
    }
}
