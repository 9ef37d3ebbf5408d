//! Sealing a session for the store: XChaCha20-Poly1305 with a random
//! 192-bit nonce per record (safe to draw at random across a fleet), bound
//! by its associated data to the store name, the base URL, the account, and
//! the record's own header: a random record id, the id of the record it
//! replaces (one answered 401; zeros if none), and the time of sealing.
//!
//! A record is `[2][id: 16][replaces: 16][sealed at, Unix ms: 8][nonce: 24]
//! [ciphertext]`;
//! what is sealed is `[expires at, Unix ms: 8][lifetime, ms: 8][header
//! value]`, all big-endian (0: no known expiry).
//!
//! A record opens only if it is at most [`MAX_RECORD_BYTES`] long, was
//! sealed no later than [`MAX_CLOCK_SKEW`] from now, has not expired, and,
//! without an expiry, is younger than the source's idle timeout.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use http::HeaderValue;
use zeroize::Zeroizing;

use super::SharedStore;
use crate::source::session::{millis, MAX_LIFETIME};

const VERSION: u8 = 2;
const ID_LEN: usize = 16;
/// Version, record id, the id it replaces, time of sealing.
const HEADER_LEN: usize = 1 + 2 * ID_LEN + 8;
const NONCE_LEN: usize = 24;
/// The largest record opened: a header value is far smaller, and a store
/// that hands back more is not given the cipher's time.
pub(crate) const MAX_RECORD_BYTES: usize = 8 * 1024;
/// How far in the future a record's time of sealing may lie (another
/// replica's clock running ahead).
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// How long a record sealed with the previous key still opens, from when
/// the source was built: long enough for the records sealed before a
/// change of keys to expire or be replaced.
pub(crate) const PREVIOUS_KEY_VALIDITY: Duration = Duration::from_secs(60 * 60);

/// 32 bytes from the operating system's generator (`None` if it has none),
/// wiped when dropped.
pub(crate) fn random_32() -> Option<Zeroizing<[u8; 32]>> {
    let key = chacha20poly1305::Key::try_generate().ok()?;
    Some(Zeroizing::new(key.into()))
}

/// A record's id and time of sealing: what the engine remembers of a
/// record, to know it again whatever generation a store gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordId {
    pub(crate) id: [u8; ID_LEN],
    /// The record whose 401 this one's login followed (zeros: none).
    pub(crate) replaces: [u8; ID_LEN],
    /// Unix milliseconds.
    pub(crate) sealed_at: u64,
}

/// A session as read back from the store.
pub(crate) struct Opened {
    pub(crate) value: HeaderValue,
    pub(crate) record: RecordId,
    /// Time left before it expires, if it has a known expiry.
    pub(crate) expires_in: Option<Duration>,
    /// Its whole lifetime as granted, if it has a known expiry.
    pub(crate) lifetime: Option<Duration>,
}

pub(crate) struct Sealer {
    current: XChaCha20Poly1305,
    /// The previous key, and until when it opens records.
    previous: Option<(XChaCha20Poly1305, tokio::time::Instant)>,
    /// Holds the account's name: wiped on drop, never stored.
    aad: Zeroizing<Vec<u8>>,
    /// The oldest a record without an expiry may be.
    max_age: Duration,
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after).
pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, millis)
}

impl Sealer {
    /// Records that have no expiry open for `max_age` after sealing
    /// (clamped to a year).
    pub(crate) fn new(
        shared: &SharedStore,
        base_url: &str,
        account: &str,
        max_age: Duration,
    ) -> Self {
        let cipher = |key: &super::SealingKey| XChaCha20Poly1305::new(key.bytes().into());
        let mut aad = Zeroizing::new(Vec::new());
        for part in ["infobip-auth session v2", &shared.name, base_url, account] {
            aad.extend_from_slice(part.as_bytes());
            aad.push(0);
        }
        // Bounded: the validity is a constant hour.
        let previous_until = tokio::time::Instant::now() + PREVIOUS_KEY_VALIDITY;
        Self {
            current: cipher(&shared.key),
            previous: shared
                .previous_key
                .as_ref()
                .map(|key| (cipher(key), previous_until)),
            aad,
            max_age: max_age.min(MAX_LIFETIME),
        }
    }

    fn aad(&self, header: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut aad = Zeroizing::new(Vec::with_capacity(self.aad.len() + header.len()));
        aad.extend_from_slice(&self.aad);
        aad.extend_from_slice(header);
        aad
    }

    /// The record for `value` and its id, or `None` if no random bytes
    /// could be drawn. `expires_in` is clamped to a year; `replaces` names
    /// the record answered 401 that this one's login followed.
    pub(crate) fn seal(
        &self,
        value: &HeaderValue,
        expires_in: Option<Duration>,
        replaces: Option<[u8; ID_LEN]>,
    ) -> Option<(Vec<u8>, RecordId)> {
        let now = unix_ms(SystemTime::now());
        let expires_in = expires_in.map(|e| millis(e.min(MAX_LIFETIME)));
        let expires_at = expires_in.map_or(0, |e| now.saturating_add(e).max(1));
        let lifetime = expires_in.unwrap_or(0);
        let mut plain = Zeroizing::new(Vec::with_capacity(16 + value.len()));
        plain.extend_from_slice(&expires_at.to_be_bytes());
        plain.extend_from_slice(&lifetime.to_be_bytes());
        plain.extend_from_slice(value.as_bytes());
        let random = random_32()?;
        let mut id = [0; ID_LEN];
        id.copy_from_slice(&random[..ID_LEN]);
        let replaces = replaces.unwrap_or_default();
        let record_id = RecordId {
            id,
            replaces,
            sealed_at: now,
        };
        let mut record = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plain.len() + 16);
        record.push(VERSION);
        record.extend_from_slice(&id);
        record.extend_from_slice(&replaces);
        record.extend_from_slice(&now.to_be_bytes());
        let nonce = XNonce::try_generate().ok()?;
        let aad = self.aad(&record);
        let payload = Payload {
            msg: &plain,
            aad: &aad,
        };
        let sealed = self.current.encrypt(&nonce, payload).ok()?;
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&sealed);
        Some((record, record_id))
    }

    /// The session in `record`; `None` if it is too large, does not open
    /// with either key, is not a header value, has expired or is too old.
    pub(crate) fn open(&self, record: &[u8]) -> Option<Opened> {
        if record.len() > MAX_RECORD_BYTES || record.len() < HEADER_LEN + NONCE_LEN {
            return None;
        }
        let (header, rest) = record.split_at(HEADER_LEN);
        if header[0] != VERSION {
            return None;
        }
        let (mut id, mut replaces) = ([0; ID_LEN], [0; ID_LEN]);
        id.copy_from_slice(&header[1..=ID_LEN]);
        replaces.copy_from_slice(&header[1 + ID_LEN..=2 * ID_LEN]);
        let sealed_at = u64::from_be_bytes(header[1 + 2 * ID_LEN..].try_into().ok()?);
        let now = unix_ms(SystemTime::now());
        if sealed_at > now.saturating_add(millis(MAX_CLOCK_SKEW)) {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        let aad = self.aad(header);
        let payload = || Payload {
            msg: sealed,
            aad: &aad,
        };
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| tokio::time::Instant::now() < *until);
        let plain = Zeroizing::new(
            self.current
                .decrypt(&nonce, payload())
                .or_else(|e| match previous {
                    Some((previous, _)) => previous.decrypt(&nonce, payload()),
                    None => Err(e),
                })
                .ok()?,
        );
        let (expires_at, rest) = plain.split_at_checked(8)?;
        let (lifetime, value) = rest.split_at_checked(8)?;
        let expires_at = u64::from_be_bytes(expires_at.try_into().ok()?);
        let lifetime = u64::from_be_bytes(lifetime.try_into().ok()?);
        let expires_in = match expires_at {
            0 if now.saturating_sub(sealed_at) >= millis(self.max_age) => return None,
            0 => None,
            at => Some(Duration::from_millis(
                at.checked_sub(now).filter(|left| *left > 0)?,
            )),
        };
        let value = header_value(value)?;
        let lifetime = expires_in.map(|_| Duration::from_millis(lifetime).min(MAX_LIFETIME));
        Some(Opened {
            value,
            record: RecordId {
                id,
                replaces,
                sealed_at,
            },
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

    const HOUR: Duration = Duration::from_secs(3600);

    fn sealer(name: &str, key: u8, account: &str) -> Sealer {
        let shared = SharedStore::new(Nowhere, name, SealingKey::new([key; 32]));
        Sealer::new(&shared, "https://api.infobip.com", account, HOUR)
    }

    fn seal(sealer: &Sealer, expires_in: Option<Duration>) -> Vec<u8> {
        sealer.seal(&token(), expires_in, None).unwrap().0
    }

    fn token() -> HeaderValue {
        HeaderValue::from_static("IBSSO d3c49f59-734a-4daf-be9a-6188b540358e")
    }

    /// `record` with its time of sealing set to `at` (Unix ms) and sealed
    /// again, as a replica whose clock reads `at` would have sealed it.
    fn sealed_at(sealer: &Sealer, at: u64, expires_in: Option<Duration>) -> Vec<u8> {
        let mut plain = Vec::new();
        let expires_at = expires_in.map_or(0, |e| at.saturating_add(millis(e)).max(1));
        plain.extend_from_slice(&expires_at.to_be_bytes());
        plain.extend_from_slice(&expires_in.map_or(0, millis).to_be_bytes());
        plain.extend_from_slice(token().as_bytes());
        let mut record = vec![VERSION];
        record.extend_from_slice(&[9; ID_LEN]);
        record.extend_from_slice(&[0; ID_LEN]);
        record.extend_from_slice(&at.to_be_bytes());
        let nonce = XNonce::try_generate().unwrap();
        let aad = sealer.aad(&record);
        let payload = Payload {
            msg: &plain,
            aad: &aad,
        };
        let sealed = sealer.current.encrypt(&nonce, payload).unwrap();
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&sealed);
        record
    }

    fn now_ms() -> u64 {
        unix_ms(SystemTime::now())
    }

    #[test]
    fn a_sealed_session_opens_to_the_same_sensitive_header_and_record_id() {
        let sealer = sealer("prod", 7, "alice");
        let (record, id) = sealer
            .seal(&token(), Some(Duration::from_secs(60)), Some([3; ID_LEN]))
            .unwrap();
        let opened = sealer.open(&record).unwrap();
        assert_eq!(opened.value, token());
        assert!(opened.value.is_sensitive());
        assert_eq!(opened.record, id);
        assert_eq!(opened.record.replaces, [3; ID_LEN]);
        let left = opened.expires_in.unwrap();
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60));
        assert_eq!(opened.lifetime, Some(Duration::from_secs(60)));
        assert!(sealer
            .open(&seal(&sealer, None))
            .unwrap()
            .expires_in
            .is_none());
        let (_, other) = sealer.seal(&token(), None, None).unwrap();
        assert_ne!(other.id, id.id, "every record has an id of its own");
    }

    #[test]
    fn a_record_holds_neither_the_token_nor_the_account() {
        let record = seal(&sealer("prod", 7, "alice"), None);
        let text = String::from_utf8_lossy(&record);
        assert!(!text.contains("d3c49f59"));
        assert!(!text.contains("alice"));
        assert!(!text.contains("IBSSO"));
    }

    #[test]
    fn a_record_opens_only_for_its_key_name_and_account() {
        let record = seal(&sealer("prod", 7, "alice"), None);
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
    fn a_record_whose_id_or_time_of_sealing_was_changed_does_not_open() {
        let sealer = sealer("prod", 7, "alice");
        let record = seal(&sealer, None);
        for at in [1, 5, 1 + ID_LEN, HEADER_LEN - 1] {
            let mut changed = record.clone();
            changed[at] ^= 1;
            assert!(sealer.open(&changed).is_none(), "byte {at} of the header");
        }
    }

    #[test]
    fn a_record_without_expiry_opens_only_within_the_idle_timeout() {
        let sealer = sealer("prod", 7, "alice");
        let fresh = sealed_at(&sealer, now_ms() - millis(HOUR) + 60_000, None);
        assert!(sealer.open(&fresh).is_some(), "59 minutes old");
        let old = sealed_at(&sealer, now_ms() - millis(HOUR) - 1, None);
        assert!(sealer.open(&old).is_none(), "over an hour old");
        let ancient = sealed_at(&sealer, 1, None);
        assert!(sealer.open(&ancient).is_none(), "sealed in 1970");
    }

    #[test]
    fn a_record_sealed_in_the_future_opens_only_within_the_clock_skew() {
        let sealer = sealer("prod", 7, "alice");
        let skewed = sealed_at(&sealer, now_ms() + 60_000, None);
        assert!(sealer.open(&skewed).is_some(), "a minute ahead");
        let far = sealed_at(&sealer, now_ms() + millis(MAX_CLOCK_SKEW) + 60_000, None);
        assert!(sealer.open(&far).is_none(), "beyond the skew");
        let last = sealed_at(&sealer, u64::MAX - millis(HOUR), Some(HOUR));
        assert!(sealer.open(&last).is_none(), "the end of time");
    }

    #[test]
    fn an_oversized_record_is_not_decrypted() {
        let sealer = sealer("prod", 7, "alice");
        let mut record = seal(&sealer, None);
        record.resize(MAX_RECORD_BYTES + 1, 0);
        assert!(sealer.open(&record).is_none());
    }

    #[test]
    fn extreme_lifetimes_seal_without_panicking_and_are_clamped() {
        let sealer = sealer("prod", 7, "alice");
        for expires_in in [Duration::MAX, Duration::from_secs(u64::MAX), Duration::ZERO] {
            let (record, _) = sealer.seal(&token(), Some(expires_in), None).unwrap();
            if let Some(opened) = sealer.open(&record) {
                assert!(opened.expires_in.unwrap() <= MAX_LIFETIME);
                assert!(opened.lifetime.unwrap() <= MAX_LIFETIME);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_previous_key_opens_old_records_for_its_validity_only() {
        let old = seal(&sealer("prod", 7, "alice"), None);
        let shared = SharedStore::new(Nowhere, "prod", SealingKey::new([8; 32]))
            .previous_key(SealingKey::new([7; 32]));
        let rotated = Sealer::new(&shared, "https://api.infobip.com", "alice", 2 * HOUR);
        assert_eq!(rotated.open(&old).unwrap().value, token());
        let new = seal(&rotated, None);
        assert!(
            sealer("prod", 7, "alice").open(&new).is_none(),
            "sealed with the new key"
        );
        tokio::time::advance(PREVIOUS_KEY_VALIDITY).await;
        assert!(rotated.open(&old).is_none(), "the previous key has lapsed");
        assert!(rotated.open(&new).is_some(), "the current key still opens");
    }

    #[test]
    fn an_expired_record_does_not_open() {
        let sealer = sealer("prod", 7, "alice");
        let record = sealed_at(&sealer, now_ms() - 20_000, Some(Duration::from_secs(10)));
        assert!(sealer.open(&record).is_none());
    }

    mod extreme_values {
        use proptest::prelude::*;

        use super::*;
        use crate::strategies::lifetime;

        fn sealed_at_times() -> impl Strategy<Value = u64> {
            let now = now_ms();
            prop_oneof![
                Just(0),
                Just(u64::MAX),
                any::<u64>(),
                // Bounded: around now, a year either side.
                now - 366 * 86_400_000..now + 366 * 86_400_000,
            ]
        }

        proptest! {
            #[test]
            fn any_lifetime_seals_and_opens_at_most_a_year(expires_in in lifetime()) {
                let sealer = sealer("prod", 7, "alice");
                let (record, id) = sealer.seal(&token(), expires_in, None).unwrap();
                let opened = sealer.open(&record);
                if let Some(opened) = opened {
                    prop_assert_eq!(opened.record.id, id.id);
                    prop_assert!(opened.expires_in.is_none_or(|e| e <= MAX_LIFETIME));
                    prop_assert!(opened.lifetime.is_none_or(|e| e <= MAX_LIFETIME));
                } else {
                    prop_assert!(expires_in.is_some_and(|e| e.as_millis() == 0), "only an instant expiry is a miss");
                }
            }

            #[test]
            fn a_record_sealed_at_any_time_opens_only_within_its_bounds(
                at in sealed_at_times(),
                expires_in in lifetime(),
            ) {
                let sealer = sealer("prod", 7, "alice");
                let expires_in = expires_in.map(|e| e.min(MAX_LIFETIME));
                let record = sealed_at(&sealer, at, expires_in);
                let now = now_ms();
                if let Some(opened) = sealer.open(&record) {
                    prop_assert!(at <= now.saturating_add(millis(MAX_CLOCK_SKEW)), "not from the future");
                    match opened.expires_in {
                        Some(left) => prop_assert!(left <= MAX_LIFETIME),
                        None => prop_assert!(now.saturating_sub(at) < millis(HOUR), "young enough"),
                    }
                }
            }

            #[test]
            fn any_bytes_are_a_miss_not_a_panic(
                versioned in any::<bool>(),
                mut bytes in prop::collection::vec(any::<u8>(), 0..HEADER_LEN + NONCE_LEN + 80),
            ) {
                if versioned && !bytes.is_empty() {
                    bytes[0] = VERSION;
                }
                prop_assert!(sealer("prod", 7, "alice").open(&bytes).is_none());
            }

            #[test]
            fn a_record_changed_anywhere_is_a_miss(at in any::<prop::sample::Index>(), bit in 0u8..8) {
                let sealer = sealer("prod", 7, "alice");
                let mut record = seal(&sealer, None);
                let at = at.index(record.len());
                record[at] ^= 1 << bit;
                prop_assert!(sealer.open(&record).is_none());
            }
        }
    }
}
