//! Secrets in memory: a value that is never shown by `Debug` or `Display`, compared in constant
//! time, and written out only where the protocol hands it over (a JSON response member).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string: a client_secret, a registration access token, an API token, a URL with a
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must hand it over.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret, in time that does not depend on where they differ
    /// (lengths are not secret).
    pub fn matches(&self, presented: &str) -> bool {
        crate::jose::constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Response members such as `client_secret` are the secret's one way out.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Configuration values (API tokens, a Redis URL with a password).
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed_but_compared() {
        let secret = Secret::new("hunter2-hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(secret.matches("hunter2-hunter2"));
        assert!(!secret.matches("hunter2-hunter3"));
        assert!(!secret.matches("hunter2"));
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            "\"hunter2-hunter2\""
        );
    }
}
