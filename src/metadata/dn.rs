//! Distinguished names as strings (RFC 4514), for `tls_client_auth_subject_dn` (RFC 8705
//! §2.1.2): parsed at registration so that only a well-formed DN is registered, and compared
//! as names, not as strings, so that `CN=a, O=B` and `o=b,cn=A` of the same order are one name.

use std::fmt;

/// One attribute of a relative distinguished name: its type (a lower-case short name or a
/// dotted OID, RFC 4514 §3) and its value, unescaped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attribute {
    pub kind: String,
    pub value: Value,
}

/// An attribute value: a string, or the hex-encoded BER of `#...` (RFC 4514 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Text(String),
    Ber(Vec<u8>),
}

/// A distinguished name in the order of its string form (RFC 4514 §2.1: the last RDN of the
/// ASN.1 sequence first); each RDN a set of attributes, kept sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName(pub Vec<Vec<Attribute>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnError(String);

impl fmt::Display for DnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn error(why: impl Into<String>) -> DnError {
    DnError(why.into())
}

/// The short names of RFC 4514 §3, and the OIDs they stand for, so that `CN=x` and
/// `2.5.4.3=x` are the same attribute; then the names OpenSSL writes for attributes common in
/// client certificates (X.520, PKCS #9, ETSI EN 319 412-1 `organizationIdentifier`, which
/// open-banking certificates carry).
const SHORT_NAMES: [(&str, &str); 17] = [
    ("cn", "2.5.4.3"),
    ("l", "2.5.4.7"),
    ("st", "2.5.4.8"),
    ("o", "2.5.4.10"),
    ("ou", "2.5.4.11"),
    ("c", "2.5.4.6"),
    ("street", "2.5.4.9"),
    ("dc", "0.9.2342.19200300.100.1.25"),
    ("uid", "0.9.2342.19200300.100.1.1"),
    ("sn", "2.5.4.4"),
    ("serialnumber", "2.5.4.5"),
    ("title", "2.5.4.12"),
    ("businesscategory", "2.5.4.15"),
    ("postalcode", "2.5.4.17"),
    ("givenname", "2.5.4.42"),
    ("organizationidentifier", "2.5.4.97"),
    ("emailaddress", "1.2.840.113549.1.9.1"),
];

/// The OID of an attribute type, where it has a short name here; other names as written,
/// lower-cased.
pub fn canonical_type(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    SHORT_NAMES
        .iter()
        .find(|(short, _)| *short == lower)
        .map_or(lower, |(_, oid)| (*oid).to_owned())
}

impl DistinguishedName {
    /// Parse an RFC 4514 string. An empty string is the empty DN.
    pub fn parse(text: &str) -> Result<Self, DnError> {
        let chars: Vec<char> = text.chars().collect();
        let mut rdns = Vec::new();
        if chars.is_empty() {
            return Ok(DistinguishedName(rdns));
        }
        let mut i = 0;
        let mut rdn = Vec::new();
        loop {
            let (attribute, next) = parse_attribute(&chars, i)?;
            rdn.push(attribute);
            i = next;
            match chars.get(i) {
                None => {
                    rdns.push(std::mem::take(&mut rdn));
                    break;
                }
                Some('+') => i += 1,
                Some(',') => {
                    rdns.push(std::mem::take(&mut rdn));
                    i += 1;
                }
                Some(c) => return Err(error(format!("unexpected {c:?} after a value"))),
            }
        }
        for rdn in &mut rdns {
            rdn.sort();
            if rdn.windows(2).any(|pair| pair[0].kind == pair[1].kind) {
                return Err(error("an attribute type appears twice in one RDN"));
            }
        }
        Ok(DistinguishedName(rdns))
    }

    /// RFC 4517 §4.2.15 distinguishedNameMatch, with the string attributes compared as
    /// caseIgnoreMatch after RFC 4518 insignificant-space handling reduced to its common form:
    /// the same RDNs in the same order, each the same set of attributes.
    pub fn matches(&self, other: &DistinguishedName) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|(a, b)| {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| x.kind == y.kind && values_match(&x.value, &y.value))
            })
    }
}

fn values_match(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Text(a), Value::Text(b)) => fold(a) == fold(b),
        (Value::Ber(a), Value::Ber(b)) => a == b,
        _ => false,
    }
}

/// caseIgnoreMatch, simplified: Unicode lower case, runs of spaces as one, no leading or
/// trailing space (RFC 4518 §2.6.1).
fn fold(value: &str) -> String {
    value
        .split(' ')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn parse_attribute(chars: &[char], start: usize) -> Result<(Attribute, usize), DnError> {
    // attributeType: descr (ALPHA *(ALPHA / DIGIT / "-")) or numericoid
    let mut i = start;
    while chars.get(i).is_some_and(|c| *c == ' ') {
        i += 1;
    }
    let type_start = i;
    while chars
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
    {
        i += 1;
    }
    let kind: String = chars[type_start..i].iter().collect();
    let valid_type = match kind.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => {
            kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }
        Some(c) if c.is_ascii_digit() => kind.split('.').all(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
        }),
        _ => false,
    };
    if !valid_type {
        return Err(error(format!("{kind:?} is not an attribute type")));
    }
    while chars.get(i).is_some_and(|c| *c == ' ') {
        i += 1;
    }
    if chars.get(i) != Some(&'=') {
        return Err(error(format!(
            "attribute type {kind:?} is not followed by ="
        )));
    }
    i += 1;
    let (value, next) = if chars.get(i) == Some(&'#') {
        parse_hex_value(chars, i + 1)?
    } else {
        parse_string_value(chars, i)?
    };
    Ok((
        Attribute {
            kind: canonical_type(&kind),
            value,
        },
        next,
    ))
}

fn parse_hex_value(chars: &[char], start: usize) -> Result<(Value, usize), DnError> {
    let mut i = start;
    let mut bytes = Vec::new();
    while let Some(high) = chars.get(i).filter(|c| c.is_ascii_hexdigit()) {
        let low = chars
            .get(i + 1)
            .filter(|c| c.is_ascii_hexdigit())
            .ok_or_else(|| error("a #hexstring has an odd number of digits"))?;
        let byte = (high.to_digit(16).unwrap_or(0) << 4) | low.to_digit(16).unwrap_or(0);
        bytes.push(u8::try_from(byte).map_err(|_| error("bad hex"))?);
        i += 2;
    }
    if bytes.is_empty() {
        return Err(error("# must be followed by hex digits"));
    }
    Ok((Value::Ber(bytes), i))
}

fn parse_string_value(chars: &[char], start: usize) -> Result<(Value, usize), DnError> {
    let mut i = start;
    let mut value: Vec<u8> = Vec::new();
    // the index in `value` after the last escaped byte: an escaped trailing space is kept
    let mut protected = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            ',' | '+' => break,
            '\\' => {
                let next = chars
                    .get(i + 1)
                    .ok_or_else(|| error("a value ends with a lone backslash"))?;
                if next.is_ascii_hexdigit() {
                    let low = chars
                        .get(i + 2)
                        .filter(|c| c.is_ascii_hexdigit())
                        .ok_or_else(|| {
                            error("\\ must be followed by two hex digits or a special character")
                        })?;
                    let byte =
                        (next.to_digit(16).unwrap_or(0) << 4) | low.to_digit(16).unwrap_or(0);
                    value.push(u8::try_from(byte).map_err(|_| error("bad hex"))?);
                    i += 3;
                } else if matches!(
                    next,
                    ' ' | '"' | '#' | '+' | ',' | ';' | '<' | '=' | '>' | '\\'
                ) {
                    let mut buffer = [0u8; 4];
                    value.extend_from_slice(next.encode_utf8(&mut buffer).as_bytes());
                    i += 2;
                } else {
                    return Err(error(format!("\\{next} is not an escape")));
                }
                protected = value.len();
            }
            '"' | ';' | '<' | '>' | '\0' => {
                return Err(error(format!("{c:?} must be escaped in a value")));
            }
            _ => {
                let mut buffer = [0u8; 4];
                value.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                i += 1;
            }
        }
    }
    // unescaped trailing spaces are not part of the value (RFC 4514 §3)
    while value.len() > protected && value.last() == Some(&b' ') {
        value.pop();
    }
    let text = String::from_utf8(value).map_err(|_| error("a value is not UTF-8"))?;
    Ok((Value::Text(text), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> DistinguishedName {
        DistinguishedName::parse(text).unwrap()
    }

    #[test]
    fn names_compare_as_names() {
        let registered = dn("CN=tpp.example.com,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB");
        for same in [
            "cn=tpp.example.com,ou=0015800001HQQrZAAX,o=OpenBanking,c=GB",
            "CN=TPP.example.com, OU=0015800001hqqrzaax, O=openbanking, C=gb",
            "2.5.4.3=tpp.example.com,2.5.4.11=0015800001HQQrZAAX,2.5.4.10=OpenBanking,2.5.4.6=GB",
            "CN=tpp.example.com ,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB",
        ] {
            assert!(registered.matches(&dn(same)), "{same}");
        }
        for other in [
            // attribute order is the name's order: another order is another name
            "OU=0015800001HQQrZAAX,CN=tpp.example.com,O=OpenBanking,C=GB",
            "CN=other.example.com,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB",
            "CN=tpp.example.com,OU=0015800001HQQrZAAX,O=OpenBanking",
            "CN=tpp.example.com+UID=1,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB",
        ] {
            assert!(!registered.matches(&dn(other)), "{other}");
        }
    }

    #[test]
    fn escapes_and_multi_valued_rdns() {
        assert!(dn(r"CN=Smith\, John,O=Example").matches(&dn(r"CN=Smith\2C John,O=Example")));
        assert_eq!(dn(r"CN=a\+b").0[0][0].value, Value::Text("a+b".into()));
        assert_eq!(dn(r"CN=\#1").0[0][0].value, Value::Text("#1".into()));
        assert_eq!(dn(r"CN=a\ ").0[0][0].value, Value::Text("a ".into()));
        assert_eq!(
            dn("CN=caf\\C3\\A9").0[0][0].value,
            Value::Text("café".into())
        );
        // a multi-valued RDN is a set: its order does not matter
        assert!(dn("CN=a+UID=b,O=x").matches(&dn("UID=b+CN=a,O=x")));
        assert_eq!(
            dn("1.2.3=#0403414243").0[0][0].value,
            Value::Ber(vec![4, 3, 0x41, 0x42, 0x43])
        );
        assert!(dn("").0.is_empty());
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in [
            "CN",
            "=x",
            "CN=a,",
            "CN=a;O=b",
            "CN=\"quoted\"",
            r"CN=a\",
            r"CN=a\q",
            r"CN=\4",
            "1.=x",
            "01.2=x",
            "C N=x",
            "CN=a+CN=b",
            "CN=#",
            "CN=#abc",
            "CN=<x>",
            "-CN=x",
        ] {
            assert!(DistinguishedName::parse(bad).is_err(), "{bad}");
        }
    }
}
