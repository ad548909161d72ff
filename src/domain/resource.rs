//! RFC 8707 resource indicator: an absolute URI without a fragment. It decides
//! a token's `aud`, compared as the exact string the client registered.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceUri(String);

impl ResourceUri {
    pub fn parse(s: &str) -> Result<ResourceUri, String> {
        if s.len() > 2048 {
            return Err("resource is longer than 2048 characters".into());
        }
        // The url crate trims edge spaces and controls and drops tabs and newlines;
        // a URI holds none (RFC 3986 §2), and the string is compared as given.
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("resource must not contain spaces or control characters".into());
        }
        let url = url::Url::parse(s).map_err(|_| format!("resource '{s}' is not an absolute URI"))?;
        if url.fragment().is_some() || s.contains('#') {
            return Err("resource must not contain a fragment".into());
        }
        if url.cannot_be_a_base() && url.scheme() != "urn" {
            return Err(format!("resource '{s}' is not an absolute URI"));
        }
        Ok(ResourceUri(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceUri {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ResourceUri::parse(&s)
    }
}

impl From<ResourceUri> for String {
    fn from(r: ResourceUri) -> String {
        r.0
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_must_be_absolute_without_fragment() {
        assert!(ResourceUri::parse("https://api.example.com").is_ok());
        assert!(ResourceUri::parse("urn:example:calendar").is_ok());
        assert!(ResourceUri::parse("/relative").is_err());
        assert!(ResourceUri::parse("https://api.example.com/#x").is_err());
        assert!(ResourceUri::parse("not a uri").is_err());
    }

    #[test]
    fn resource_refuses_spaces_and_controls_the_url_crate_would_trim() {
        // Found by the fuzz target in tests/fuzz.rs: "urn: " was accepted.
        for bad in [
            "urn: ",
            " https://api.example.com",
            "https://api.example.com\t",
            "https://a\nb.example",
            "urn:a\u{85}",
        ] {
            assert!(ResourceUri::parse(bad).is_err(), "{bad:?}");
        }
    }
}
