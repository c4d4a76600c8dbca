//! The UK Open Banking Directory's software statement assertion (SSA), for issuers configured
//! with `profile = "openbanking-uk"` (docs/profiles/openbanking-uk.md).
//!
//! The Directory does not write client metadata under the RFC 7591 names: it writes
//! `software_client_name`, `software_jwks_endpoint`, `software_redirect_uris` and so on, with
//! the organisation (`org_id`, `org_name`) and the software's roles beside them. Those claims
//! are translated here into the metadata the statement fixes; the redirect URIs and roles are
//! kept for the checks of the registration request (OB DCR 3.3: the request's `redirect_uris`
//! are a subset of the SSA's, its scopes follow the roles).

use serde_json::{Map, Value};

use super::{invalid, StatementError};

/// What an SSA says beyond client metadata: the organisation, the roles and the redirect URIs
/// the request may choose from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenBankingClaims {
    pub org_id: String,
    pub org_name: Option<String>,
    pub software_roles: Vec<String>,
    pub software_redirect_uris: Vec<String>,
}

/// SSA claim → the RFC 7591 member it fixes (OB Directory SSA; RFC 7591 §2). The statement's
/// keys are the client's keys: `software_jwks_endpoint` becomes its `jwks_uri`.
pub const METADATA_CLAIMS: [(&str, &str); 8] = [
    ("software_id", "software_id"),
    ("software_version", "software_version"),
    ("software_client_name", "client_name"),
    ("software_client_uri", "client_uri"),
    ("software_logo_uri", "logo_uri"),
    ("software_policy_uri", "policy_uri"),
    ("software_tos_uri", "tos_uri"),
    ("software_jwks_endpoint", "jwks_uri"),
];

/// The scope each role of the OB Read/Write API grants (OB Security Profile: `accounts` for an
/// AISP, `payments` for a PISP, `fundsconfirmations` for a CBPII).
pub const ROLE_SCOPES: [(&str, &str); 3] = [
    ("accounts", "AISP"),
    ("payments", "PISP"),
    ("fundsconfirmations", "CBPII"),
];

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, StatementError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!(
            "the software statement's {name} must be a non-empty string"
        ))),
    }
}

fn strings_claim(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, StatementError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(format!(
                    "the software statement's {name} must be an array of strings"
                ))
            }),
        Some(_) => Err(invalid(format!(
            "the software statement's {name} must be an array of strings"
        ))),
    }
}

/// The metadata an SSA fixes, and its other claims. `software_id`, `org_id` and
/// `software_jwks_endpoint` are required: without them the software, its organisation or its
/// keys are unknown. An organisation whose `org_status` is not `Active` is unapproved.
pub fn translate(
    claims: &Map<String, Value>,
) -> Result<(Map<String, Value>, OpenBankingClaims), StatementError> {
    let mut metadata = Map::new();
    for (claim, member) in METADATA_CLAIMS {
        let value = match claims.get(claim) {
            None | Some(Value::Null) => continue,
            // the Directory has issued numeric versions (`1.1`); RFC 7591 §2 says a string
            Some(Value::Number(n)) if claim == "software_version" => Value::String(n.to_string()),
            Some(value) => value.clone(),
        };
        metadata.insert(member.to_owned(), value);
    }
    for required in ["software_id", "org_id", "software_jwks_endpoint"] {
        if string_claim(claims, required)?.is_none() {
            return Err(invalid(format!(
                "the software statement has no {required} (UK Open Banking SSA)"
            )));
        }
    }
    if let Some(status) = string_claim(claims, "org_status")? {
        if status != "Active" {
            return Err(StatementError::Unapproved(format!(
                "the software statement's organisation is not active (org_status {status:?})"
            )));
        }
    }
    let profile = OpenBankingClaims {
        org_id: string_claim(claims, "org_id")?.unwrap_or_default(),
        org_name: string_claim(claims, "org_name")?,
        software_roles: strings_claim(claims, "software_roles")?,
        software_redirect_uris: strings_claim(claims, "software_redirect_uris")?,
    };
    Ok((metadata, profile))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ssa() -> Map<String, Value> {
        json!({
            "software_id": "ZqvcCzPoy9uL7MJ5B7Hm3R",
            "software_version": 1.1,
            "software_client_name": "Budget App",
            "software_jwks_endpoint": "https://keystore.example/org/ZqvcCzPoy9uL7MJ5B7Hm3R.jwks",
            "software_redirect_uris": ["https://tpp.example/cb"],
            "software_roles": ["AISP", "PISP"],
            "org_id": "0015800001041RHAAY",
            "org_name": "TPP Ltd",
            "org_status": "Active",
            "redirect_uris": ["https://elsewhere.example/cb"]
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn claims_map_to_metadata_and_nothing_else() {
        let (metadata, claims) = translate(&ssa()).unwrap();
        assert_eq!(metadata["client_name"], "Budget App");
        assert_eq!(metadata["software_version"], "1.1");
        assert_eq!(
            metadata["jwks_uri"],
            "https://keystore.example/org/ZqvcCzPoy9uL7MJ5B7Hm3R.jwks"
        );
        // an RFC 7591 name in an SSA fixes nothing: the request chooses among software_redirect_uris
        assert!(!metadata.contains_key("redirect_uris"));
        assert_eq!(claims.software_roles, ["AISP", "PISP"]);
        assert_eq!(claims.org_name.as_deref(), Some("TPP Ltd"));
    }

    #[test]
    fn required_claims_and_types() {
        for missing in ["software_id", "org_id", "software_jwks_endpoint"] {
            let mut claims = ssa();
            claims.remove(missing);
            assert!(matches!(
                translate(&claims),
                Err(StatementError::Invalid(_))
            ));
        }
        let mut claims = ssa();
        claims.insert("software_roles".into(), json!("AISP"));
        assert!(matches!(
            translate(&claims),
            Err(StatementError::Invalid(_))
        ));
        let mut claims = ssa();
        claims.insert("org_status".into(), json!("Revoked"));
        assert!(matches!(
            translate(&claims),
            Err(StatementError::Unapproved(_))
        ));
    }
}
