//! Typed identifiers, so no function takes two bare string ids side by side.

use std::fmt;

/// RFC 6749 §2.2 client identifier: 1–255 visible ASCII characters (VSCHAR, Appendix A).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(s: &str) -> Result<ClientId, String> {
        if s.is_empty() || s.len() > 255 {
            return Err("client_id must be 1 to 255 characters".into());
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) || s.starts_with(' ') || s.ends_with(' ') {
            return Err("client_id must be visible ASCII".into());
        }
        Ok(ClientId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_refuses_empty_long_and_control_characters() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"a".repeat(256)).is_err());
        assert!(ClientId::parse("a\nb").is_err());
        assert!(ClientId::parse("é").is_err());
        assert_eq!(ClientId::parse("svc-1").map(|c| c.to_string()), Ok("svc-1".to_owned()));
    }
}
