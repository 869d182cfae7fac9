//! Encryption at rest: the [`Keyring`] that seals secrets before they are
//! written and opens them after they are read.
//!
//! A sealed value is `v1:<key id>:<base64 of nonce ‖ ciphertext>`, sealed with
//! XChaCha20-Poly1305 under a 32-byte key and a random 24-byte nonce per
//! value. The key id is the first 8 hex digits of the key's SHA-256 (domain
//! separated), so a value names the key that opens it and a rotation can tell
//! which values still need re-sealing. The keyring holds the current key
//! (used for every new value) and any older keys still needed to open values
//! not yet re-sealed.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// The prefix of every sealed value of this format.
const PREFIX: &str = "v1:";
/// XChaCha20's nonce length.
const NONCE_LEN: usize = 24;

/// Why a value could not be sealed or opened. Never carries the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The value was sealed under a key this keyring does not hold.
    #[error("the value is sealed under key {0}, which is not in the keyring")]
    UnknownKey(String),
    /// The value does not decrypt: it was altered, or the key is wrong.
    #[error("the value sealed under key {0} does not decrypt (altered or wrong key)")]
    Corrupt(String),
    /// The system's random source failed.
    #[error("no random nonce: {0}")]
    Random(String),
}

/// A key's id: 8 hex digits derived from the key.
pub fn key_id(key: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tako key id\0");
    hasher.update(key);
    let digest = hasher.finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The key id a sealed value names, when `value` has the sealed format.
pub fn sealed_key_id(value: &str) -> Option<&str> {
    let rest = value.strip_prefix(PREFIX)?;
    let (id, body) = rest.split_once(':')?;
    let well_formed = id.len() == 8
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
    well_formed.then_some(id)
}

struct Keys {
    current: String,
    keys: HashMap<String, XChaCha20Poly1305>,
}

/// The keys that seal and open secrets. Shared (`Arc<Keyring>`) by the store
/// and whoever seals values the store keeps opaque (a release's frozen
/// variables).
pub struct Keyring {
    inner: RwLock<Keys>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_id())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring whose current key is `key`.
    pub fn new(key: &[u8; 32]) -> Keyring {
        let id = key_id(key);
        let mut keys = HashMap::new();
        keys.insert(id.clone(), XChaCha20Poly1305::new(Key::from_slice(key)));
        Keyring {
            inner: RwLock::new(Keys { current: id, keys }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a key that opens older values (or will become current); returns
    /// its id.
    pub fn add(&self, key: &[u8; 32]) -> String {
        let id = key_id(key);
        self.write()
            .keys
            .insert(id.clone(), XChaCha20Poly1305::new(Key::from_slice(key)));
        id
    }

    /// The id of the key new values are sealed under.
    pub fn current_id(&self) -> String {
        self.read().current.clone()
    }

    /// Every key id held, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.read().keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Makes the key `id` current; `false` (and no change) when it is not
    /// held.
    pub fn set_current(&self, id: &str) -> bool {
        let mut keys = self.write();
        if keys.keys.contains_key(id) {
            keys.current = id.to_owned();
            true
        } else {
            false
        }
    }

    /// Forgets the key `id` (never the current one); `true` when it was held.
    pub fn retire(&self, id: &str) -> bool {
        let mut keys = self.write();
        if keys.current == id {
            return false;
        }
        keys.keys.remove(id).is_some()
    }

    /// Seals `plaintext` under the current key.
    pub fn seal(&self, plaintext: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let keys = self.read();
        let id = keys.current.clone();
        let cipher = keys
            .keys
            .get(&id)
            .ok_or_else(|| SealError::UnknownKey(id.clone()))?;
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|_| SealError::Corrupt(id.clone()))?;
        let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ciphertext);
        Ok(format!("{PREFIX}{id}:{}", STANDARD.encode(body)))
    }

    /// Opens a value: a sealed one is decrypted, anything else (a value
    /// stored before encryption at rest) is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(id) = sealed_key_id(stored) else {
            return Ok(stored.to_owned());
        };
        let body = &stored[PREFIX.len() + id.len() + 1..];
        let bytes = STANDARD
            .decode(body)
            .map_err(|_| SealError::Corrupt(id.to_owned()))?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Corrupt(id.to_owned()));
        }
        let keys = self.read();
        let cipher = keys
            .keys
            .get(id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SealError::Corrupt(id.to_owned()))?;
        String::from_utf8(plain).map_err(|_| SealError::Corrupt(id.to_owned()))
    }

    /// Whether `stored` is sealed under the current key already.
    pub fn is_current(&self, stored: &str) -> bool {
        sealed_key_id(stored).is_some_and(|id| id == self.read().current)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn seals_and_opens_with_a_fresh_nonce_each_time() {
        let keyring = Keyring::new(&[7; 32]);
        let secret = "line one\n\"quoted\" {json}: \\ end";
        let a = keyring.seal(secret).unwrap();
        let b = keyring.seal(secret).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("v1:{}:", key_id(&[7; 32]))));
        assert!(!a.contains("quoted"));
        assert_eq!(keyring.open(&a).unwrap(), secret);
        assert!(keyring.is_current(&a));
    }

    #[test]
    fn plaintext_passes_through_and_tampering_is_detected() {
        let keyring = Keyring::new(&[1; 32]);
        assert_eq!(keyring.open("plain").unwrap(), "plain");
        let sealed = keyring.seal("secret value").unwrap();
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            keyring.open(&tampered),
            Err(SealError::Corrupt(_))
        ));
        let other = Keyring::new(&[2; 32]);
        assert!(matches!(other.open(&sealed), Err(SealError::UnknownKey(_))));
    }

    #[test]
    fn rotation_keeps_old_values_open_until_retired() {
        let keyring = Keyring::new(&[1; 32]);
        let old = keyring.seal("s3cret").unwrap();
        let new_id = keyring.add(&[2; 32]);
        assert!(keyring.set_current(&new_id));
        assert!(!keyring.is_current(&old));
        assert_eq!(keyring.open(&old).unwrap(), "s3cret");
        let resealed = keyring.seal("s3cret").unwrap();
        assert!(keyring.is_current(&resealed));
        assert!(keyring.retire(&key_id(&[1; 32])));
        assert!(!keyring.retire(&new_id));
        assert!(keyring.open(&old).is_err());
        assert_eq!(keyring.key_ids(), vec![new_id]);
    }
}
