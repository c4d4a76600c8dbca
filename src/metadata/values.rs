//! The enumerated values of client metadata (RFC 7591 §2, OIDC DCR §2), parsed once from their
//! wire strings so that the rest of the code matches on types instead of comparing strings.
//! The same types make up the `[policy]` section of the configuration.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serde as the wire string, with `parse` and `as_str`; `unknown` describes a string that does
/// not parse.
macro_rules! serde_as_string {
    ($name:ty, $unknown:expr) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$name>::parse(&text).ok_or_else(|| serde::de::Error::custom(($unknown)(&text)))
            }
        }
    };
}

/// Implements `as_str`, `parse`, `Display` and string serde for a fieldless enum.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the specifications list them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        serde_as_string!($name, |text: &str| format!(
            "unknown {} {:?}; expected one of: {}",
            $what,
            text,
            $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
        ));
    };
}

wire_enum!(
    /// `grant_types` values: OIDC DCR §2 and RFC 7591 §2, with the extension grants of RFC 7523
    /// §2.1, RFC 7522 §2.1, RFC 8628 §3.4 and OpenID CIBA §4.
    GrantType, "grant type", {
        AuthorizationCode = "authorization_code",
        Implicit = "implicit",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
        Password = "password",
        JwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer",
        Saml2Bearer = "urn:ietf:params:oauth:grant-type:saml2-bearer",
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
        Ciba = "urn:openid:params:grant-type:ciba",
    }
);

impl GrantType {
    /// Grants that send the user agent to a redirect URI (RFC 7591 §5, OIDC DCR §2).
    pub fn is_redirect_based(self) -> bool {
        matches!(self, GrantType::AuthorizationCode | GrantType::Implicit)
    }
}

wire_enum!(
    /// `application_type` (OIDC DCR §2), recorded in the client_id (RFC 8252 §8.4).
    ApplicationType, "application type", {
        Web = "web",
        Native = "native",
    }
);

wire_enum!(
    /// `subject_type` (OIDC Core §8).
    SubjectType, "subject type", {
        Public = "public",
        Pairwise = "pairwise",
    }
);

wire_enum!(
    /// `token_endpoint_auth_method` values (RFC 7591 §2; OIDC Core §9).
    AuthMethod, "token endpoint authentication method", {
        None = "none",
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        ClientSecretJwt = "client_secret_jwt",
        PrivateKeyJwt = "private_key_jwt",
        /// RFC 8705 §2.1: a certificate from a trusted CA, matched on its subject or a SAN.
        TlsClientAuth = "tls_client_auth",
        /// RFC 8705 §2.2: a self-signed certificate whose key is one of the client's keys.
        SelfSignedTlsClientAuth = "self_signed_tls_client_auth",
    }
);

impl AuthMethod {
    /// Methods that authenticate with the client_secret (OIDC Core §9).
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic
                | AuthMethod::ClientSecretPost
                | AuthMethod::ClientSecretJwt
        )
    }
}

/// One token of a response type (RFC 6749 §3.1.1; OAuth 2.0 Multiple Response Type Encoding
/// Practices §3 and §4 for `id_token` and `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseToken {
    Code,
    IdToken,
    Token,
    None,
}

impl ResponseToken {
    fn parse(token: &str) -> Option<Self> {
        Some(match token {
            "code" => ResponseToken::Code,
            "id_token" => ResponseToken::IdToken,
            "token" => ResponseToken::Token,
            "none" => ResponseToken::None,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        match self {
            ResponseToken::Code => 1,
            ResponseToken::IdToken => 2,
            ResponseToken::Token => 4,
            ResponseToken::None => 8,
        }
    }
}

/// One `response_types` entry: a set of space-separated tokens whose order does not matter
/// (RFC 6749 §3.1.1), kept with the text exactly as received so that a response repeats it.
/// Two entries are equal when their token sets are.
#[derive(Debug, Clone)]
pub struct ResponseType {
    text: Box<str>,
    tokens: u8,
}

impl ResponseType {
    /// Parse an entry; `None` for an unknown or repeated token, an empty token (two spaces, a
    /// leading or trailing space), or `none` combined with another token.
    pub fn parse(text: &str) -> Option<Self> {
        let mut tokens = 0u8;
        for token in text.split(' ') {
            let bit = ResponseToken::parse(token)?.bit();
            if tokens & bit != 0 {
                return None;
            }
            tokens |= bit;
        }
        let none = ResponseToken::None.bit();
        if tokens & none != 0 && tokens != none {
            return None;
        }
        Some(ResponseType {
            text: text.into(),
            tokens,
        })
    }

    /// `code`, the default response type (OIDC DCR §2).
    pub fn code() -> Self {
        ResponseType {
            text: "code".into(),
            tokens: ResponseToken::Code.bit(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn contains(&self, token: ResponseToken) -> bool {
        self.tokens & token.bit() != 0
    }

    /// Whether the authorization endpoint returns a token or an ID Token for it: the client
    /// uses the implicit grant (OIDC DCR §2; RFC 7591 §2.1).
    pub fn is_implicit(&self) -> bool {
        self.contains(ResponseToken::Token) || self.contains(ResponseToken::IdToken)
    }
}

impl PartialEq for ResponseType {
    fn eq(&self, other: &Self) -> bool {
        self.tokens == other.tokens
    }
}

impl Eq for ResponseType {}

impl fmt::Display for ResponseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

serde_as_string!(ResponseType, |text: &str| {
    format!(
    "unknown response type {text:?}; expected space-separated tokens of code, id_token, token, or none alone"
)
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_types_are_token_sets() {
        let a = ResponseType::parse("code id_token").unwrap();
        let b = ResponseType::parse("id_token code").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.as_str(), "id_token code");
        assert!(a.is_implicit());
        assert!(!ResponseType::code().is_implicit());
        for bad in [
            "",
            " code",
            "code ",
            "code  token",
            "code code",
            "none code",
            "Code",
            "x",
        ] {
            assert!(ResponseType::parse(bad).is_none(), "{bad:?}");
        }
        assert!(ResponseType::parse("none").is_some());
    }

    #[test]
    fn wire_names_round_trip() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::parse(grant.as_str()), Some(*grant));
        }
        for method in AuthMethod::ALL {
            assert_eq!(AuthMethod::parse(method.as_str()), Some(*method));
        }
        assert_eq!(SubjectType::parse("pairwise"), Some(SubjectType::Pairwise));
        assert_eq!(ApplicationType::parse("Native"), None);
        let err = serde_json::from_str::<GrantType>("\"magic\"").unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
    }
}
