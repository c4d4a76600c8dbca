//! Client certificates presented at a token endpoint (RFC 8705 §2): checked against the subject
//! a `tls_client_auth` client registered (§2.1) or the keys a `self_signed_tls_client_auth`
//! client registered (§2.2), and hashed into the `x5t#S256` thumbprint that binds tokens to the
//! certificate (§3.1).
//!
//! The certificate reaches the resolver from the OP, which took it from its TLS terminator.
//! Chain validation, validity dates and revocation are that terminator's job (RFC 8705 §2.1:
//! the PKI method relies on the TLS stack's path validation); the resolver only checks that the
//! certificate is the one the client registered.

use std::fmt;
use std::net::IpAddr;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use josekit::jwk::Jwk;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameRef, X509};
use serde_json::Value;

use crate::metadata::dn::{self, Attribute, DistinguishedName};
use crate::metadata::TlsSubject;

/// Why a presented certificate cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertificateError(String);

/// A parsed X.509 client certificate: what RFC 8705 compares, and its thumbprint.
pub struct ClientCertificate {
    thumbprint: String,
    /// The subject in RFC 4514 order (the last RDN first); `None` when its structure could not
    /// be read, in which case no registered DN matches.
    subject: Option<DistinguishedName>,
    dns_names: Vec<String>,
    uris: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    emails: Vec<String>,
    public_key: PKey<Public>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// Standard or URL-safe base64, padded or not: OPs pass what their terminator gives them.
fn lenient(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

fn bad(why: impl Into<String>) -> CertificateError {
    CertificateError(why.into())
}

impl ClientCertificate {
    /// A certificate as PEM (`-----BEGIN CERTIFICATE-----`) or as base64 of its DER.
    pub fn parse(text: &str) -> Result<Self, CertificateError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let x509 = X509::from_pem(text.as_bytes())
                .map_err(|_| bad("the PEM does not hold an X.509 certificate"))?;
            return Self::from_x509(&x509);
        }
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = lenient(&base64::alphabet::STANDARD)
            .decode(&compact)
            .or_else(|_| lenient(&base64::alphabet::URL_SAFE).decode(&compact))
            .map_err(|_| bad("the certificate is neither PEM nor base64 of its DER"))?;
        Self::from_der(&der)
    }

    /// A DER-encoded certificate, with nothing after it.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let x509 = X509::from_der(der).map_err(|_| bad("the DER is not an X.509 certificate"))?;
        // d2i ignores trailing bytes; a certificate with some is not the one its thumbprint
        // would name
        if x509
            .to_der()
            .map_err(|_| bad("the certificate cannot be encoded"))?
            != der
        {
            return Err(bad(
                "the DER holds more than one certificate, or is not DER",
            ));
        }
        Self::from_x509(&x509)
    }

    fn from_x509(x509: &X509) -> Result<Self, CertificateError> {
        let digest = x509
            .digest(MessageDigest::sha256())
            .map_err(|_| bad("the certificate cannot be hashed"))?;
        let public_key = x509
            .public_key()
            .map_err(|_| bad("the certificate's public key cannot be read"))?;
        let mut certificate = ClientCertificate {
            thumbprint: crate::jose::base64url(&digest),
            subject: subject_of(x509.subject_name()),
            dns_names: Vec::new(),
            uris: Vec::new(),
            ip_addresses: Vec::new(),
            emails: Vec::new(),
            public_key,
        };
        for name in x509.subject_alt_names().iter().flatten() {
            if let Some(dns) = name.dnsname() {
                certificate.dns_names.push(dns.to_owned());
            } else if let Some(uri) = name.uri() {
                certificate.uris.push(uri.to_owned());
            } else if let Some(email) = name.email() {
                certificate.emails.push(email.to_owned());
            } else if let Some(ip) = name.ipaddress() {
                let address = match ip.len() {
                    4 => <[u8; 4]>::try_from(ip).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(ip).ok().map(IpAddr::from),
                    _ => None,
                };
                certificate.ip_addresses.extend(address);
            }
        }
        Ok(certificate)
    }

    /// The base64url SHA-256 of the certificate's DER: `x5t#S256` of RFC 8705 §3.1, for the
    /// `cnf` claim of tokens bound to it.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// RFC 8705 §2.1.2: the registered field against the certificate. The subject DN is
    /// compared as a name (RFC 4517 distinguishedNameMatch), SAN entries exactly (a DNS name
    /// without case; no wildcard expansion either way).
    pub fn matches_subject(&self, registered: &TlsSubject) -> bool {
        match registered {
            TlsSubject::SubjectDn(text) => match (&self.subject, DistinguishedName::parse(text)) {
                (Some(subject), Ok(expected)) => expected.matches(subject),
                _ => false,
            },
            TlsSubject::SanDns(name) => self.dns_names.iter().any(|d| d.eq_ignore_ascii_case(name)),
            TlsSubject::SanUri(uri) => self.uris.iter().any(|u| u == uri),
            TlsSubject::SanIp(ip) => ip
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.ip_addresses.contains(&ip)),
            TlsSubject::SanEmail(email) => self.emails.iter().any(|e| same_address(e, email)),
        }
    }

    /// RFC 8705 §2.2: a self-signed certificate authenticates when its public key is one of
    /// the client's registered keys (a JWK Set). Keys for encryption are skipped.
    pub fn matches_keys(&self, jwks: &Value) -> bool {
        let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
            return false;
        };
        keys.iter()
            .filter_map(|key| Jwk::from_map(key.as_object()?.clone()).ok())
            .filter(|jwk| jwk.key_use() != Some("enc"))
            .filter_map(|jwk| public_key_of(&jwk))
            .any(|key| key.public_eq(&self.public_key))
    }
}

/// An email address: the local part exactly, the domain without case (RFC 5321 §2.4).
fn same_address(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((local_a, domain_a)), Some((local_b, domain_b))) => {
            local_a == local_b && domain_a.eq_ignore_ascii_case(domain_b)
        }
        _ => false,
    }
}

/// The public key of a JWK, for RSA, EC and OKP (Ed25519, Ed448) keys.
fn public_key_of(jwk: &Jwk) -> Option<PKey<Public>> {
    let member = |name: &str| -> Option<Vec<u8>> {
        let text = jwk.parameter(name)?.as_str()?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()
    };
    match jwk.key_type() {
        "RSA" => {
            let n = BigNum::from_slice(&member("n")?).ok()?;
            let e = BigNum::from_slice(&member("e")?).ok()?;
            PKey::from_rsa(Rsa::from_public_components(n, e).ok()?).ok()
        }
        "EC" => {
            let key = crate::keys::ecdsa::public_key_of_jwk(jwk).ok()?;
            PKey::from_ec_key(key).ok()
        }
        "OKP" => {
            let id = match jwk.curve()? {
                "Ed25519" => Id::ED25519,
                "Ed448" => Id::ED448,
                _ => return None,
            };
            PKey::public_key_from_raw_bytes(&member("x")?, id).ok()
        }
        _ => None,
    }
}

/// The subject in RFC 4514 order, its attribute types as dotted OIDs (as
/// [`dn::canonical_type`] writes registered ones). The structure (which attributes share an
/// RDN, and their types) comes from the name's DER; the values as text from OpenSSL, which
/// decodes every ASN.1 string type, in the same order.
fn subject_of(name: &X509NameRef) -> Option<DistinguishedName> {
    let der = name.to_der().ok()?;
    let structure = name_structure(&der)?;
    let mut texts = name.entries().map(|entry| entry.data().to_string().ok());
    let mut rdns = Vec::with_capacity(structure.len());
    for rdn in structure {
        let mut attributes = Vec::with_capacity(rdn.len());
        for (kind, ber) in rdn {
            let value = match texts.next()? {
                Some(text) => dn::Value::Text(text),
                None => dn::Value::Ber(ber.to_vec()),
            };
            attributes.push(Attribute { kind, value });
        }
        attributes.sort();
        rdns.push(attributes);
    }
    if texts.next().is_some() {
        return None;
    }
    // RFC 4514 §2.1: the string form starts with the last RDN of the sequence
    rdns.reverse();
    Some(DistinguishedName(rdns))
}

/// One DER element (X.690 §8.1).
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    /// The whole encoding: tag, length and content.
    whole: &'a [u8],
    /// What follows it.
    rest: &'a [u8],
}

fn element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > std::mem::size_of::<usize>() {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes.iter().try_fold(0usize, |length, &b| {
            length.checked_mul(256)?.checked_add(usize::from(b))
        })?
    };
    let (content, after) = rest.split_at_checked(length)?;
    let whole_length = input.len().checked_sub(after.len())?;
    let (whole, _) = input.split_at_checked(whole_length)?;
    Some(Element {
        tag,
        content,
        whole,
        rest: after,
    })
}

/// An RDN: its attributes' types (dotted OIDs) and encoded values.
type Rdn<'a> = Vec<(String, &'a [u8])>;

/// The RDNs of a DER Name, each its attributes' types (dotted OIDs) and encoded values: a
/// SEQUENCE of SETs of AttributeTypeAndValue SEQUENCEs (RFC 5280 §4.1.2.4).
fn name_structure(der: &[u8]) -> Option<Vec<Rdn<'_>>> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    let name = element(der)?;
    if name.tag != SEQUENCE || !name.rest.is_empty() {
        return None;
    }
    let mut rdns = name.content;
    let mut structure = Vec::new();
    while !rdns.is_empty() {
        let set = element(rdns)?;
        if set.tag != SET {
            return None;
        }
        rdns = set.rest;
        let mut attributes = set.content;
        let mut rdn = Vec::new();
        while !attributes.is_empty() {
            let pair = element(attributes)?;
            if pair.tag != SEQUENCE {
                return None;
            }
            attributes = pair.rest;
            let oid = element(pair.content)?;
            let value = element(oid.rest)?;
            if oid.tag != OID || !value.rest.is_empty() {
                return None;
            }
            rdn.push((dotted_oid(oid.content)?, value.whole));
        }
        structure.push(rdn);
    }
    Some(structure)
}

/// The dotted form of an OBJECT IDENTIFIER's content octets (X.690 §8.19).
fn dotted_oid(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in content {
        value = value
            .checked_mul(128)?
            .checked_add(u64::from(byte & 0x7f))?;
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                // the first subidentifier packs the first two arcs
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value.checked_sub(first.checked_mul(40)?)?);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() || content.last().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_are_written_dotted() {
        // 2.5.4.3 (commonName), 1.2.840.113549.1.9.1 (emailAddress), 2.5.4.97
        assert_eq!(dotted_oid(&[0x55, 0x04, 0x03]).as_deref(), Some("2.5.4.3"));
        assert_eq!(
            dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(dotted_oid(&[0x55, 0x04, 0x61]).as_deref(), Some("2.5.4.97"));
        assert_eq!(dotted_oid(&[]), None);
        assert_eq!(dotted_oid(&[0x55, 0x84]), None);
    }

    #[test]
    fn the_structure_follows_the_sets() {
        // SEQUENCE { SET { {CN, "a"}, {O, "b"} }, SET { {C, "c"} } }
        let attribute =
            |oid: u8, value: u8| vec![0x30, 0x08, 0x06, 0x03, 0x55, 0x04, oid, 0x0c, 0x01, value];
        let mut first = vec![0x31, 0x14];
        first.extend(attribute(3, b'a'));
        first.extend(attribute(10, b'b'));
        let mut second = vec![0x31, 0x0a];
        second.extend(attribute(6, b'c'));
        let mut der = vec![0x30, 0x22];
        der.extend(first);
        der.extend(second);
        let structure = name_structure(&der).unwrap();
        let kinds: Vec<Vec<&str>> = structure
            .iter()
            .map(|rdn| rdn.iter().map(|(kind, _)| kind.as_str()).collect())
            .collect();
        assert_eq!(kinds, [vec!["2.5.4.3", "2.5.4.10"], vec!["2.5.4.6"]]);
        assert_eq!(structure[1][0].1, [0x0c, 0x01, b'c']);
        assert_eq!(name_structure(&[0x30, 0x05, 0x31]), None);
        assert_eq!(name_structure(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(name_structure(&[0x31, 0x00]), None);
        assert_eq!(
            name_structure(&[0x30, 0x02, 0x31, 0x00]),
            Some(vec![vec![]])
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
            "not base64!",
            "AAAA",
            "MAA=",
        ] {
            assert!(ClientCertificate::parse(text).is_err(), "{text:?}");
        }
    }

    fn subject(dn: &str) -> TlsSubject {
        TlsSubject::SubjectDn(dn.into())
    }

    #[test]
    fn a_multi_valued_rdn_matches_as_a_set() {
        // made with `openssl req -subj "/CN=a/O=b+OU=c/C=GB" -multivalue-rdn`
        let certificate =
            ClientCertificate::parse(include_str!("../../tests/data/multi-valued-rdn.pem"))
                .unwrap();
        assert!(certificate.matches_subject(&subject("C=GB,O=b+OU=c,CN=a")));
        assert!(certificate.matches_subject(&subject("c=gb,ou=C+o=B,cn=A")));
        // split into two RDNs, or in the other order, it is another name
        assert!(!certificate.matches_subject(&subject("C=GB,O=b,OU=c,CN=a")));
        assert!(!certificate.matches_subject(&subject("CN=a,O=b+OU=c,C=GB")));
    }

    #[test]
    fn attribute_types_match_by_oid() {
        // organizationIdentifier (2.5.4.97), as eIDAS and open-banking certificates carry it
        let certificate =
            ClientCertificate::parse(include_str!("../../tests/data/organization-identifier.pem"))
                .unwrap();
        for dn in [
            "organizationIdentifier=PSDGB-FCA-123456,CN=ed",
            "2.5.4.97=PSDGB-FCA-123456,2.5.4.3=ed",
            "ORGANIZATIONIDENTIFIER=psdgb-fca-123456,cn=ED",
        ] {
            assert!(certificate.matches_subject(&subject(dn)), "{dn}");
        }
        assert!(!certificate.matches_subject(&subject("CN=ed")));
    }

    #[test]
    fn addresses_compare_the_domain_without_case() {
        assert!(same_address("a@Example.COM", "a@example.com"));
        assert!(!same_address("A@example.com", "a@example.com"));
        assert!(!same_address("a", "a"));
    }
}
