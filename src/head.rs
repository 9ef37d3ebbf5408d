//! [`KeptHead`]: a copy of a request's head (method, URI, version, headers,
//! extensions), kept so that a request answered 401 can be sent again.
//!
//! Every request that may be replayed needs this copy, and almost none is
//! ever replayed, so the copy is made cheap rather than convenient: the URI
//! and the headers are written as plain bytes into buffers that are reused
//! from request to request (a small pool per thread), and parsed back only
//! when a replay happens. Cloning `Uri`s and `HeaderValue`s instead would
//! allocate for every value the caller parsed from a string.

use std::cell::RefCell;
use std::mem;
use std::ops::Range;

use http::header::{HeaderName, AUTHORIZATION};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Extensions, HeaderValue, Method, Request, Uri, Version};
use zeroize::Zeroize;

use crate::base_url::BaseUrl;
use crate::error::{AuthError, ErrorKind};
use crate::source::Credential;

/// Heads kept per thread for reuse; more are allocated and freed as needed.
const POOL_SIZE: usize = 64;

/// A head whose buffer grew past this (unusually large headers) is freed,
/// not pooled: a thread's pool then holds at most 64 x 4 KiB of bytes.
const MAX_POOLED_BYTES: usize = 4 * 1024;

/// Likewise for the list of headers (24 bytes each).
const MAX_POOLED_SLOTS: usize = 128;

thread_local! {
    // Boxed: a head moves between the pool and a response future as one
    // pointer, and the future stays small.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<Head>>> = const { RefCell::new(Vec::new()) };
}

struct Head {
    /// The credential the request was stamped with, to report a 401
    /// against; dropped before the head goes back to the pool.
    stamped: Option<Credential>,
    method: Method,
    version: Version,
    extensions: Extensions,
    /// The URI's scheme and authority are the base URL's: they are not
    /// copied, and the replay takes them from the base URL.
    at_base: bool,
    /// The scheme, authority and path-and-query, then each header's name
    /// and value, back to back.
    bytes: Vec<u8>,
    /// Where the scheme, authority and path-and-query end in `bytes`.
    uri_ends: [usize; 3],
    headers: Vec<Slot>,
    /// A caller's header was marked sensitive: its bytes are wiped on reuse.
    sensitive: bool,
    /// The head itself, for a request held back before it was ever sent:
    /// it is sent as it is, with no copy made and none parsed back.
    whole: Option<Parts>,
}

/// One header: its name ends at `name_end`, its value right after it.
struct Slot {
    name_end: usize,
    value_end: usize,
    sensitive: bool,
}

impl Head {
    fn push(&mut self, bytes: &[u8]) -> usize {
        self.bytes.extend_from_slice(bytes);
        self.bytes.len()
    }

    fn clear(&mut self) {
        if self.sensitive {
            self.bytes.as_mut_slice().zeroize();
            self.sensitive = false;
        }
        self.bytes.clear();
        self.headers.clear();
        self.stamped = None;
        // Dropped here, before the pool is borrowed: an extension's own
        // `Drop` may build a request too.
        self.extensions = Extensions::new();
        self.whole = None;
    }

    /// The kept URI, parsed back; `None` if it no longer parses.
    fn uri(&self, base: &BaseUrl) -> Option<Uri> {
        let [scheme_end, authority_end, path_end] = self.uri_ends;
        if self.at_base {
            let path = PathAndQuery::try_from(&self.bytes[authority_end..path_end]).ok()?;
            return Some(base.resolve(path));
        }
        let part = |range: Range<usize>| Some(&self.bytes[range]).filter(|part| !part.is_empty());
        let mut parts = http::uri::Parts::default();
        if let Some(scheme) = part(0..scheme_end) {
            parts.scheme = Some(Scheme::try_from(scheme).ok()?);
        }
        if let Some(authority) = part(scheme_end..authority_end) {
            parts.authority = Some(Authority::try_from(authority).ok()?);
        }
        if let Some(path) = part(authority_end..path_end) {
            parts.path_and_query = Some(PathAndQuery::try_from(path).ok()?);
        }
        Uri::from_parts(parts).ok()
    }
}

/// A request head kept for a replay; see the module docs.
pub(crate) struct KeptHead {
    head: Option<Box<Head>>,
}

impl KeptHead {
    /// Copies the head of `parts`, except `Authorization` (a replay carries
    /// the renewed credential instead). `at_base`: the URI's scheme and
    /// authority are exactly those of the base URL the head is rebuilt with
    /// (as [`BaseUrl::resolve`] writes them), so they are not copied.
    pub(crate) fn keep(parts: &Parts, stamped: Credential, at_base: bool) -> Self {
        let mut head = Self::pooled(stamped);
        head.method = parts.method.clone();
        head.version = parts.version;
        head.extensions = parts.extensions.clone();
        let uri = &parts.uri;
        head.at_base = at_base;
        let (scheme_end, authority_end) = if at_base {
            (0, 0)
        } else {
            (
                head.push(uri.scheme_str().unwrap_or_default().as_bytes()),
                head.push(uri.authority().map_or("", Authority::as_str).as_bytes()),
            )
        };
        let path_end = head.push(
            uri.path_and_query()
                .map_or("", PathAndQuery::as_str)
                .as_bytes(),
        );
        head.uri_ends = [scheme_end, authority_end, path_end];
        head.headers.reserve(parts.headers.len());
        for (name, value) in &parts.headers {
            if name == AUTHORIZATION {
                continue;
            }
            let name_end = head.push(name.as_str().as_bytes());
            let value_end = head.push(value.as_bytes());
            let sensitive = value.is_sensitive();
            head.sensitive |= sensitive;
            head.headers.push(Slot {
                name_end,
                value_end,
                sensitive,
            });
        }
        Self { head: Some(head) }
    }

    /// Keeps the head of a request that was not sent, whole: its replay is
    /// its only sending, so nothing is copied.
    pub(crate) fn whole(parts: Parts, stamped: Credential) -> Self {
        let mut head = Self::pooled(stamped);
        head.whole = Some(parts);
        Self { head: Some(head) }
    }

    /// A head from this thread's pool, or a new one.
    #[inline(always)]
    fn pooled(stamped: Credential) -> Box<Head> {
        match POOL.try_with(|pool| pool.try_borrow_mut().ok()?.pop()) {
            Ok(Some(mut head)) => {
                head.stamped = Some(stamped);
                head
            }
            _ => Box::new(Head {
                stamped: Some(stamped),
                method: Method::default(),
                version: Version::default(),
                extensions: Extensions::new(),
                at_base: false,
                bytes: Vec::new(),
                uri_ends: [0; 3],
                headers: Vec::new(),
                sensitive: false,
                whole: None,
            }),
        }
    }

    /// The credential the request was stamped with.
    pub(crate) fn stamped(&self) -> Option<&Credential> {
        self.head.as_ref()?.stamped.as_ref()
    }

    /// Builds the request again around `body`, stamped with `credential`;
    /// `base` is the base URL the head was kept for.
    pub(crate) fn rebuild<B>(
        mut self,
        body: B,
        credential: &Credential,
        base: &BaseUrl,
    ) -> Result<Request<B>, AuthError> {
        let Some(head) = self.head.as_deref_mut() else {
            return Err(unrebuildable());
        };
        if let Some(parts) = head.whole.take() {
            // Ours is its only `Authorization`: replaced, not added.
            let mut request = Request::from_parts(parts, body);
            request
                .headers_mut()
                .try_insert(AUTHORIZATION, credential.header_value().clone())
                .map_err(|_| unrebuildable())?;
            return Ok(request);
        }
        let mut request = Request::new(body);
        *request.method_mut() = head.method.clone();
        *request.version_mut() = head.version;
        *request.uri_mut() = head.uri(base).ok_or_else(unrebuildable)?;
        *request.extensions_mut() = mem::take(&mut head.extensions);
        let headers = request.headers_mut();
        headers
            .try_reserve(head.headers.len() + 1)
            .map_err(|_| unrebuildable())?;
        let mut start = head.uri_ends[2];
        for slot in &head.headers {
            let name = HeaderName::from_bytes(&head.bytes[start..slot.name_end])
                .map_err(|_| unrebuildable())?;
            let mut value = HeaderValue::from_bytes(&head.bytes[slot.name_end..slot.value_end])
                .map_err(|_| unrebuildable())?;
            value.set_sensitive(slot.sensitive);
            headers
                .try_append(name, value)
                .map_err(|_| unrebuildable())?;
            start = slot.value_end;
        }
        headers
            .try_insert(AUTHORIZATION, credential.header_value().clone())
            .map_err(|_| unrebuildable())?;
        Ok(request)
    }
}

/// Only reachable with a header or URI that bypassed `http`'s validation, or
/// a request that was already at `HeaderMap`'s limit of fields.
fn unrebuildable() -> AuthError {
    AuthError::new(
        ErrorKind::Request,
        "the request answered 401 could not be rebuilt for its replay",
    )
}

impl Drop for KeptHead {
    fn drop(&mut self) {
        let Some(mut head) = self.head.take() else {
            return;
        };
        head.clear();
        if head.bytes.capacity() > MAX_POOLED_BYTES || head.headers.capacity() > MAX_POOLED_SLOTS {
            return;
        }
        // During thread teardown the pool may be gone: the head is freed.
        let _ = POOL.try_with(move |pool| {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                if pool.capacity() == 0 {
                    pool.reserve_exact(POOL_SIZE);
                }
                if pool.len() < POOL_SIZE {
                    pool.push(head);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base_url::Origin;

    fn parts(request: Request<()>) -> Parts {
        request.into_parts().0
    }

    fn credential() -> Credential {
        Credential::new("IBSSO", "renewed").unwrap()
    }

    fn base() -> BaseUrl {
        BaseUrl::new("https://api.infobip.com:8443").unwrap()
    }

    /// Keeps `parts` as the service does: the URI's scheme and authority
    /// are not copied when they are the base URL's, byte for byte.
    fn keep(parts: &Parts) -> KeptHead {
        let at_base = base().origin_of(&parts.uri) == Origin::Exact;
        KeptHead::keep(parts, credential(), at_base)
    }

    /// A stamped head with repeated and sensitive headers and an extension.
    fn sample() -> Parts {
        let mut secret = HeaderValue::from_static("cookie-secret");
        secret.set_sensitive(true);
        let mut request = Request::post("https://api.infobip.com:8443/sms/2/text?x=1&y=%20")
            .version(Version::HTTP_2)
            .header("content-type", "application/json")
            .header("x-custom", "a")
            .header("x-custom", "b")
            .header(AUTHORIZATION, "IBSSO old")
            .header("cookie", secret)
            .body(())
            .unwrap();
        request.extensions_mut().insert(7u32);
        parts(request)
    }

    fn assert_same_head_with_new_credential(rebuilt: &Request<()>, parts: &Parts) {
        assert_eq!(rebuilt.method(), parts.method);
        assert_eq!(rebuilt.uri(), &parts.uri);
        assert_eq!(rebuilt.version(), Version::HTTP_2);
        assert_eq!(rebuilt.extensions().get::<u32>(), Some(&7));
        let values: Vec<_> = rebuilt.headers().get_all("x-custom").iter().collect();
        assert_eq!(values, ["a", "b"]);
        assert_eq!(rebuilt.headers()["content-type"], "application/json");
        assert!(rebuilt.headers()["cookie"].is_sensitive());
        assert_eq!(rebuilt.headers()[AUTHORIZATION], "IBSSO renewed");
        assert_eq!(rebuilt.headers().get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(rebuilt.headers().len(), parts.headers.len());
    }

    #[test]
    fn rebuild_gives_the_same_head_with_the_new_credential() {
        let parts = sample();
        let rebuilt = keep(&parts).rebuild((), &credential(), &base()).unwrap();
        assert_same_head_with_new_credential(&rebuilt, &parts);
    }

    #[test]
    fn a_whole_head_is_sent_as_it_was_with_the_new_credential() {
        let kept = KeptHead::whole(sample(), credential());
        let rebuilt = kept.rebuild((), &credential(), &base()).unwrap();
        assert_same_head_with_new_credential(&rebuilt, &sample());
        assert!(rebuilt.headers()[AUTHORIZATION].is_sensitive());

        // Dropped unsent, it leaves nothing in the pool.
        drop(KeptHead::whole(sample(), credential()));
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(!pool.is_empty());
            assert!(pool
                .iter()
                .all(|h| h.whole.is_none() && h.stamped.is_none()));
        });
    }

    #[test]
    fn a_uri_without_a_path_is_rebuilt_as_it_was() {
        for uri in [
            "https://api.infobip.com:8443",
            "https://API.infobip.com:8443",
        ] {
            let parts = parts(Request::get(uri).body(()).unwrap());
            let rebuilt = keep(&parts).rebuild((), &credential(), &base()).unwrap();
            assert_eq!(rebuilt.uri(), &parts.uri, "{uri}");
        }
    }

    #[test]
    fn heads_are_reused_and_leave_nothing_behind() {
        let first = parts(
            Request::get("https://api.infobip.com/a")
                .header("x-first", "1")
                .body(())
                .unwrap(),
        );
        let kept = keep(&first);
        assert_eq!(kept.stamped().unwrap().header_value(), "IBSSO renewed");
        drop(kept);
        // The pooled head no longer holds the credential.
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.iter().all(|head| head.stamped.is_none()));
            assert!(!pool.is_empty());
        });
        let second = parts(Request::get("/b").body(()).unwrap());
        let rebuilt = keep(&second).rebuild((), &credential(), &base()).unwrap();
        assert_eq!(rebuilt.uri(), "/b");
        assert!(rebuilt.headers().get("x-first").is_none());
        assert_eq!(rebuilt.headers().len(), 1);
    }

    #[test]
    fn a_head_with_large_headers_is_freed_not_pooled() {
        let large = "x".repeat(2 * MAX_POOLED_BYTES);
        let head = parts(
            Request::get("https://api.infobip.com/")
                .header("x-large", large.as_str())
                .body(())
                .unwrap(),
        );
        drop(keep(&head));
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool
                .iter()
                .all(|head| head.bytes.capacity() <= MAX_POOLED_BYTES));
        });
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn header() -> impl Strategy<Value = (String, Vec<u8>, bool)> {
            let name = prop_oneof![
                Just("content-type".to_owned()),
                Just("accept".to_owned()),
                Just("authorization".to_owned()),
                Just("x-request-id".to_owned()),
                "[a-z][a-z0-9-]{0,20}",
            ];
            // Visible ASCII, spaces, tabs and obs-text: what `HeaderValue` allows.
            let value =
                prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..40);
            (name, value, any::<bool>())
        }

        proptest! {
            /// Keeping a head and rebuilding it gives the same request, byte
            /// for byte, with the new credential in place of any
            /// `Authorization`; reused buffers carry nothing over.
            #[test]
            fn rebuild_is_byte_exact(
                heads in prop::collection::vec(
                    (
                        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "PURGE"]),
                        "/[a-z0-9/]{0,30}(\\?[a-z0-9=&%]{0,20})?",
                        prop::collection::vec(header(), 0..12),
                        // Path only, the base URL's origin byte for byte (not
                        // copied), another spelling of it, another origin.
                        prop::sample::select(vec![
                            "",
                            "https://api.infobip.com:8443",
                            "https://API.Infobip.com:8443",
                            "http://example.com",
                        ]),
                    ),
                    1..4,
                ),
            ) {
                for (method, path, headers, origin) in heads {
                    let uri = format!("{origin}{path}");
                    let mut request = Request::builder().method(method).uri(uri).body(()).unwrap();
                    for (name, value, sensitive) in &headers {
                        let mut value = HeaderValue::from_bytes(value).unwrap();
                        value.set_sensitive(*sensitive);
                        request
                            .headers_mut()
                            .append(HeaderName::try_from(name.as_str()).unwrap(), value);
                    }
                    let (parts, ()) = request.into_parts();
                    let rebuilt = keep(&parts)
                        .rebuild((), &credential(), &base())
                        .unwrap();
                    prop_assert_eq!(rebuilt.method(), &parts.method);
                    prop_assert_eq!(rebuilt.uri(), &parts.uri);
                    prop_assert_eq!(rebuilt.version(), parts.version);
                    let expected: Vec<_> = parts
                        .headers
                        .iter()
                        .filter(|(name, _)| *name != AUTHORIZATION)
                        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec(), v.is_sensitive()))
                        .collect();
                    let seen: Vec<_> = rebuilt
                        .headers()
                        .iter()
                        .filter(|(name, _)| *name != AUTHORIZATION)
                        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec(), v.is_sensitive()))
                        .collect();
                    prop_assert_eq!(seen, expected);
                    let stamped: Vec<_> = rebuilt.headers().get_all(AUTHORIZATION).iter().collect();
                    prop_assert_eq!(stamped, vec!["IBSSO renewed"]);
                }
            }
        }
    }
}
