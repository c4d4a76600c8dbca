//! ECDSA signers and verifiers on prepared keys (RFC 7518 §3.4: ES256, ES384, ES512).
//!
//! josekit builds an EVP signing or verification context on every call. Here the keys are
//! parsed once, when a key set is loaded, and held ready: P-256 and P-384 as ring keys, whose
//! arithmetic is 11–12 % faster than OpenSSL 3.0's on the machines we measured (and than
//! josekit's EVP path by more), P-521, which ring lacks, as OpenSSL `EcKey`s used through the
//! low-level `ECDSA_do_sign` / `ECDSA_do_verify` (docs/benchmarks.md). Signatures are written in
//! their low-S form, so that the tokens the registrar signs have exactly one valid spelling.

use std::sync::LazyLock;

use josekit::jwk::Jwk;
use josekit::jws::{JwsAlgorithm, JwsSigner, JwsVerifier};
use josekit::JoseError;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Private, Public};
use serde_json::Value;

/// One of the three ECDSA JWS algorithms, with what signing and verifying need of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

/// A message digest of up to 512 bits, on the stack.
struct Digest {
    bytes: [u8; 64],
    len: usize,
}

impl Digest {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Curve {
    pub fn of_alg(alg: &str) -> Option<Curve> {
        match alg {
            "ES256" => Some(Curve::P256),
            "ES384" => Some(Curve::P384),
            "ES512" => Some(Curve::P521),
            _ => None,
        }
    }

    fn of_crv(crv: &str) -> Option<Curve> {
        match crv {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    fn nid(self) -> Nid {
        match self {
            Curve::P256 => Nid::X9_62_PRIME256V1,
            Curve::P384 => Nid::SECP384R1,
            Curve::P521 => Nid::SECP521R1,
        }
    }

    /// The byte width of r and of s (RFC 7518 §3.4).
    pub fn width(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// ring's fixed-width (`r ‖ s`, RFC 7518 §3.4) algorithms of the curve, where ring has it.
    fn ring_signing(self) -> Option<&'static ring::signature::EcdsaSigningAlgorithm> {
        match self {
            Curve::P256 => Some(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            Curve::P384 => Some(&ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            Curve::P521 => None,
        }
    }

    fn ring_verification(self) -> Option<&'static ring::signature::EcdsaVerificationAlgorithm> {
        match self {
            Curve::P256 => Some(&ring::signature::ECDSA_P256_SHA256_FIXED),
            Curve::P384 => Some(&ring::signature::ECDSA_P384_SHA384_FIXED),
            Curve::P521 => None,
        }
    }

    fn algorithm(self) -> &'static dyn JwsAlgorithm {
        match self {
            Curve::P256 => &josekit::jws::ES256,
            Curve::P384 => &josekit::jws::ES384,
            Curve::P521 => &josekit::jws::ES512,
        }
    }

    /// The message digest of the curve's algorithm (RFC 7518 §3.4). OpenSSL's incremental
    /// hashers, not its one-shot functions: in OpenSSL 3 those fetch the algorithm (a lock and
    /// a table lookup) on every call, which cost as much as hashing the message (docs/benchmarks.md).
    fn digest(self, message: &[u8]) -> Digest {
        let mut out = [0u8; 64];
        let len = match self {
            Curve::P256 => {
                let mut hasher = openssl::sha::Sha256::new();
                hasher.update(message);
                out[..32].copy_from_slice(&hasher.finish());
                32
            }
            Curve::P384 => {
                let mut hasher = openssl::sha::Sha384::new();
                hasher.update(message);
                out[..48].copy_from_slice(&hasher.finish());
                48
            }
            Curve::P521 => {
                let mut hasher = openssl::sha::Sha512::new();
                hasher.update(message);
                out.copy_from_slice(&hasher.finish());
                64
            }
        };
        Digest { bytes: out, len }
    }

    fn order(self) -> Result<&'static Order, ErrorStack> {
        static P256: LazyLock<Result<Order, ErrorStack>> =
            LazyLock::new(|| Order::of(Nid::X9_62_PRIME256V1));
        static P384: LazyLock<Result<Order, ErrorStack>> =
            LazyLock::new(|| Order::of(Nid::SECP384R1));
        static P521: LazyLock<Result<Order, ErrorStack>> =
            LazyLock::new(|| Order::of(Nid::SECP521R1));
        let order = match self {
            Curve::P256 => &*P256,
            Curve::P384 => &*P384,
            Curve::P521 => &*P521,
        };
        order.as_ref().map_err(Clone::clone)
    }
}

/// The order n of a curve's group, and n / 2.
struct Order {
    n: BigNum,
    half: BigNum,
}

impl Order {
    fn of(nid: Nid) -> Result<Order, ErrorStack> {
        let group = EcGroup::from_curve_name(nid)?;
        let mut n = BigNum::new()?;
        let mut context = BigNumContext::new()?;
        group.order(&mut n, &mut context)?;
        let mut half = BigNum::new()?;
        half.rshift1(&n)?;
        Ok(Order { n, half })
    }
}

/// Whether an `r ‖ s` signature of `alg` has S in the lower half of the curve order; signatures
/// of other algorithms have a single form already.
pub fn is_low_s(alg: &str, signature: &[u8]) -> bool {
    let Some(curve) = Curve::of_alg(alg) else {
        return true;
    };
    let (Ok(order), Some(s)) = (curve.order(), signature.get(curve.width()..)) else {
        return false;
    };
    BigNum::from_slice(s).is_ok_and(|s| s <= order.half)
}

/// Replace `s` by `n − s` in an `r ‖ s` signature of `alg` when it is in the upper half; other
/// algorithms, and signatures of the wrong length, are left as they are.
pub fn to_low_s(alg: &str, signature: &mut [u8]) -> Result<(), ErrorStack> {
    let Some(curve) = Curve::of_alg(alg) else {
        return Ok(());
    };
    let width = curve.width();
    if signature.len() != 2 * width {
        return Ok(());
    }
    let order = curve.order()?;
    let s = BigNum::from_slice(&signature[width..])?;
    if s > order.half {
        let mut low = BigNum::new()?;
        low.checked_sub(&order.n, &s)?;
        signature[width..].copy_from_slice(&padded(&low, width)?);
    }
    Ok(())
}

/// The other valid signature of the same message, (r, n − s): for tests of malleability.
#[cfg(test)]
pub(crate) fn high_twin(alg: &str, signature: &[u8]) -> Vec<u8> {
    let curve = Curve::of_alg(alg).unwrap();
    let width = curve.width();
    let order = curve.order().unwrap();
    let s = BigNum::from_slice(&signature[width..]).unwrap();
    let mut twin = BigNum::new().unwrap();
    twin.checked_sub(&order.n, &s).unwrap();
    let mut out = signature[..width].to_vec();
    out.extend(padded(&twin, width).unwrap());
    out
}

fn padded(n: &openssl::bn::BigNumRef, width: usize) -> Result<Vec<u8>, ErrorStack> {
    n.to_vec_padded(i32::try_from(width).unwrap_or(i32::MAX))
}

fn jose_error(e: impl std::fmt::Display) -> JoseError {
    JoseError::InvalidKeyFormat(std::io::Error::other(e.to_string()).into())
}

fn coordinate(jwk: &Jwk, name: &str) -> Result<BigNum, JoseError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let text = jwk
        .parameter(name)
        .and_then(Value::as_str)
        .ok_or_else(|| jose_error(format!("the EC key has no {name}")))?;
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(jose_error)?;
    BigNum::from_slice(&bytes).map_err(jose_error)
}

/// The curve of an EC JWK, which must agree with `alg` when it names one.
fn curve_of(jwk: &Jwk, alg: &str) -> Result<Curve, JoseError> {
    let crv = jwk.curve().unwrap_or_default();
    match (Curve::of_crv(crv), Curve::of_alg(alg)) {
        (Some(from_key), Some(from_alg)) if from_key == from_alg => Ok(from_key),
        _ => Err(jose_error(format!(
            "alg {alg} does not fit the curve {crv:?}"
        ))),
    }
}

/// The public key of an EC JWK on the curve its `crv` names (RFC 7518 §6.2.1).
pub fn public_key_of_jwk(jwk: &Jwk) -> Result<EcKey<Public>, JoseError> {
    let crv = jwk.curve().unwrap_or_default();
    let curve = Curve::of_crv(crv).ok_or_else(|| jose_error(format!("unknown curve {crv:?}")))?;
    public_key(jwk, curve)
}

/// The uncompressed SEC 1 encoding of a public point (0x04 ‖ x ‖ y), as ring reads it.
fn uncompressed_point<T: openssl::pkey::HasPublic>(key: &EcKey<T>) -> Result<Vec<u8>, JoseError> {
    let mut context = BigNumContext::new().map_err(jose_error)?;
    key.public_key()
        .to_bytes(
            key.group(),
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut context,
        )
        .map_err(jose_error)
}

fn public_key(jwk: &Jwk, curve: Curve) -> Result<EcKey<Public>, JoseError> {
    let group = EcGroup::from_curve_name(curve.nid()).map_err(jose_error)?;
    let (x, y) = (coordinate(jwk, "x")?, coordinate(jwk, "y")?);
    let key = EcKey::from_public_key_affine_coordinates(&group, &x, &y).map_err(jose_error)?;
    key.check_key().map_err(jose_error)?;
    Ok(key)
}

/// An ECDSA signer on a prepared private key.
#[derive(Clone)]
pub struct EcdsaSigner {
    curve: Curve,
    key: SigningKey,
    key_id: Option<String>,
}

/// The prepared private key: ring's where ring has the curve.
#[derive(Clone)]
enum SigningKey {
    Ring(std::sync::Arc<ring::signature::EcdsaKeyPair>),
    OpenSsl(EcKey<Private>),
}

impl std::fmt::Debug for EcdsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcdsaSigner")
            .field("curve", &self.curve)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl EcdsaSigner {
    /// From a private EC JWK (`d`, `x`, `y`, `crv`) for `alg`.
    pub fn from_jwk(jwk: &Jwk, alg: &str) -> Result<Self, JoseError> {
        let curve = curve_of(jwk, alg)?;
        let public = public_key(jwk, curve)?;
        let group = EcGroup::from_curve_name(curve.nid()).map_err(jose_error)?;
        let d = coordinate(jwk, "d")?;
        let key =
            EcKey::from_private_components(&group, &d, public.public_key()).map_err(jose_error)?;
        key.check_key().map_err(jose_error)?;
        let key = match curve.ring_signing() {
            Some(algorithm) => {
                let scalar = padded(key.private_key(), curve.width()).map_err(jose_error)?;
                let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    algorithm,
                    &scalar,
                    &uncompressed_point(&key)?,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(jose_error)?;
                SigningKey::Ring(std::sync::Arc::new(pair))
            }
            None => SigningKey::OpenSsl(key),
        };
        Ok(EcdsaSigner {
            curve,
            key,
            key_id: jwk.key_id().map(str::to_owned),
        })
    }
}

impl JwsSigner for EcdsaSigner {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        self.curve.algorithm()
    }

    fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    fn signature_len(&self) -> usize {
        2 * self.curve.width()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let failed = |e: String| JoseError::InvalidSignature(std::io::Error::other(e).into());
        let mut out = match &self.key {
            SigningKey::Ring(pair) => pair
                .sign(&ring::rand::SystemRandom::new(), message)
                .map_err(|e| failed(e.to_string()))?
                .as_ref()
                .to_vec(),
            SigningKey::OpenSsl(key) => (|| -> Result<Vec<u8>, ErrorStack> {
                let sig = EcdsaSig::sign(self.curve.digest(message).as_bytes(), key)?;
                let width = self.curve.width();
                let mut out = padded(sig.r(), width)?;
                out.extend(padded(sig.s(), width)?);
                Ok(out)
            })()
            .map_err(|e| failed(e.to_string()))?,
        };
        to_low_s(self.curve.algorithm().name(), &mut out).map_err(|e| failed(e.to_string()))?;
        Ok(out)
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

/// An ECDSA verifier on a prepared public key.
#[derive(Clone)]
pub struct EcdsaVerifier {
    curve: Curve,
    key: VerificationKey,
    key_id: Option<String>,
}

/// The prepared public key; the point was checked to be on the curve when it was loaded.
#[derive(Clone)]
enum VerificationKey {
    Ring(ring::signature::UnparsedPublicKey<Vec<u8>>),
    OpenSsl(EcKey<Public>),
}

impl std::fmt::Debug for EcdsaVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcdsaVerifier")
            .field("curve", &self.curve)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl EcdsaVerifier {
    /// From a public EC JWK for `alg`; the point must be on the curve.
    pub fn from_jwk(jwk: &Jwk, alg: &str) -> Result<Self, JoseError> {
        let curve = curve_of(jwk, alg)?;
        let public = public_key(jwk, curve)?;
        let key = match curve.ring_verification() {
            Some(algorithm) => VerificationKey::Ring(ring::signature::UnparsedPublicKey::new(
                algorithm,
                uncompressed_point(&public)?,
            )),
            None => VerificationKey::OpenSsl(public),
        };
        Ok(EcdsaVerifier {
            curve,
            key,
            key_id: jwk.key_id().map(str::to_owned),
        })
    }
}

impl JwsVerifier for EcdsaVerifier {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        self.curve.algorithm()
    }

    fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let width = self.curve.width();
        let invalid =
            |why: &str| JoseError::InvalidSignature(std::io::Error::other(why.to_owned()).into());
        if signature.len() != 2 * width {
            return Err(invalid("the signature has the wrong length"));
        }
        let verified = match &self.key {
            // ring checks r and s in [1, n - 1] and the point (RFC 7518 §3.4, SEC 1 §4.1.4)
            VerificationKey::Ring(key) => key.verify(message, signature).is_ok(),
            VerificationKey::OpenSsl(key) => (|| -> Result<bool, ErrorStack> {
                let r = BigNum::from_slice(&signature[..width])?;
                let s = BigNum::from_slice(&signature[width..])?;
                let sig = EcdsaSig::from_private_components(r, s)?;
                sig.verify(self.curve.digest(message).as_bytes(), key)
            })()
            .unwrap_or(false),
        };
        if verified {
            Ok(())
        } else {
            Err(invalid("the signature does not verify"))
        }
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jwk::alg::ec::EcCurve;

    #[test]
    fn interoperates_with_josekit_both_ways() {
        for (curve, alg) in [
            (EcCurve::P256, "ES256"),
            (EcCurve::P384, "ES384"),
            (EcCurve::P521, "ES512"),
        ] {
            let private = Jwk::generate_ec_key(curve).unwrap();
            let public = private.to_public_key().unwrap();
            let theirs_sign = match alg {
                "ES256" => josekit::jws::ES256.signer_from_jwk(&private).unwrap(),
                "ES384" => josekit::jws::ES384.signer_from_jwk(&private).unwrap(),
                _ => josekit::jws::ES512.signer_from_jwk(&private).unwrap(),
            };
            let theirs_verify = match alg {
                "ES256" => josekit::jws::ES256.verifier_from_jwk(&public).unwrap(),
                "ES384" => josekit::jws::ES384.verifier_from_jwk(&public).unwrap(),
                _ => josekit::jws::ES512.verifier_from_jwk(&public).unwrap(),
            };
            let ours_sign = EcdsaSigner::from_jwk(&private, alg).unwrap();
            let ours_verify = EcdsaVerifier::from_jwk(&public, alg).unwrap();
            for message in [&b""[..], b"header.payload", &[7u8; 1000]] {
                let ours = ours_sign.sign(message).unwrap();
                assert_eq!(ours.len(), ours_sign.signature_len());
                assert!(is_low_s(alg, &ours));
                theirs_verify.verify(message, &ours).unwrap();
                let theirs = theirs_sign.sign(message).unwrap();
                ours_verify.verify(message, &theirs).unwrap();
                let mut other = message.to_vec();
                other.push(1);
                assert!(ours_verify.verify(&other, &ours).is_err());
                assert!(ours_verify.verify(message, &ours[1..]).is_err());
            }
        }
    }

    #[test]
    fn a_key_fixes_its_curve_and_must_be_a_point_on_it() {
        let p256 = Jwk::generate_ec_key(EcCurve::P256).unwrap();
        assert!(EcdsaVerifier::from_jwk(&p256, "ES384").is_err());
        assert!(EcdsaSigner::from_jwk(&p256, "ES512").is_err());
        let mut off_curve = p256.to_public_key().unwrap();
        off_curve
            .set_parameter("y", Some(Value::String("AAAA".into())))
            .unwrap();
        assert!(EcdsaVerifier::from_jwk(&off_curve, "ES256").is_err());
    }
}
