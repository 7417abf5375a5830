//! Secrets (channel credentials) encrypted outside the log. Events hold a [`SecretRef`]; the
//! plaintext exists only in memory, between [`SecretBox::get`] and its use.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per secret: authenticated, so a ciphertext
//! edited in the database fails to open instead of yielding a wrong credential.

use crate::error::Failure;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use domain::error::Invalid;
use domain::ids::SecretRef;
use sqlx::PgPool;
use std::fmt;
use uuid::Uuid;

/// The key and the table of secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no secret {0}")]
    NotFound(Uuid),
    #[error("secret {0} does not decrypt with the configured key (wrong key or edited data)")]
    Undecryptable(Uuid),
    #[error(transparent)]
    Store(#[from] Failure),
}

impl SecretError {
    pub fn kind(&self) -> crate::error::FailureKind {
        match self {
            Self::NotFound(_) => crate::error::FailureKind::NotFound,
            Self::Undecryptable(_) => crate::error::FailureKind::Internal,
            Self::Store(f) => f.kind(),
        }
    }
}

impl SecretBox {
    /// A box for the 32-byte key given as 64 hexadecimal characters (`SECRETS_KEY`).
    pub fn from_hex(key_hex: &str) -> Result<Self, Invalid> {
        let key = hex::decode(key_hex.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| {
                Invalid::new(
                    "secrets_key",
                    "must be 64 hexadecimal characters (32 bytes)",
                )
            })?;
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| Invalid::new("secrets_key", "must be 32 bytes"))?;
        Ok(Self { cipher })
    }

    /// Encrypts `plaintext` under a fresh nonce, for a table of its own; [`SecretBox::open`]
    /// reverses it.
    pub fn seal(&self, plaintext: &str) -> Result<Sealed, Failure> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .map_err(|_| Failure::Unexpected("encryption failed".into()))?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// The plaintext of a sealed value; None when it does not open with this key (wrong key
    /// or edited data).
    pub fn open(&self, sealed: &Sealed) -> Option<String> {
        if sealed.nonce.len() != 24 {
            return None;
        }
        let plaintext = self
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                sealed.ciphertext.as_slice(),
            )
            .ok()?;
        String::from_utf8(plaintext).ok()
    }

    /// Encrypts and stores `plaintext`; the reference goes into events.
    pub async fn put(&self, pool: &PgPool, plaintext: &str) -> Result<SecretRef, SecretError> {
        let sealed = self.seal(plaintext)?;
        let id = Uuid::new_v4();
        sqlx::query("INSERT INTO secrets (secret_id, nonce, ciphertext) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .execute(pool)
            .await
            .map_err(Failure::from_sqlx)?;
        Ok(SecretRef(id))
    }

    /// The plaintext of a stored secret.
    pub async fn get(&self, pool: &PgPool, secret: SecretRef) -> Result<String, SecretError> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT nonce, ciphertext FROM secrets WHERE secret_id = $1")
                .bind(secret.0)
                .fetch_optional(pool)
                .await
                .map_err(Failure::from_sqlx)?;
        let (nonce, ciphertext) = row.ok_or(SecretError::NotFound(secret.0))?;
        self.open(&Sealed { nonce, ciphertext })
            .ok_or(SecretError::Undecryptable(secret.0))
    }
}

/// An encrypted value and its nonce, as stored (`bytea` columns).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_32_bytes_of_hex() {
        assert!(SecretBox::from_hex(&"ab".repeat(32)).is_ok());
        assert_eq!(
            SecretBox::from_hex("abcd").unwrap_err().field,
            "secrets_key"
        );
        assert!(SecretBox::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_debug_form_shows_no_key() {
        let boxed = SecretBox::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{boxed:?}"), "SecretBox(..)");
    }
}
