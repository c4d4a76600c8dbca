//! Token Status Lists (draft-ietf-oauth-status-list-18, "TSL"): how a deletion or an update of a
//! client, and the withdrawal of a software statement by its federation authority, reach every
//! verifier over plain, cacheable HTTP (docs/design.md, "Status lists").
//!
//! - [`array`]: the compressed byte array of statuses (§4);
//! - [`token`]: Status List Tokens in JWT form (§5.1), signed and verified;
//! - [`publish`]: the registrar's side: index blocks, the list served at `/status-lists/{id}`;
//! - [`client`]: a verifier's side: lists fetched, verified and cached for their `ttl`.
//!
//! A client_id issued with `management = "full"` is a Referenced Token (§6.2): it carries
//! `status.status_list = {idx, uri}`. Its entry is VALID (0) until a delete makes it INVALID (1)
//! or an update makes it [`AMENDED`] (3, an application-specific value, §7.1): "ask for the
//! current metadata". A software statement may carry the same claim, pointing at its
//! authority's own list.

pub mod array;
pub mod client;
pub mod publish;
pub mod token;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use array::{ArrayError, Bits, StatusArray};

/// §7.1: the token is valid.
pub const VALID: u8 = 0;
/// §7.1: revoked; for a client_id, the client was deleted (RFC 7592 §2.3).
pub const INVALID: u8 = 1;
/// §7.1: temporarily invalid.
pub const SUSPENDED: u8 = 2;
/// An application-specific value (§7.1 reserves 0x03): the client was updated (RFC 7592 §2.2),
/// so the metadata in its client_id is no longer the current one.
pub const AMENDED: u8 = 3;

/// The bits per entry of the registrar's lists: room for the four values above.
pub const REGISTRAR_BITS: Bits = Bits::TWO;

/// The media type of a Status List Token in JWT form (§8.1, §14.7).
pub const MEDIA_TYPE: &str = "application/statuslist+jwt";

/// The `status_list` member of a Referenced Token's `status` claim (§6.2): the index of its
/// entry and the URI of the Status List Token holding it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusReference {
    pub idx: u64,
    pub uri: String,
}

/// The `status` claim of a Referenced Token (§6.1): this service writes and reads only the
/// `status_list` mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClaim {
    pub status_list: StatusReference,
}

/// Why a `status` claim is not one this service can check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the status claim must be a JSON object")]
    NotObject,
    #[error("the status claim names no status_list; no other status mechanism is supported")]
    NoStatusList,
    #[error("status.status_list must be an object with idx and uri")]
    Shape,
    #[error("status.status_list.idx must be a non-negative integer")]
    Index,
    #[error("status.status_list.uri must be an absolute URI")]
    Uri,
}

impl StatusReference {
    /// Parse a `status` claim (§6.2): an object with a `status_list` object holding a
    /// non-negative integer `idx` and a URI `uri` (RFC 3986). Other members are ignored.
    pub fn from_claim(status: &Value) -> Result<StatusReference, ReferenceError> {
        let status = status.as_object().ok_or(ReferenceError::NotObject)?;
        let list = status
            .get("status_list")
            .ok_or(ReferenceError::NoStatusList)?
            .as_object()
            .ok_or(ReferenceError::Shape)?;
        let idx = list
            .get("idx")
            .ok_or(ReferenceError::Shape)?
            .as_u64()
            .ok_or(ReferenceError::Index)?;
        let uri = list
            .get("uri")
            .ok_or(ReferenceError::Shape)?
            .as_str()
            .ok_or(ReferenceError::Uri)?;
        url::Url::parse(uri).map_err(|_| ReferenceError::Uri)?;
        Ok(StatusReference {
            idx,
            uri: uri.to_owned(),
        })
    }
}

/// A status value's name in the registrar's own lists, for logs and error descriptions.
pub fn status_name(value: u8) -> &'static str {
    match value {
        AMENDED => "AMENDED",
        other => registered_status_name(other),
    }
}

/// A status value's name in anyone else's list: only the values §7.1 registers have one; the
/// application-specific ones (0x03, 0x0C–0x0F) mean what their issuer says.
pub fn registered_status_name(value: u8) -> &'static str {
    match value {
        VALID => "VALID",
        INVALID => "INVALID",
        SUSPENDED => "SUSPENDED",
        0x03 | 0x0c..=0x0f => "an application-specific status",
        _ => "an unregistered status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_parse_as_the_draft_defines_them() {
        let reference = StatusReference::from_claim(&json!({
            "status_list": {"idx": 0, "uri": "https://example.com/statuslists/1", "x": 1},
            "other_mechanism": {}
        }))
        .unwrap();
        assert_eq!(reference.idx, 0);
        assert_eq!(reference.uri, "https://example.com/statuslists/1");
        for (claim, error) in [
            (json!("x"), ReferenceError::NotObject),
            (json!({"other": {}}), ReferenceError::NoStatusList),
            (json!({"status_list": []}), ReferenceError::Shape),
            (
                json!({"status_list": {"uri": "https://a"}}),
                ReferenceError::Shape,
            ),
            (
                json!({"status_list": {"idx": -1, "uri": "https://a"}}),
                ReferenceError::Index,
            ),
            (
                json!({"status_list": {"idx": 1.5, "uri": "https://a"}}),
                ReferenceError::Index,
            ),
            (
                json!({"status_list": {"idx": 1, "uri": "/relative"}}),
                ReferenceError::Uri,
            ),
            (
                json!({"status_list": {"idx": 1, "uri": 7}}),
                ReferenceError::Uri,
            ),
        ] {
            assert_eq!(StatusReference::from_claim(&claim), Err(error), "{claim}");
        }
    }
}
