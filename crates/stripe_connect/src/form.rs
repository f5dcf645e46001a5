//! `application/x-www-form-urlencoded` bodies and query strings, Stripe style
//! (`metadata[key]=value`).

use std::fmt::Write as _;

/// Percent-encode everything except the RFC 3986 unreserved set
/// (`A-Z a-z 0-9 - . _ ~`). A space becomes `%20`, which every form decoder
/// reads as a space, the same as `+`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            // writing into a String cannot fail
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An ordered list of form parameters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn new() -> Form {
        Form::default()
    }

    /// Add `name=value`. `name` is encoded as a whole.
    pub fn push(&mut self, name: &str, value: &str) -> &mut Self {
        self.pairs.push((encode_component(name), encode_component(value)));
        self
    }

    /// Add `parent[key]=value`, keeping the brackets literal.
    pub fn push_nested(&mut self, parent: &str, key: &str, value: &str) -> &mut Self {
        let name = format!("{}[{}]", encode_component(parent), encode_component(key));
        self.pairs.push((name, encode_component(value)));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `a=1&b=2`
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_pass_through_rest_encoded() {
        assert_eq!(encode_component("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(encode_component("a b&c=d+e/f?g#h%"), "a%20b%26c%3Dd%2Be%2Ff%3Fg%23h%25");
        assert_eq!(encode_component("é€"), "%C3%A9%E2%82%AC");
        assert_eq!(encode_component("[x]"), "%5Bx%5D");
        assert_eq!(encode_component("\r\n\0"), "%0D%0A%00");
        assert_eq!(encode_component(""), "");
    }

    #[test]
    fn nested_and_order() {
        let mut f = Form::new();
        f.push("amount", "1000")
            .push("currency", "usd")
            .push_nested("metadata", "event id", "ev&1")
            .push_nested("metadata", "b", "");
        assert_eq!(f.encode(), "amount=1000&currency=usd&metadata[event%20id]=ev%261&metadata[b]=");
        assert!(Form::new().encode().is_empty());
    }
}
