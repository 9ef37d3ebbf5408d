//! Storage for secrets: zeroized when the last copy goes away, redacted in
//! `Debug`, and stamped as sensitive header values without extra copies.

use std::fmt;

use bytes::Bytes;
use http::HeaderValue;
use zeroize::{Zeroize, Zeroizing};

/// What `Debug` prints in place of a secret.
pub(crate) const REDACTED: &str = "** redacted **";

/// A heap buffer that is overwritten with zeros when dropped.
struct ZeroizeOnDrop(Vec<u8>);

impl AsRef<[u8]> for ZeroizeOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for ZeroizeOnDrop {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A string secret (password, username paired with one) kept in memory that
/// is wiped on drop.
#[derive(Clone)]
pub(crate) struct SecretString(Zeroizing<String>);

impl SecretString {
    pub(crate) fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Builds `"<scheme> <secret>"` as a sensitive [`HeaderValue`] whose bytes
/// live in one exact-size buffer that is zeroized when the last clone of the
/// header value is dropped. Cloning the result never allocates.
///
/// `write_secret` must write exactly `secret_len` bytes into the slice it gets.
/// Returns `None` if the bytes are not a valid header value.
pub(crate) fn sensitive_header_with(
    scheme: &str,
    secret_len: usize,
    write_secret: impl FnOnce(&mut [u8]),
) -> Option<HeaderValue> {
    let total = scheme.len() + 1 + secret_len;
    let mut buf = Zeroizing::new(vec![0u8; total]);
    buf[..scheme.len()].copy_from_slice(scheme.as_bytes());
    buf[scheme.len()] = b' ';
    write_secret(&mut buf[scheme.len() + 1..]);
    let owned = ZeroizeOnDrop(std::mem::take(&mut *buf));
    let mut value = HeaderValue::from_maybe_shared(Bytes::from_owner(owned)).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Moves a secret buffer into [`Bytes`] that zeroize it when the last clone
/// is dropped.
pub(crate) fn zeroizing_bytes(mut secret: Zeroizing<Vec<u8>>) -> Bytes {
    Bytes::from_owner(ZeroizeOnDrop(std::mem::take(&mut *secret)))
}

/// [`sensitive_header_with`] for a secret already in memory.
pub(crate) fn sensitive_header(scheme: &str, secret: &[u8]) -> Option<HeaderValue> {
    sensitive_header_with(scheme, secret.len(), |out| out.copy_from_slice(secret))
}

/// True for a token or key that can stand after a scheme in a header: one or
/// more visible ASCII characters, no spaces or control characters.
pub(crate) fn is_visible_ascii(value: &[u8]) -> bool {
    !value.is_empty() && value.iter().all(|b| (0x21..=0x7e).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_sensitive_and_exact() {
        let value = sensitive_header("App", b"abc").unwrap();
        assert_eq!(value.as_bytes(), b"App abc");
        assert!(value.is_sensitive());
    }

    #[test]
    fn invalid_bytes_are_refused() {
        assert!(sensitive_header("App", b"a\r\nb").is_none());
    }

    #[test]
    fn secret_string_debug_is_redacted() {
        let secret = SecretString::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn visible_ascii() {
        assert!(is_visible_ascii(b"d3c49f59-734a"));
        assert!(!is_visible_ascii(b""));
        assert!(!is_visible_ascii(b"a b"));
        assert!(!is_visible_ascii(b"a\tb"));
        assert!(!is_visible_ascii("é".as_bytes()));
    }
}
