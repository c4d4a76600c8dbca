//! The small part of JOSE this service does itself: compact JWS parsing and signing, keyed
//! derivation (HMAC-SHA256, from ring), randomness and constant-time comparison.
//!
//! Signature algorithms come from josekit; the compact form is handled here so that every header
//! rule (RFC 7515 §4.1.11 `crit`, no `none`, no MACs, keys only from configuration) is enforced in
//! one place and nothing in a header is ever followed (`jku`, `x5u`, `jwk`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jws::{JwsSigner, JwsVerifier};
use serde_json::{Map, Value};

/// Why a compact JWS was refused. The messages are ASCII and safe to show to a client.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum JwsError {
    #[error("not a JWS in compact serialization (three base64url parts separated by dots)")]
    Malformed,
    #[error("the JWS header is not a base64url-encoded JSON object")]
    BadHeader,
    #[error("the JWS header has no alg")]
    MissingAlg,
    #[error("the JWS alg \"none\" is never accepted")]
    AlgNone,
    #[error("MAC algorithms (HS*) are never accepted: only public-key signatures")]
    AlgMac,
    #[error("the JWS header lists critical extensions this service does not understand")]
    UnknownCritical,
    #[error("the JWS payload is not base64url")]
    BadPayload,
    #[error("the signature does not verify")]
    BadSignature,
}

/// A compact JWS split into its parts, with the header decoded but nothing verified yet.
#[derive(Debug)]
pub struct CompactJws<'a> {
    header: Map<String, Value>,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Split and decode. Refuses `none`, MAC algorithms and any `crit` header (RFC 7515 §4.1.11:
    /// a recipient must refuse extensions it does not understand, and this service understands
    /// none), so that nothing past this point can be confused about what kind of token it holds.
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        Self::parse_with(token, false)
    }

    /// Like [`CompactJws::parse`] but also accepting HS* algorithms: only for tokens keyed by a
    /// secret both sides share, such as `client_secret_jwt` assertions (OIDC Core §9).
    pub fn parse_allowing_mac(token: &'a str) -> Result<Self, JwsError> {
        Self::parse_with(token, true)
    }

    fn parse_with(token: &'a str, allow_mac: bool) -> Result<Self, JwsError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        if header_b64.is_empty() || signature_b64.is_empty() {
            return Err(JwsError::Malformed);
        }
        let header_bytes = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| JwsError::BadHeader)?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header_bytes).map_err(|_| JwsError::BadHeader)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwsError::Malformed)?;
        let jws = CompactJws {
            header,
            signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
            payload_b64,
            signature,
        };
        match jws.alg() {
            None => return Err(JwsError::MissingAlg),
            Some(alg) if alg.eq_ignore_ascii_case("none") => return Err(JwsError::AlgNone),
            Some(alg) if alg.starts_with("HS") && !allow_mac => return Err(JwsError::AlgMac),
            Some(_) => {}
        }
        if jws.header.contains_key("crit") {
            return Err(JwsError::UnknownCritical);
        }
        Ok(jws)
    }

    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// Whether the signature is in the one form the registrar writes: for ECDSA, S in the lower
    /// half of the curve order. `(r, s)` and `(r, n − s)` verify alike (ECDSA is malleable), so
    /// without this a client_id would have a twin string that resolves to the same client.
    /// Other algorithms have one form already (EdDSA verification refuses S ≥ L, RFC 8032 §5.1.7).
    pub fn has_canonical_signature(&self) -> bool {
        crate::keys::ecdsa::is_low_s(self.alg().unwrap_or_default(), &self.signature)
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    /// The payload bytes without checking the signature: only to learn which issuer's keys to
    /// verify with (RFC 7591 §2.3). Nothing read this way is trusted (RFC 8725 §3.10).
    pub fn unverified_payload(&self) -> Result<Vec<u8>, JwsError> {
        URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| JwsError::BadPayload)
    }

    /// Verify with one key. The caller picked the verifier by `kid` from configured keys; the
    /// header's `alg` must be the verifier's algorithm, so the key fixes the algorithm.
    pub fn verify(&self, verifier: &dyn JwsVerifier) -> Result<Vec<u8>, JwsError> {
        if self.alg() != Some(verifier.algorithm().name()) {
            return Err(JwsError::BadSignature);
        }
        verifier
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwsError::BadSignature)?;
        self.unverified_payload()
    }
}

/// Sign `payload` with one of the registrar's keys, under a header naming its `alg`, its `kid`
/// and the token type `typ` (RFC 8725 §3.11: explicit typing keeps token kinds apart). ECDSA
/// signatures are written in their low-S form, the only one [`CompactJws::has_canonical_signature`]
/// accepts, so that each token the registrar issues has exactly one valid spelling.
pub fn sign_typed(
    key: &crate::keys::SigningKey,
    typ: &str,
    payload: &[u8],
) -> Result<String, josekit::JoseError> {
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(key.alg.into()));
    header.insert("kid".into(), Value::String(key.kid.clone()));
    header.insert("typ".into(), Value::String(typ.into()));
    let header_json = serde_json::to_vec(&header).map_err(|e| jose_error(e.to_string()))?;
    let mut token = String::with_capacity(
        (header_json.len() + payload.len()) * 4 / 3 + key.signer.signature_len() * 4 / 3 + 8,
    );
    URL_SAFE_NO_PAD.encode_string(&header_json, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let mut signature = key.signer.sign(token.as_bytes())?;
    crate::keys::ecdsa::to_low_s(key.alg, &mut signature).map_err(|e| jose_error(e.to_string()))?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// Sign `payload` under `header` (which must already name `alg`, `kid` and `typ`).
pub fn sign_compact(
    header: &Map<String, Value>,
    payload: &[u8],
    signer: &dyn JwsSigner,
) -> Result<String, josekit::JoseError> {
    let header_json = serde_json::to_vec(header).map_err(|e| jose_error(e.to_string()))?;
    let mut token = String::with_capacity(
        (header_json.len() + payload.len()) * 4 / 3 + signer.signature_len() * 4 / 3 + 8,
    );
    URL_SAFE_NO_PAD.encode_string(&header_json, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = signer.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

fn jose_error(message: String) -> josekit::JoseError {
    // josekit's error variants wrap anyhow errors; build one from a message without taking a
    // direct dependency on anyhow.
    josekit::JoseError::InvalidJson(std::io::Error::other(message).into())
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` bytes from OpenSSL's CSPRNG.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut buf = vec![0u8; n];
    openssl::rand::rand_bytes(&mut buf)?;
    Ok(buf)
}

/// How many random bytes a thread draws at a time for [`random_id`].
const ID_POOL_BYTES: usize = 1024;

thread_local! {
    /// Random bytes drawn ahead for identifiers, and how many of them are used.
    static ID_POOL: std::cell::RefCell<([u8; ID_POOL_BYTES], usize)> =
        const { std::cell::RefCell::new(([0; ID_POOL_BYTES], ID_POOL_BYTES)) };
}

/// `N` random bytes for a public identifier (a client_id's `jti`), from OpenSSL's DRBG like
/// [`random_bytes`], but drawn 1 KiB at a time per thread: each call into the DRBG costs a
/// `getpid` and a cipher set-up, which was 4 % of a registration with a cached statement
/// (docs/benchmarks.md). Only for values that are published anyway: never for keys or secrets,
/// which should not sit in a buffer before use.
pub fn random_id<const N: usize>() -> Result<[u8; N], openssl::error::ErrorStack> {
    const { assert!(N <= ID_POOL_BYTES) };
    ID_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + N > ID_POOL_BYTES {
            openssl::rand::rand_bytes(bytes)?;
            *used = 0;
        }
        let mut id = [0u8; N];
        // each byte is handed out once: `used` only moves forward until the next refill
        id.copy_from_slice(&bytes[*used..*used + N]);
        *used += N;
        Ok(id)
    })
}

/// An HMAC-SHA256 key (ring): the padded key blocks are computed once, when the key is loaded.
#[derive(Clone)]
pub struct HmacKey(ring::hmac::Key);

impl HmacKey {
    pub fn new(key: &[u8]) -> Self {
        HmacKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key))
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(redacted)")
    }
}

/// HMAC-SHA256 (RFC 2104) over the parts, each followed by a zero byte so that no two
/// different part lists produce the same input (docs/design.md, "Secrets without storage").
pub fn hmac_sha256(key: &HmacKey, parts: &[&[u8]]) -> [u8; 32] {
    let mut context = ring::hmac::Context::with_key(&key.0);
    for part in parts {
        context.update(part);
        context.update(&[0]);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.sign().as_ref());
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    // OpenSSL's SHA256_* functions directly: the one-shot `SHA256()` of OpenSSL 3 goes through
    // an EVP fetch (a lock and a table lookup) on every call
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(data);
    hasher.finish()
}

/// Constant-time equality for secrets; lengths are not secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn decode(part: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(part).unwrap()
    }

    /// The other ECDSA P-256 signature of the same message: (r, n - s).
    pub(crate) fn twin_of(signature: &[u8]) -> Vec<u8> {
        crate::keys::ecdsa::high_twin("ES256", signature)
    }

    #[test]
    fn pooled_ids_never_repeat_across_refills() {
        // 1000 ids of 16 bytes cross the 1 KiB pool many times
        let ids: std::collections::HashSet<[u8; 16]> =
            (0..1000).map(|_| random_id::<16>().unwrap()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&[0u8; 16]));
    }

    fn encode_header(json: &str) -> String {
        base64url(json.as_bytes())
    }

    #[test]
    fn refuses_garbage() {
        for token in [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            "!!.e30.c2ln",
            "e30.e30.",
            "e30.e30.c2ln",
        ] {
            assert!(CompactJws::parse(token).is_err(), "{token}");
        }
    }

    #[test]
    fn refuses_none_mac_and_crit() {
        let none = format!("{}.e30.c2ln", encode_header(r#"{"alg":"none"}"#));
        assert_eq!(CompactJws::parse(&none).unwrap_err(), JwsError::AlgNone);
        let hs = format!("{}.e30.c2ln", encode_header(r#"{"alg":"HS256"}"#));
        assert_eq!(CompactJws::parse(&hs).unwrap_err(), JwsError::AlgMac);
        let crit = format!(
            "{}.e30.c2ln",
            encode_header(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#)
        );
        assert_eq!(
            CompactJws::parse(&crit).unwrap_err(),
            JwsError::UnknownCritical
        );
    }

    #[test]
    fn hmac_is_openssl_hmac() {
        // every key length class of RFC 2104: short, one block, longer (hashed first); OpenSSL
        // refuses an empty key
        for key_len in [1, 32, 63, 64, 65, 131] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            for parts in [&[][..], &[&b"client_secret"[..], b"jti-value", b"0"][..]] {
                let pkey = openssl::pkey::PKey::hmac(&key).unwrap();
                let md = openssl::hash::MessageDigest::sha256();
                let mut signer = openssl::sign::Signer::new(md, &pkey).unwrap();
                for part in parts {
                    signer.update(part).unwrap();
                    signer.update(&[0]).unwrap();
                }
                let expected = signer.sign_to_vec().unwrap();
                assert_eq!(hmac_sha256(&HmacKey::new(&key), parts).to_vec(), expected);
            }
        }
    }

    #[test]
    fn hmac_sha256_matches_the_rfc_4231_test_vectors() {
        // RFC 4231 §4.2–§4.8 (case 5 truncates its output and is left out): key, data, HMAC
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (vec![0x0b; 20], b"Hi There".to_vec(),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (vec![0xaa; 20], vec![0xdd; 50],
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), vec![0xcd; 50],
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            (vec![0xaa; 131],
             b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (vec![0xaa; 131],
             b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ];
        for (key, data, expected) in cases {
            let tag = ring::hmac::sign(&HmacKey::new(&key).0, &data);
            assert_eq!(tag.as_ref(), hex(expected).as_slice());
        }
    }

    #[test]
    fn registrar_signatures_are_low_s_and_their_twins_are_refused() {
        use crate::keys::{RegistrarKeys, SigningAlg};
        for alg in [SigningAlg::Es256, SigningAlg::Es384, SigningAlg::EdDsa] {
            let json = RegistrarKeys::generate(alg).unwrap();
            let keys = RegistrarKeys::from_json(json.to_string().as_bytes()).unwrap();
            let key = keys.signing_key();
            for i in 0..20 {
                let token =
                    sign_typed(key, "test+jwt", format!("{{\"n\":{i}}}").as_bytes()).unwrap();
                let jws = CompactJws::parse(&token).unwrap();
                assert!(jws.has_canonical_signature(), "{}", key.alg);
                let verifier = keys.verifiers().select(Some(&key.kid), key.alg).unwrap();
                assert!(jws.verify(verifier).is_ok());
                if key.alg == "EdDSA" {
                    continue;
                }
                // the twin (r, n - s) still verifies as ECDSA, and is refused as not canonical
                let twin = crate::keys::ecdsa::high_twin(key.alg, &jws.signature);
                let (input, _) = token.rsplit_once('.').unwrap();
                let twin_token = format!("{input}.{}", base64url(&twin));
                let twin_jws = CompactJws::parse(&twin_token).unwrap();
                assert!(twin_jws.verify(verifier).is_ok());
                assert!(!twin_jws.has_canonical_signature());
            }
        }
    }

    #[test]
    fn hmac_parts_are_separated() {
        let key = HmacKey::new(b"k");
        let a = hmac_sha256(&key, &[b"ab", b"c"]);
        let b = hmac_sha256(&key, &[b"a", b"bc"]);
        assert_ne!(a, b);
    }
}
