//! Secrets at rest (envelope encryption): private signing keys and the
//! session-cookie key are stored sealed with AES-256-GCM under a
//! key-encryption key (KEK) that never enters the database, so a dump of the
//! database alone reveals no key.
//!
//! Stored form: `enc:v1:<kek id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, with
//! the row's identity as associated data (a sealed value moved to another row
//! does not open). The KEK id is the first 8 bytes of SHA-256 of the KEK, so a
//! deployment can rotate KEKs: the current one seals, earlier ones still open
//! until `deputy keys rewrap` has re-sealed everything. A value without the
//! prefix is a legacy plaintext row; it opens, and is re-sealed at start.

use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Settings;

const PREFIX: &str = "enc:v1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed with key-encryption key {0}, which is not configured")]
    UnknownKek(String),
    #[error("cannot be opened with the configured key-encryption key (wrong key, or altered)")]
    Undecryptable,
    #[error("is malformed")]
    Malformed,
}

struct Kek {
    id: String,
    cipher: Aes256Gcm,
}

impl Kek {
    fn new(key: &[u8; 32]) -> Kek {
        let digest = Sha256::digest(key);
        Kek {
            id: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
            cipher: Aes256Gcm::new(key.into()),
        }
    }
}

/// The configured KEKs: the current one seals; every one opens.
pub struct KeyEncryption {
    current: Kek,
    previous: Vec<Kek>,
}

/// An opened value, and whether it should be re-sealed with the current KEK.
pub struct Opened {
    pub value: String,
    pub needs_rewrap: bool,
}

fn decode_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let t = text.trim();
    let bytes = B64
        .decode(t.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(t))
        .map_err(|_| anyhow::anyhow!("a key-encryption key must be base64 of 32 random bytes"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("a key-encryption key must be base64 of exactly 32 bytes"))
}

/// A new random KEK, base64url-encoded.
pub fn generate_kek() -> String {
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    B64.encode(k)
}

impl KeyEncryption {
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> KeyEncryption {
        KeyEncryption {
            current: Kek::new(current),
            previous: previous.iter().map(Kek::new).collect(),
        }
    }

    /// From the settings: `key_encryption_key` (and `previous_key_encryption_keys`),
    /// or, for the embedded default (SQLite) only, a key file beside the database
    /// (`<database>.kek`, created with mode 0600 on first start).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<KeyEncryption> {
        let previous = settings
            .previous_key_encryption_keys
            .iter()
            .map(|k| decode_key(k))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let current = match &settings.key_encryption_key {
            Some(k) => decode_key(k)?,
            None if settings.database_url.starts_with("postgres://")
                || settings.database_url.starts_with("postgresql://") =>
            {
                anyhow::bail!(
                    "key_encryption_key is required with PostgreSQL (DEPUTY_KEY_ENCRYPTION_KEY: base64 of 32 random bytes, e.g. openssl rand -base64 32); it seals the signing keys stored in the database"
                )
            }
            None => key_file(Path::new(&format!("{}.kek", settings.database_url)))?,
        };
        Ok(KeyEncryption::new(&current, &previous))
    }

    /// The id of the KEK that seals.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` for the row named `context` (e.g. `signing_key:es256-…`).
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        // AES-GCM encryption of an in-memory buffer fails only past 64 GiB.
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.current.id, B64.encode(out))
    }

    /// Opens a stored value of the row `context`.
    pub fn open(&self, context: &str, stored: &str) -> Result<Opened, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(Opened {
                value: stored.to_owned(),
                needs_rewrap: true,
            });
        };
        let (id, data) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let kek = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKek(id.to_owned()))?;
        let bytes = B64.decode(data).map_err(|_| SealError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = kek
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Undecryptable)?;
        Ok(Opened {
            value: String::from_utf8(plain).map_err(|_| SealError::Malformed)?,
            needs_rewrap: kek.id != self.current.id,
        })
    }
}

/// Reads the KEK file, or creates it (mode 0600) with a fresh key.
fn key_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_kek();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(key.as_bytes())?;
                    f.sync_all()?;
                    tracing::info!(path = %path.display(), "created the key-encryption key file (keep it apart from database backups)");
                    decode_key(&key)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => key_file(path),
                Err(e) => Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
            }
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_their_row() {
        let (a, b) = ([7u8; 32], [9u8; 32]);
        let enc = KeyEncryption::new(&a, &[]);
        let sealed = enc.seal("signing_key:k1", "{\"d\":\"secret\"}");
        assert!(sealed.starts_with("enc:v1:") && !sealed.contains("secret"));
        let opened = enc.open("signing_key:k1", &sealed).expect("opens");
        assert_eq!(
            (opened.value.as_str(), opened.needs_rewrap),
            ("{\"d\":\"secret\"}", false)
        );
        assert!(matches!(
            enc.open("signing_key:k2", &sealed),
            Err(SealError::Undecryptable)
        ));
        let other = KeyEncryption::new(&b, &[]);
        assert!(matches!(
            other.open("signing_key:k1", &sealed),
            Err(SealError::UnknownKek(_))
        ));
        // After a KEK rotation the old one still opens, and asks for a rewrap.
        let rotated = KeyEncryption::new(&b, &[a]);
        let opened = rotated
            .open("signing_key:k1", &sealed)
            .expect("opens with the previous KEK");
        assert!(opened.needs_rewrap);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(enc.open("signing_key:k1", &tampered).is_err());
        assert!(matches!(enc.open("x", "enc:v1:nocolon"), Err(SealError::Malformed)));
        // A legacy plaintext row opens and asks to be sealed.
        assert!(enc.open("x", "{\"d\":1}").expect("legacy").needs_rewrap);
    }

    #[test]
    fn keys_are_base64_of_32_bytes() {
        assert!(decode_key(&generate_kek()).is_ok());
        assert!(decode_key("c2hvcnQ").is_err());
        assert!(decode_key("not base64!").is_err());
    }
}
