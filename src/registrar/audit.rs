//! One record per operation: the audit event (log target `audit`, so a log pipeline can route it
//! apart) for register, update and delete, refused or not, and the metrics of every operation.
//! The outcome is classified once, here.

use super::RegistrationError;
use crate::metrics::METRICS;
use crate::resolve::VerifiedClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Register,
    Read,
    Update,
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Register => "register",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// What is known of the client an operation concerns, filled in as the flow learns it.
pub(super) struct Audit {
    operation: Operation,
    pub(super) issuer: Option<String>,
    pub(super) software_id: Option<String>,
    pub(super) client: Option<String>,
    /// The jti and label of the initial access token a registration presented.
    pub(super) token: Option<String>,
    pub(super) token_label: Option<String>,
}

impl Audit {
    /// Run one flow with the audit record it fills in, and record its outcome.
    pub(super) async fn record<T>(
        operation: Operation,
        flow: impl AsyncFnOnce(&mut Audit) -> Result<T, RegistrationError>,
    ) -> Result<T, RegistrationError> {
        let mut audit = Audit::new(operation);
        let result = flow(&mut audit).await;
        audit.finish(&result);
        result
    }

    fn new(operation: Operation) -> Self {
        Audit {
            operation,
            issuer: None,
            software_id: None,
            client: None,
            token: None,
            token_label: None,
        }
    }

    /// The client a configuration endpoint call authenticated as.
    pub(super) fn describe(&mut self, client: &VerifiedClient) {
        self.client = Some(client.jti().to_owned());
        self.issuer = client.provenance().map(|p| p.iss.clone());
        self.software_id = client.metadata().software_id.clone();
    }

    /// Count the outcome and, except for reads (which change nothing), log the audit event.
    fn finish<T>(&self, result: &Result<T, RegistrationError>) {
        let (outcome, error) = match result {
            Ok(_) => ("ok", ""),
            Err(e) if e.is_server_fault() => ("error", e.code()),
            Err(e) => ("refused", e.code()),
        };
        let operation = self.operation.name();
        let issuer = self.issuer.as_deref().unwrap_or("");
        match self.operation {
            Operation::Register => METRICS
                .registrations
                .with_label_values(&[outcome, error, issuer])
                .inc(),
            _ => {
                if let Err(RegistrationError::Unavailable(_)) = result {
                    METRICS.store_errors.with_label_values(&[operation]).inc();
                }
                METRICS
                    .management
                    .with_label_values(&[operation, outcome, error])
                    .inc();
            }
        }
        if self.operation == Operation::Read {
            return;
        }
        tracing::info!(
            target: "audit",
            event = operation,
            outcome,
            error,
            issuer,
            software_id = self.software_id.as_deref().unwrap_or(""),
            client_jti = self.client.as_deref().unwrap_or(""),
            initial_access_token = self.token.as_deref().unwrap_or(""),
            token_label = self.token_label.as_deref().unwrap_or(""),
            "{operation} {outcome}"
        );
    }
}
