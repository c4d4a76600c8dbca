//! Language-tagged members (RFC 7591 §2.2, OIDC DCR §2.1): `client_name#ja-Jpan-JP`.
//!
//! Member names are kept byte-exact and echoed as received. Tags are matched without regard to
//! case, so two names differing only in the tag's case are refused as ambiguous.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::{invalid_metadata, quoted, MetadataError, LOCALIZABLE};

/// The localizable members of `map` (plain and tagged), by exact member name.
pub fn localized_members(
    map: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, MetadataError> {
    let mut out = BTreeMap::new();
    let mut seen = HashSet::new();
    for (name, value) in map {
        let (base, tag) = match name.split_once('#') {
            Some((base, tag)) => (base, Some(tag)),
            None => (name.as_str(), None),
        };
        if !LOCALIZABLE.contains(&base) || value.is_null() {
            continue;
        }
        let Value::String(text) = value else {
            return Err(invalid_metadata(format!(
                "{} must be a string",
                quoted(name)
            )));
        };
        if let Some(tag) = tag {
            if !is_well_formed_tag(tag) {
                return Err(invalid_metadata(format!(
                    "{} does not carry a well-formed BCP 47 language tag",
                    quoted(name)
                )));
            }
            if !seen.insert((base, tag.to_ascii_lowercase())) {
                return Err(invalid_metadata(format!(
                    "{} repeats a language tag that differs only in case",
                    quoted(name)
                )));
            }
        }
        out.insert(name.clone(), text.clone());
    }
    Ok(out)
}

/// BCP 47 (RFC 5646 §2.1) syntax, without registry lookups: a primary language subtag of 2–8
/// letters (or `x`/`i` for private use and grandfathered tags), then subtags of 1–8 letters or
/// digits separated by hyphens. Enough to refuse garbage while accepting every registered tag.
pub fn is_well_formed_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    let Some(primary) = subtags.next() else {
        return false;
    };
    let primary_ok = primary.bytes().all(|b| b.is_ascii_alphabetic())
        && (matches!(primary.len(), 2..=8)
            || primary.eq_ignore_ascii_case("x")
            || primary.eq_ignore_ascii_case("i"));
    primary_ok
        && subtags.all(|s| matches!(s.len(), 1..=8) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags() {
        for ok in [
            "ja-Jpan-JP",
            "fr",
            "en-US",
            "zh-Hant-TW",
            "x-klingon",
            "de-CH-1901",
            "sgn-BE-FR",
        ] {
            assert!(is_well_formed_tag(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "e",
            "ja_JP",
            "ja--JP",
            "toolongprimary",
            "en-",
            "é",
            "en US",
        ] {
            assert!(!is_well_formed_tag(bad), "{bad}");
        }
    }

    #[test]
    fn names_are_kept_exactly_and_case_duplicates_refused() {
        let map = json!({"client_name#ja-Jpan-JP": "a", "client_name": "b", "other#fr": 1});
        let out = localized_members(map.as_object().unwrap()).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.contains_key("client_name#ja-Jpan-JP"));
        let dup = json!({"client_name#en-US": "a", "client_name#en-us": "b"});
        assert!(localized_members(dup.as_object().unwrap()).is_err());
        let bad = json!({"tos_uri#": "https://x.example/tos"});
        assert!(localized_members(bad.as_object().unwrap()).is_err());
    }
}
