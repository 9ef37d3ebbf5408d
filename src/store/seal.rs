//! Sealing a session for the store: XChaCha20-Poly1305 with a random
//! 192-bit nonce per record (safe to draw at random across a fleet), bound
//! by its associated data to the store name, the base URL and the account.
//!
//! A record is `[1][nonce: 24][ciphertext]`; what is sealed is
//! `[expires at, Unix ms: 8][lifetime, ms: 8][header value]`, both
//! big-endian (0: no known expiry).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use http::HeaderValue;
use zeroize::Zeroizing;

use super::SharedStore;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// 32 bytes from the operating system's generator (`None` if it has none),
/// wiped when dropped.
pub(crate) fn random_32() -> Option<Zeroizing<[u8; 32]>> {
    let key = chacha20poly1305::Key::try_generate().ok()?;
    Some(Zeroizing::new(key.into()))
}

/// A session as read back from the store.
pub(crate) struct Opened {
    pub(crate) value: HeaderValue,
    /// Time left before it expires, if it has a known expiry.
    pub(crate) expires_in: Option<Duration>,
    /// Its whole lifetime as granted, if it has a known expiry.
    pub(crate) lifetime: Option<Duration>,
}

pub(crate) struct Sealer {
    current: XChaCha20Poly1305,
    previous: Option<XChaCha20Poly1305>,
    /// Holds the account's name: wiped on drop, never stored.
    aad: Zeroizing<Vec<u8>>,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Sealer {
    pub(crate) fn new(shared: &SharedStore, base_url: &str, account: &str) -> Self {
        let cipher = |key: &super::SealingKey| XChaCha20Poly1305::new(key.bytes().into());
        let mut aad = Zeroizing::new(Vec::new());
        for part in ["infobip-auth session v1", &shared.name, base_url, account] {
            aad.extend_from_slice(part.as_bytes());
            aad.push(0);
        }
        Self {
            current: cipher(&shared.key),
            previous: shared.previous_key.as_ref().map(cipher),
            aad,
        }
    }

    /// The record for `value`, or `None` if no nonce could be drawn.
    pub(crate) fn seal(
        &self,
        value: &HeaderValue,
        expires_in: Option<Duration>,
    ) -> Option<Vec<u8>> {
        let expires_at = expires_in.map_or(0, |e| unix_ms(SystemTime::now() + e).max(1));
        let lifetime = expires_in.map_or(0, |e| u64::try_from(e.as_millis()).unwrap_or(u64::MAX));
        let mut plain = Zeroizing::new(Vec::with_capacity(16 + value.len()));
        plain.extend_from_slice(&expires_at.to_be_bytes());
        plain.extend_from_slice(&lifetime.to_be_bytes());
        plain.extend_from_slice(value.as_bytes());
        let nonce = XNonce::try_generate().ok()?;
        let payload = Payload {
            msg: &plain,
            aad: &self.aad,
        };
        let sealed = self.current.encrypt(&nonce, payload).ok()?;
        let mut record = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        record.push(VERSION);
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&sealed);
        Some(record)
    }

    /// The session in `record`; `None` if it does not open with either key,
    /// is not a header value, or has expired.
    pub(crate) fn open(&self, record: &[u8]) -> Option<Opened> {
        let (&version, rest) = record.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        let payload = || Payload {
            msg: sealed,
            aad: &self.aad,
        };
        let plain = Zeroizing::new(
            self.current
                .decrypt(&nonce, payload())
                .or_else(|e| match &self.previous {
                    Some(previous) => previous.decrypt(&nonce, payload()),
                    None => Err(e),
                })
                .ok()?,
        );
        let (expires_at, rest) = plain.split_at_checked(8)?;
        let (lifetime, value) = rest.split_at_checked(8)?;
        let expires_at = u64::from_be_bytes(expires_at.try_into().ok()?);
        let lifetime = u64::from_be_bytes(lifetime.try_into().ok()?);
        let expires_in = match expires_at {
            0 => None,
            at => Some(Duration::from_millis(
                at.checked_sub(unix_ms(SystemTime::now()))
                    .filter(|left| *left > 0)?,
            )),
        };
        let value = header_value(value)?;
        let lifetime = expires_in.map(|_| Duration::from_millis(lifetime));
        Some(Opened {
            value,
            expires_in,
            lifetime,
        })
    }
}

/// A sensitive header value whose bytes are wiped when its last clone goes.
fn header_value(bytes: &[u8]) -> Option<HeaderValue> {
    let space = bytes.iter().position(|b| *b == b' ')?;
    let scheme = std::str::from_utf8(&bytes[..space]).ok()?;
    crate::secret::sensitive_header(scheme, &bytes[space + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SealingKey, SessionStore, StoreFuture, StoredSession};

    struct Nowhere;

    impl SessionStore for Nowhere {
        fn load<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<StoredSession>> {
            Box::pin(async { Ok(None) })
        }
        fn save<'a>(
            &'a self,
            _: &'a str,
            _: &'a [u8],
            _: Option<Duration>,
        ) -> StoreFuture<'a, u64> {
            Box::pin(async { Ok(1) })
        }
        fn remove<'a>(&'a self, _: &'a str, _: u64) -> StoreFuture<'a, bool> {
            Box::pin(async { Ok(false) })
        }
        fn try_lease<'a>(&'a self, _: &'a str, _: &'a str, _: Duration) -> StoreFuture<'a, bool> {
            Box::pin(async { Ok(true) })
        }
        fn release<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    fn sealer(name: &str, key: u8, account: &str) -> Sealer {
        let shared = SharedStore::new(Nowhere, name, SealingKey::new([key; 32]));
        Sealer::new(&shared, "https://api.infobip.com", account)
    }

    fn token() -> HeaderValue {
        HeaderValue::from_static("IBSSO d3c49f59-734a-4daf-be9a-6188b540358e")
    }

    #[test]
    fn a_sealed_session_opens_to_the_same_sensitive_header() {
        let sealer = sealer("prod", 7, "alice");
        let record = sealer
            .seal(&token(), Some(Duration::from_secs(60)))
            .unwrap();
        let opened = sealer.open(&record).unwrap();
        assert_eq!(opened.value, token());
        assert!(opened.value.is_sensitive());
        let left = opened.expires_in.unwrap();
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60));
        assert_eq!(opened.lifetime, Some(Duration::from_secs(60)));
        assert!(sealer
            .open(&sealer.seal(&token(), None).unwrap())
            .unwrap()
            .expires_in
            .is_none());
    }

    #[test]
    fn a_record_holds_neither_the_token_nor_the_account() {
        let record = sealer("prod", 7, "alice").seal(&token(), None).unwrap();
        let text = String::from_utf8_lossy(&record);
        assert!(!text.contains("d3c49f59"));
        assert!(!text.contains("alice"));
        assert!(!text.contains("IBSSO"));
    }

    #[test]
    fn a_record_opens_only_for_its_key_name_and_account() {
        let record = sealer("prod", 7, "alice").seal(&token(), None).unwrap();
        assert!(
            sealer("prod", 8, "alice").open(&record).is_none(),
            "other key"
        );
        assert!(
            sealer("test", 7, "alice").open(&record).is_none(),
            "other name"
        );
        assert!(
            sealer("prod", 7, "bob").open(&record).is_none(),
            "other account"
        );
        let mut tampered = record.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(
            sealer("prod", 7, "alice").open(&tampered).is_none(),
            "tampered"
        );
        assert!(
            sealer("prod", 7, "alice").open(&record[..10]).is_none(),
            "cut short"
        );
    }

    #[test]
    fn the_previous_key_still_opens_old_records() {
        let old = sealer("prod", 7, "alice").seal(&token(), None).unwrap();
        let shared = SharedStore::new(Nowhere, "prod", SealingKey::new([8; 32]))
            .previous_key(SealingKey::new([7; 32]));
        let rotated = Sealer::new(&shared, "https://api.infobip.com", "alice");
        assert_eq!(rotated.open(&old).unwrap().value, token());
        let new = rotated.seal(&token(), None).unwrap();
        assert!(
            sealer("prod", 7, "alice").open(&new).is_none(),
            "sealed with the new key"
        );
    }

    #[test]
    fn an_expired_record_does_not_open() {
        let sealer = sealer("prod", 7, "alice");
        let record = sealer.seal(&token(), Some(Duration::ZERO)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(sealer.open(&record).is_none());
    }
}
