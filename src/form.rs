//! `application/x-www-form-urlencoded` bodies (RFC 6749 Appendix B), parsed
//! strictly: valid UTF-8 after decoding, no control characters, no parameter
//! twice, and parameters sent without a value treated as omitted (RFC 6749
//! §3.1, §3.2).
//!
//! Control characters (U+0000 to U+001F and U+007F) appear in no legitimate
//! OAuth parameter, and PostgreSQL refuses a NUL in text: one such value reaching
//! a shared write (the audit's group commit) could fail other requests. So they
//! are refused here, at the edge, for every parameter (STANDARDS rule 10).

use std::collections::HashMap;

use percent_encoding::percent_decode;

#[derive(Debug, Default)]
pub struct Form {
    params: HashMap<String, String>,
    /// Names that appeared more than once (kept apart so the caller decides:
    /// `resource` repeats are `invalid_target`, everything else `invalid_request`).
    repeated: Vec<String>,
}

/// True for the characters no parameter may hold: C0 controls and DEL.
pub fn is_control(c: char) -> bool {
    c <= '\u{1f}' || c == '\u{7f}'
}

/// True if `s` holds a control character (see [`is_control`]).
pub fn has_control(s: &str) -> bool {
    s.chars().any(is_control)
}

/// The refusal for a parameter holding a control character; the name is given
/// only when it is itself clean (it is echoed in the error description).
pub fn control_refusal(name: &str) -> String {
    if has_control(name) || name.len() > 64 {
        "a parameter name holds a control character, which no parameter may".to_owned()
    } else {
        format!("the parameter {name} holds a control character, which no parameter may")
    }
}

fn decode(s: &str) -> Result<String, String> {
    let plus = s.replace('+', " ");
    percent_decode(plus.as_bytes())
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "a parameter is not valid UTF-8 once decoded".to_owned())
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, String> {
        let body = std::str::from_utf8(body).map_err(|_| "the body is not valid UTF-8".to_owned())?;
        let mut form = Form::default();
        for pair in body.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            if has_control(&k) || has_control(&v) {
                return Err(control_refusal(&k));
            }
            if v.is_empty() {
                continue;
            }
            if form.params.contains_key(&k) {
                if !form.repeated.contains(&k) {
                    form.repeated.push(k);
                }
                continue;
            }
            form.params.insert(k, v);
        }
        Ok(form)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A parameter that appeared more than once, if any (RFC 6749 §3.1: none may repeat).
    pub fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }

    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decodes_plus_and_percent_and_drops_empty_values() {
        let f = Form::parse(b"a=x+y%21&b=&c").expect("valid");
        assert_eq!(f.get("a"), Some("x y!"));
        assert_eq!(f.get("b"), None);
        assert_eq!(f.get("c"), None);
        assert!(f.first_repeated().is_none());
    }

    #[test]
    fn form_reports_repeated_parameters() {
        let f = Form::parse(b"scope=a&scope=b").expect("valid");
        assert_eq!(f.first_repeated(), Some("scope"));
        assert_eq!(f.get("scope"), Some("a"));
    }

    #[test]
    fn form_refuses_control_characters_in_names_and_values() {
        for body in [
            &b"state=a%00b"[..],
            b"state=a%1fb",
            b"state=a%7fb",
            b"state=a%0Ab",
            b"state=a%09b",
            b"a%00=x",
            b"state=a\x01b",
        ] {
            let err = Form::parse(body).expect_err("control character refused");
            assert!(err.contains("control character"), "{err}");
        }
        assert!(Form::parse(b"state=%C3%A9t%C3%A9+%7E").is_ok());
    }

    #[test]
    fn form_refuses_invalid_utf8() {
        assert!(Form::parse(b"a=%ff").is_err());
        assert!(Form::parse(&[b'a', b'=', 0xff]).is_err());
    }
}
