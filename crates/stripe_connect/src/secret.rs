//! The API key, and the scrubbing that keeps it out of every string we produce.

use std::fmt;

use zeroize::Zeroizing;

use crate::ConfigError;

/// Prefixes of the keys that may authenticate server-side API calls.
/// Publishable keys (`pk_`) are refused: they cannot create transfers.
const PREFIXES: [&str; 4] = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"];

/// Shortest secret part (after the prefix) we accept. Real Stripe keys are far
/// longer (24 to ~100 characters).
pub const MIN_SECRET_LEN: usize = 8;
/// Longest whole key we accept.
pub const MAX_KEY_LEN: usize = 255;

/// Why a key file could not be used. No variant holds any of the file's content.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the key file {path}: {error}")]
    Io { path: String, error: String },
    #[error("the key file {0} is not a regular file")]
    NotAFile(String),
    #[error("the key file {path} has permissions {mode:04o}: it must not be readable by others (at most {allowed:04o}; chmod 600 it)")]
    Permissions { path: String, mode: u32, allowed: u32 },
    #[error("the key file {0} is larger than 10 kB: it should hold the key alone")]
    TooLarge(String),
    #[error("the key file {path} does not hold a usable key: {error}")]
    Key { path: String, error: ConfigError },
}

/// A Stripe secret or restricted API key.
///
/// * `Debug` prints only the masked form (`sk_test_****abcd`); there is no
///   `Display`, no `Serialize`, and no public accessor for the raw key.
/// * The heap copy is wiped when the value is dropped (best effort: the HTTP
///   stack makes its own short-lived copies of the header).
/// * Construction validates the prefix and the charset, and the error never
///   contains the key or any of its characters.
#[derive(Clone)]
pub struct Secret {
    key: Zeroizing<String>,
    prefix_len: usize,
}

impl Secret {
    /// Validate and wrap a key. The argument is wiped on success and on failure.
    pub fn new(key: impl Into<String>) -> Result<Secret, ConfigError> {
        let key = Zeroizing::new(key.into());
        let prefix_len = match PREFIXES.iter().find(|p| key.starts_with(*p)) {
            Some(p) => p.len(),
            None => return Err(ConfigError::InvalidSecretKey("the key must start with sk_test_, sk_live_, rk_test_ or rk_live_")),
        };
        if key.len() > MAX_KEY_LEN {
            return Err(ConfigError::InvalidSecretKey("the key is longer than 255 characters"));
        }
        let rest = &key[prefix_len..];
        if rest.len() < MIN_SECRET_LEN {
            return Err(ConfigError::InvalidSecretKey("the key is too short"));
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::InvalidSecretKey(
                "the key may only contain ASCII letters and digits after its prefix",
            ));
        }
        Ok(Secret { key, prefix_len })
    }

    /// Reads a key from a file that holds it alone (surrounding whitespace is ignored), as
    /// Postgres reads `ssl_key_file`: a regular file, no more than 10 kB, readable by its owner
    /// only (0600) — or, when owned by root, by root's group too (0640). Errors name the file
    /// and the problem, never any of its content.
    pub fn from_file(path: &std::path::Path) -> Result<Secret, KeyFileError> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let shown = path.display().to_string();
        let io = |e: std::io::Error| KeyFileError::Io { path: shown.clone(), error: e.kind().to_string() };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(KeyFileError::NotAFile(shown));
        }
        let mode = meta.mode() & 0o777;
        let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
        if mode & !allowed != 0 {
            return Err(KeyFileError::Permissions { path: shown, mode, allowed });
        }
        if meta.len() > 10_240 {
            return Err(KeyFileError::TooLarge(shown));
        }
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(io)?;
        Secret::new(text.trim().to_string()).map_err(|e| KeyFileError::Key { path: shown, error: e })
    }

    /// `sk_test_****abcd`: the prefix, four stars, and the last four characters
    /// when the secret part is long enough (16+) that four reveal little.
    pub fn masked(&self) -> String {
        let prefix = &self.key[..self.prefix_len];
        let rest = &self.key[self.prefix_len..];
        if rest.len() >= 16 {
            format!("{prefix}****{}", &rest[rest.len() - 4..])
        } else {
            format!("{prefix}****")
        }
    }

    /// `true` for `sk_live_` / `rk_live_` keys.
    pub fn is_live(&self) -> bool {
        self.key[..self.prefix_len].ends_with("_live_")
    }

    pub(crate) fn expose(&self) -> &str {
        &self.key
    }

    /// Replace every occurrence of the key (and of its secret part alone) in
    /// `text` with the masked form.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let masked = self.masked();
        let mut out = text.replace(self.key.as_str(), &masked);
        let rest = &self.key[self.prefix_len..];
        // rest is at least MIN_SECRET_LEN long, so this cannot match ordinary
        // words; it catches a server echoing the key without its prefix.
        if out.contains(rest) {
            out = out.replace(rest, "****");
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

/// Make a server-provided (or error-provided) string safe for a log line:
/// scrub the key, replace control characters, and cut it to `max` chars.
pub(crate) fn sanitize(secret: &Secret, text: &str, max: usize) -> String {
    // scrub first: truncating first could cut the key so that it no longer matches
    let scrubbed = secret.scrub(text);
    let mut out = String::with_capacity(scrubbed.len().min(max + 3));
    for (n, c) in scrubbed.chars().enumerate() {
        if n >= max {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dcABCD";

    fn key_file(name: &str, content: &str, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("stripe-connect-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_key_file_readable_by_its_owner_only_is_read_and_trimmed() {
        let path = key_file("ok", &format!("  {KEY}\n"), 0o600);
        let s = Secret::from_file(&path).unwrap();
        assert_eq!(s.expose(), KEY);
    }

    #[test]
    fn key_files_others_can_read_or_that_hold_no_key_are_refused_without_their_content() {
        use std::os::unix::fs::MetadataExt;
        let root = std::fs::metadata(std::env::temp_dir()).map(|m| m.uid() == 0).unwrap_or(false)
            && unsafe { libc::geteuid() } == 0;
        let world = key_file("world", KEY, 0o644);
        let e = Secret::from_file(&world).unwrap_err();
        assert!(matches!(e, KeyFileError::Permissions { mode: 0o644, .. }), "{e}");
        assert!(e.to_string().contains("0644") && !e.to_string().contains("4eC39"), "{e}");
        // group-readable: allowed only for files root owns
        let group = key_file("group", KEY, 0o640);
        assert_eq!(Secret::from_file(&group).is_ok(), root);
        let bad = key_file("bad", "pk_test_notASecretKey123456", 0o600);
        let e = Secret::from_file(&bad).unwrap_err();
        assert!(matches!(e, KeyFileError::Key { .. }) && !e.to_string().contains("notASecret"), "{e}");
        let e = Secret::from_file(std::path::Path::new("/nonexistent/stripe.key")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/stripe.key"), "{e}");
        let e = Secret::from_file(&std::env::temp_dir()).unwrap_err();
        assert!(matches!(e, KeyFileError::NotAFile(_)), "{e}");
    }

    #[test]
    fn accepts_the_four_prefixes() {
        for p in PREFIXES {
            let k = format!("{p}abcdefgh12345678");
            assert!(Secret::new(k).is_ok(), "{p}");
        }
    }

    #[test]
    fn rejects_bad_keys_without_echoing_them() {
        let bad = [
            "pk_test_abcdefgh12345678",
            "sk_prod_abcdefgh12345678",
            "abcdefgh12345678",
            "",
            "sk_test_",
            "sk_test_short",
            "sk_test_abcdefgh 12345678",
            "sk_test_abcdefgh\n12345678",
            "sk_test_abcdefgh-12345678",
            "sk_test_abcdéfgh12345678",
        ];
        for k in bad {
            let err = Secret::new(k).expect_err(k);
            let shown = format!("{err} {err:?}");
            if !k.is_empty() {
                assert!(!shown.contains(k), "{shown}");
            }
            assert!(!shown.contains("abcdefgh"), "{shown}");
        }
        let long = format!("sk_test_{}", "a".repeat(300));
        assert!(Secret::new(long).is_err());
    }

    #[test]
    fn masked_and_debug() {
        let s = Secret::new(KEY).unwrap();
        assert_eq!(s.masked(), "sk_test_****ABCD");
        assert_eq!(format!("{s:?}"), "Secret(sk_test_****ABCD)");
        assert!(!format!("{s:?}").contains("4eC39"));
        let short = Secret::new("rk_live_abcdefgh").unwrap();
        assert_eq!(short.masked(), "rk_live_****");
        assert!(short.is_live());
        assert!(!s.is_live());
    }

    #[test]
    fn scrub_removes_full_key_and_bare_secret() {
        let s = Secret::new(KEY).unwrap();
        let text = format!("Invalid API Key provided: {KEY}; also Bearer {KEY} and {}", &KEY[8..]);
        let out = s.scrub(&text);
        assert!(!out.contains(&KEY[8..]), "{out}");
        assert!(out.contains("sk_test_****ABCD"));
    }

    #[test]
    fn sanitize_scrubs_before_truncating_and_strips_controls() {
        let s = Secret::new(KEY).unwrap();
        let text = format!("x{}y\r\nz{KEY}", "a".repeat(10));
        let out = sanitize(&s, &text, 30);
        assert!(!out.contains('\n') && !out.contains('\r'));
        assert!(!out.contains(&KEY[8..20]), "{out}");
        let cut = sanitize(&s, &"é".repeat(100), 10);
        assert_eq!(cut.chars().count(), 13);
    }
}
