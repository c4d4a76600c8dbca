//! Status List Tokens in JWT form (draft-ietf-oauth-status-list-18 §5.1): signed here with the
//! registrar's key, verified here for the registrar's own lists and for federation authorities'.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Bits, StatusArray};
use crate::jose::{self, CompactJws};
use crate::keys::{SigningKey, VerifierSet};

/// The `typ` of a Status List Token (§5.1).
pub const TYP: &str = "statuslist+jwt";

/// Why a Status List Token was refused. Every one of these means "no statement about the status
/// can be made" (§8.3): the Referenced Token is refused, never accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a signed JWT: {0}")]
    Jws(#[from] jose::JwsError),
    #[error("its typ is not statuslist+jwt")]
    Typ,
    #[error("it is signed with a key that is not trusted for this list")]
    UnknownKey,
    #[error("its payload is not a JSON object")]
    Payload,
    #[error("its sub is not the URI it was fetched for")]
    Subject,
    #[error("its {0} claim is missing or not a whole number of seconds")]
    Time(&'static str),
    #[error("it has expired")]
    Expired,
    #[error("it is not valid yet")]
    NotYetValid,
    #[error("its ttl is not a positive number")]
    Ttl,
    #[error("its status_list claim is missing or malformed")]
    Shape,
    #[error("its status list: {0}")]
    List(#[from] super::ArrayError),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A Status List Token that verified.
#[derive(Debug, Clone)]
pub struct VerifiedList {
    pub array: StatusArray,
    pub iat: u64,
    pub exp: Option<u64>,
    /// Seconds the token may be cached (§5.1, §13.7).
    pub ttl: Option<u64>,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    ttl: u64,
    status_list: ListClaim<'a>,
}

#[derive(Serialize)]
struct ListClaim<'a> {
    bits: u8,
    lst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregation_uri: Option<&'a str>,
}

/// What a signed list says about itself.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub iat: u64,
    pub exp: u64,
    pub ttl: u64,
}

/// Sign the list at `uri` (its `sub`, §5.1) with the registrar's key.
pub fn sign(
    key: &SigningKey,
    uri: &str,
    lifetime: Lifetime,
    array: &StatusArray,
    aggregation_uri: Option<&str>,
) -> Result<String, TokenError> {
    let claims = Claims {
        sub: uri,
        iat: lifetime.iat,
        exp: lifetime.exp,
        ttl: lifetime.ttl,
        status_list: ListClaim {
            bits: array.bits().get(),
            lst: array.encode()?,
            aggregation_uri,
        },
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| TokenError::Sign(e.to_string()))?;
    jose::sign_typed(key, TYP, &payload).map_err(|e| TokenError::Sign(e.to_string()))
}

/// Verify a Status List Token fetched from `uri` (§8.3 steps 3 to 5): a public-key signature by
/// one of `verifiers` (the header's `kid` picks the key, the key fixes the algorithm; MACs are
/// refused like everywhere in this service), `typ`, `sub` equal to `uri`, `iat`, `exp` and
/// `nbf` with `leeway` seconds, a positive `ttl`, and a list that decompresses within
/// `max_bytes`.
pub fn verify(
    token: &str,
    uri: &str,
    verifiers: &VerifierSet,
    now: u64,
    leeway: u64,
    max_bytes: usize,
) -> Result<VerifiedList, TokenError> {
    let jws = CompactJws::parse(token)?;
    // RFC 7515 §4.1.9: the "application/" prefix may be left out, and media types compare
    // without regard to case
    let typ = jws.typ().unwrap_or_default().to_ascii_lowercase();
    if typ != TYP && typ != super::MEDIA_TYPE {
        return Err(TokenError::Typ);
    }
    let verifier = verifiers
        .select(jws.kid(), jws.alg().unwrap_or_default())
        .ok_or(TokenError::UnknownKey)?;
    let payload = jws.verify(verifier)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| TokenError::Payload)?;
    // §8.3 step 4a: Simple String Comparison (RFC 3986 §6.2.1)
    if claims.get("sub").and_then(Value::as_str) != Some(uri) {
        return Err(TokenError::Subject);
    }
    let time = |name: &'static str| -> Result<Option<u64>, TokenError> {
        match claims.get(name) {
            None => Ok(None),
            Some(value) => value.as_u64().map(Some).ok_or(TokenError::Time(name)),
        }
    };
    let iat = time("iat")?.ok_or(TokenError::Time("iat"))?;
    let exp = time("exp")?;
    if exp.is_some_and(|exp| now >= exp.saturating_add(leeway)) {
        return Err(TokenError::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    let ttl = match claims.get("ttl") {
        None => None,
        // §5.1: a positive number; fractions of a second are dropped
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => return Err(TokenError::Ttl),
            Some(whole) => Some(whole),
            None => match n.as_f64() {
                Some(f) if f.is_finite() && f >= 1.0 => Some(f as u64),
                _ => return Err(TokenError::Ttl),
            },
        },
        Some(_) => return Err(TokenError::Ttl),
    };
    let list = claims
        .get("status_list")
        .and_then(Value::as_object)
        .ok_or(TokenError::Shape)?;
    let bits = list
        .get("bits")
        .and_then(Value::as_u64)
        .ok_or(TokenError::Shape)?;
    let lst = list
        .get("lst")
        .and_then(Value::as_str)
        .ok_or(TokenError::Shape)?;
    let array = StatusArray::decode(Bits::new(bits)?, lst, max_bytes)?;
    Ok(VerifiedList {
        array,
        iat,
        exp,
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{RegistrarKeys, SigningAlg};
    use serde_json::json;

    const URI: &str = "https://registrar.test/status-lists/0";

    fn keys() -> RegistrarKeys {
        let json = RegistrarKeys::generate(SigningAlg::Es256).unwrap();
        RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn lifetime() -> Lifetime {
        Lifetime {
            iat: 1_000,
            exp: 2_000,
            ttl: 300,
        }
    }

    #[test]
    fn a_signed_list_verifies_and_reads_back() {
        let keys = keys();
        let mut array = StatusArray::new(Bits::TWO, 1024);
        array.set(5, 1).unwrap();
        let token = sign(
            keys.signing_key(),
            URI,
            lifetime(),
            &array,
            Some("https://a"),
        )
        .unwrap();
        let verified = verify(&token, URI, keys.verifiers(), 1_500, 0, 1 << 20).unwrap();
        assert_eq!(verified.array, array);
        assert_eq!(
            (verified.iat, verified.exp, verified.ttl),
            (1_000, Some(2_000), Some(300))
        );
        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(jws.typ(), Some(TYP));
        assert_eq!(jws.kid(), Some(keys.signing_key().kid.as_str()));
    }

    #[test]
    fn lists_that_do_not_hold_up_are_refused() {
        let keys = keys();
        let array = StatusArray::new(Bits::TWO, 64);
        let token = sign(keys.signing_key(), URI, lifetime(), &array, None).unwrap();
        let check = |token: &str, uri: &str, now: u64| {
            verify(token, uri, keys.verifiers(), now, 0, 1 << 20).map(|_| ())
        };
        assert_eq!(
            check(&token, "https://registrar.test/status-lists/1", 1_500),
            Err(TokenError::Subject)
        );
        assert_eq!(check(&token, URI, 2_000), Err(TokenError::Expired));
        assert!(check(&token, URI, 1_999).is_ok());
        assert!(matches!(
            check("garbage", URI, 1_500),
            Err(TokenError::Jws(_))
        ));
        let other = self::keys();
        assert_eq!(
            verify(&token, URI, other.verifiers(), 1_500, 0, 1 << 20).map(|_| ()),
            Err(TokenError::UnknownKey)
        );
        let signed = |typ: &str, payload: Value| {
            jose::sign_typed(keys.signing_key(), typ, payload.to_string().as_bytes()).unwrap()
        };
        let good = || json!({"sub": URI, "iat": 1_000, "status_list": {"bits": 2, "lst": array.encode().unwrap()}});
        assert_eq!(
            check(&signed("client-id+jwt", good()), URI, 1_500),
            Err(TokenError::Typ)
        );
        assert!(check(&signed("application/StatusList+JWT", good()), URI, 1_500).is_ok());
        let mut payload = good();
        payload.as_object_mut().unwrap().remove("iat");
        assert_eq!(
            check(&signed(TYP, payload), URI, 1_500),
            Err(TokenError::Time("iat"))
        );
        for ttl in [json!(0), json!(-5), json!("300"), json!(0.5)] {
            let mut payload = good();
            payload["ttl"] = ttl.clone();
            assert_eq!(
                check(&signed(TYP, payload), URI, 1_500),
                Err(TokenError::Ttl),
                "{ttl}"
            );
        }
        for list in [
            json!({"bits": 3, "lst": "eNrbuRgAAhcBXQ"}),
            json!({"bits": 1}),
            json!("x"),
        ] {
            let mut payload = good();
            payload["status_list"] = list.clone();
            assert!(check(&signed(TYP, payload), URI, 1_500).is_err(), "{list}");
        }
        let mut payload = good();
        payload["nbf"] = json!(1_600);
        assert_eq!(
            check(&signed(TYP, payload), URI, 1_500),
            Err(TokenError::NotYetValid)
        );
        // a list that inflates past the cap
        let mut payload = good();
        payload["status_list"]["lst"] = StatusArray::new(Bits::TWO, 1 << 24)
            .encode()
            .unwrap()
            .into();
        assert!(matches!(
            check(&signed(TYP, payload), URI, 1_500),
            Err(TokenError::List(super::super::ArrayError::TooLarge(_)))
        ));
    }
}
