//! `application/x-www-form-urlencoded` bodies (RFC 6749 Appendix B), parsed
//! strictly: valid UTF-8 after decoding, no parameter twice, and parameters
//! sent without a value treated as omitted (RFC 6749 §3.1, §3.2).

use std::collections::HashMap;

use percent_encoding::percent_decode;

#[derive(Debug, Default)]
pub struct Form {
    params: HashMap<String, String>,
    /// Names that appeared more than once (kept apart so the caller decides:
    /// `resource` repeats are `invalid_target`, everything else `invalid_request`).
    repeated: Vec<String>,
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
    fn form_refuses_invalid_utf8() {
        assert!(Form::parse(b"a=%ff").is_err());
        assert!(Form::parse(&[b'a', b'=', 0xff]).is_err());
    }
}
