//! The operator withdraws software: every client of one `software_id` of one issuer, or of one
//! software statement `jti`, with one status-store record (`crate::status::withdrawal`). The
//! admin API and `stateless-dcr revoke` call these; every read, update and resolve checks the
//! withdrawals in force afterwards.

use serde_json::{Map, Value};

use super::{Registrar, RegistrationError};
use crate::status::withdrawal::{Target, Withdrawal, WithdrawalStatus};
use crate::status::{LiftOutcome, PutOutcome};

/// Longest `reason` kept with a withdrawal, in characters.
const MAX_REASON_CHARS: usize = 500;

/// Why a withdrawal request is refused; the admin API maps each to its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawalError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such withdrawal")]
    NotFound,
    #[error(
        "a permanent (invalid) withdrawal cannot be lifted, turned into a suspension or narrowed"
    )]
    Permanent,
    #[error(transparent)]
    Registration(#[from] RegistrationError),
}

impl From<crate::status::StoreError> for WithdrawalError {
    fn from(e: crate::status::StoreError) -> Self {
        match e {
            // a stored withdrawal that does not verify is the server's problem, not the
            // operator's credentials (the client refusal it causes is elsewhere)
            crate::status::StoreError::Corrupt(m) => {
                WithdrawalError::Registration(RegistrationError::Internal(m))
            }
            other => WithdrawalError::Registration(other.into()),
        }
    }
}

/// A request to withdraw, parsed from the admin API's JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRequest {
    pub issuer: String,
    pub target: Target,
    pub registered_before: Option<u64>,
    pub status: WithdrawalStatus,
    pub reason: Option<String>,
}

impl WithdrawalRequest {
    /// `{"issuer", "software_id" | "statement_jti", "registered_before"?, "status"?, "reason"?}`;
    /// `status` is `invalid` (the default, permanent) or `suspended`.
    pub fn from_json(body: &Map<String, Value>) -> Result<Self, WithdrawalError> {
        let invalid = |m: &str| WithdrawalError::Invalid(m.to_owned());
        let string = |name: &str| -> Result<Option<String>, WithdrawalError> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(WithdrawalError::Invalid(format!(
                    "{name} must be a non-empty string"
                ))),
            }
        };
        let known = [
            "issuer",
            "software_id",
            "statement_jti",
            "registered_before",
            "status",
            "reason",
        ];
        if let Some(unknown) = body.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(WithdrawalError::Invalid(format!(
                "unknown member {}",
                crate::metadata::quoted(unknown)
            )));
        }
        let issuer = string("issuer")?.ok_or_else(|| invalid("issuer is required"))?;
        let target = match (string("software_id")?, string("statement_jti")?) {
            (Some(id), None) => Target::SoftwareId(id),
            (None, Some(jti)) => Target::StatementJti(jti),
            _ => return Err(invalid("give exactly one of software_id and statement_jti")),
        };
        let registered_before = match body.get("registered_before") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_u64().ok_or_else(|| {
                invalid("registered_before must be a whole number of seconds since 1970")
            })?),
        };
        let status = match string("status")?.as_deref() {
            None | Some("invalid") => WithdrawalStatus::Invalid,
            Some("suspended") => WithdrawalStatus::Suspended,
            Some(_) => return Err(invalid("status must be \"invalid\" or \"suspended\"")),
        };
        let reason = string("reason")?;
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            return Err(WithdrawalError::Invalid(format!(
                "reason must be at most {MAX_REASON_CHARS} characters"
            )));
        }
        Ok(WithdrawalRequest {
            issuer,
            target,
            registered_before,
            status,
            reason,
        })
    }
}

impl Registrar {
    /// Withdraw the clients a request names. The same target again replaces the earlier
    /// withdrawal (its time bound, its reason), except that a permanent one stays permanent.
    pub async fn withdraw(
        &self,
        request: WithdrawalRequest,
    ) -> Result<Withdrawal, WithdrawalError> {
        let store = self.store()?;
        let now = self.clock.now().map_err(RegistrationError::from)?;
        let withdrawal = Withdrawal::new(
            request.issuer,
            request.target,
            request.registered_before,
            request.status,
            now,
            request.reason,
        );
        let keys = self.keys.snapshot();
        let outcome = store.put_withdrawal(&keys, &withdrawal).await?;
        let written = outcome == PutOutcome::Written;
        tracing::info!(
            target: "audit",
            event = "withdraw",
            outcome = if written { "ok" } else { "refused" },
            id = %withdrawal.id,
            issuer = %withdrawal.issuer,
            software_id = withdrawal.software_id.as_deref().unwrap_or(""),
            statement_jti = withdrawal.statement_jti.as_deref().unwrap_or(""),
            status = withdrawal.status.as_str(),
            "withdraw {}",
            if written { "ok" } else { "refused" }
        );
        match outcome {
            PutOutcome::Written => Ok(withdrawal),
            PutOutcome::Permanent => Err(WithdrawalError::Permanent),
        }
    }

    /// Every withdrawal in force.
    pub async fn withdrawals(&self) -> Result<Vec<Withdrawal>, WithdrawalError> {
        let set = self.store()?.withdrawal_set().await?;
        Ok(set.all().into_iter().cloned().collect())
    }

    /// Lift a suspension; permanent withdrawals stay.
    pub async fn lift_withdrawal(&self, id: &str) -> Result<(), WithdrawalError> {
        let outcome = self.store()?.lift_withdrawal(id).await?;
        tracing::info!(
            target: "audit",
            event = "lift",
            outcome = if outcome == LiftOutcome::Lifted { "ok" } else { "refused" },
            id,
            "lift withdrawal"
        );
        match outcome {
            LiftOutcome::Lifted => Ok(()),
            LiftOutcome::NotFound => Err(WithdrawalError::NotFound),
            LiftOutcome::Permanent => Err(WithdrawalError::Permanent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<WithdrawalRequest, WithdrawalError> {
        WithdrawalRequest::from_json(body.as_object().unwrap())
    }

    #[test]
    fn requests_name_one_target_of_one_issuer() {
        let request = parse(json!({"issuer": "https://fed.test", "software_id": "app"})).unwrap();
        assert_eq!(request.target, Target::SoftwareId("app".into()));
        assert_eq!(request.status, WithdrawalStatus::Invalid);
        let request = parse(json!({
            "issuer": "https://fed.test", "statement_jti": "s1", "status": "suspended",
            "registered_before": 1_700_000_000, "reason": "audit"
        }))
        .unwrap();
        assert_eq!(request.target, Target::StatementJti("s1".into()));
        assert_eq!(request.status, WithdrawalStatus::Suspended);
        assert_eq!(request.registered_before, Some(1_700_000_000));
        for bad in [
            json!({"software_id": "app"}),
            json!({"issuer": "i"}),
            json!({"issuer": "i", "software_id": "a", "statement_jti": "s"}),
            json!({"issuer": "i", "software_id": ""}),
            json!({"issuer": "i", "software_id": 5}),
            json!({"issuer": "i", "software_id": "a", "status": "revoked"}),
            json!({"issuer": "i", "software_id": "a", "registered_before": -1}),
            json!({"issuer": "i", "software_id": "a", "registered_before": "soon"}),
            json!({"issuer": "i", "software_id": "a", "reason": "r".repeat(501)}),
            json!({"issuer": "i", "software_id": "a", "client_id": "x"}),
        ] {
            assert!(
                matches!(parse(bad.clone()), Err(WithdrawalError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
