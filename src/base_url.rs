//! [`BaseUrl`]: the origin of an Infobip account, and the only origin that
//! ever receives its credentials.
//!
//! # Example
//!
//! ```
//! use infobip_auth::BaseUrl;
//!
//! // The scheme is added and trailing slashes are dropped.
//! let base = BaseUrl::new("xyz123.api.infobip.com/").unwrap();
//! assert_eq!(base.as_str(), "https://xyz123.api.infobip.com");
//!
//! // Plain HTTP is refused unless the host is loopback and you opt in.
//! assert!(BaseUrl::new("http://api.infobip.com").is_err());
//! assert!(BaseUrl::insecure_loopback("http://127.0.0.1:8080").is_ok());
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;

use crate::error::AuthError;

/// The base URL of an Infobip account, e.g. `https://xyz123.api.infobip.com`.
///
/// It is a bare origin: scheme, host and optional port. Requests whose URI is
/// only a path are resolved against it, and [`AuthLayer`](crate::AuthLayer)
/// stamps credentials only on requests to this exact scheme, host and port.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    https: bool,
    authority: Authority,
    host: String,
    port: u16,
    text: String,
    /// `host:port`, and the form a URI may use for the same origin: `host`
    /// alone when the port is the scheme's default.
    with_port: String,
    short_form: String,
}

/// How a URI's origin relates to a [`BaseUrl`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Another origin.
    Other,
    /// The same origin, spelt otherwise (case, an explicit default port).
    Same,
    /// The same scheme and authority, byte for byte, as
    /// [`BaseUrl::resolve`] writes them.
    Exact,
}

impl BaseUrl {
    /// Parses an HTTPS base URL.
    ///
    /// `https://` is added when no scheme is given and trailing `/` are
    /// removed.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] of kind [`InvalidBaseUrl`](crate::ErrorKind::InvalidBaseUrl)
    /// when the text is empty, uses a scheme other than `https`, carries
    /// user information, a path, a query or a fragment, or has no valid host.
    pub fn new(url: &str) -> Result<Self, AuthError> {
        Self::parse(url, false)
    }

    /// Like [`new`](Self::new), but also accepts `http://` when the host is
    /// loopback (`localhost`, `127.0.0.0/8`, `[::1]`): for tests and local
    /// proxies. Credentials then cross the loopback interface unencrypted.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new); `http://` to any other host is still refused.
    pub fn insecure_loopback(url: &str) -> Result<Self, AuthError> {
        Self::parse(url, true)
    }

    fn parse(url: &str, allow_loopback_http: bool) -> Result<Self, AuthError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(AuthError::invalid_base_url("base URL is empty"));
        }
        let (scheme, rest) = match url.find("://") {
            Some(at) => (&url[..at], &url[at + 3..]),
            None => ("https", url),
        };
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(AuthError::invalid_base_url(
                "base URL scheme must be https (or http to a loopback host)",
            ));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if tail.contains('?') {
            return Err(AuthError::invalid_base_url(
                "base URL must not have a query string",
            ));
        }
        if tail.contains('#') {
            return Err(AuthError::invalid_base_url(
                "base URL must not have a fragment",
            ));
        }
        if tail.bytes().any(|b| b != b'/') {
            return Err(AuthError::invalid_base_url(
                "base URL must not have a path: give only scheme, host and port",
            ));
        }
        if authority.contains('@') {
            return Err(AuthError::invalid_base_url(
                "base URL must not contain user information; pass credentials to a source instead",
            ));
        }
        if authority.is_empty() {
            return Err(AuthError::invalid_base_url("base URL has no host"));
        }
        let authority = Authority::from_str(authority)
            .map_err(|_| AuthError::invalid_base_url("base URL host or port is not valid"))?;
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(AuthError::invalid_base_url("base URL has no host"));
        }
        if !is_valid_host(&host) {
            return Err(AuthError::invalid_base_url(
                "base URL host is not a DNS name or an IP address",
            ));
        }
        if !https {
            if !is_loopback(&host) {
                return Err(AuthError::invalid_base_url(
                    "refusing http:// for a non-loopback host: credentials would travel unencrypted; use https://",
                ));
            }
            if !allow_loopback_http {
                return Err(AuthError::invalid_base_url(
                    "http:// needs BaseUrl::insecure_loopback, even for a loopback host",
                ));
            }
        }
        // `Authority::port` hides a port that does not fit in a u16, so read
        // the text after the last ':' that is not inside IPv6 brackets.
        let after_host = authority
            .as_str()
            .rsplit_once(']')
            .map_or(authority.as_str(), |(_, rest)| rest);
        let port = match after_host.rsplit_once(':') {
            None if https => 443,
            None => 80,
            Some((_, port)) => match port.parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => {
                    return Err(AuthError::invalid_base_url(
                        "base URL port is not valid (1 to 65535)",
                    ))
                }
            },
        };
        // One spelling of the origin: lower case, no default port, no leading
        // zeros, so that what `join` builds is what `matches` accepts.
        let with_port = format!("{host}:{port}");
        let short_form = if port == if https { 443 } else { 80 } {
            host.clone()
        } else {
            with_port.clone()
        };
        let authority = Authority::from_str(&short_form)
            .map_err(|_| AuthError::invalid_base_url("base URL host or port is not valid"))?;
        let text = format!("{}://{short_form}", if https { "https" } else { "http" });
        Ok(Self {
            https,
            authority,
            host,
            port,
            text,
            with_port,
            short_form,
        })
    }

    /// The base URL as text, e.g. `https://api.infobip.com`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host, lower-cased (IPv6 addresses keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The absolute URI of `path_and_query` (which must start with `/`) on
    /// this base URL.
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`](crate::ErrorKind::InvalidBaseUrl) if `path_and_query`
    /// is not a valid absolute path.
    pub fn join(&self, path_and_query: &str) -> Result<Uri, AuthError> {
        if !path_and_query.starts_with('/') {
            return Err(AuthError::invalid_base_url("path must start with '/'"));
        }
        let pq = PathAndQuery::from_str(path_and_query)
            .map_err(|_| AuthError::invalid_base_url("path is not a valid URI path"))?;
        Ok(self.resolve(pq))
    }

    pub(crate) fn resolve(&self, path_and_query: PathAndQuery) -> Uri {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(if self.https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        });
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).expect("scheme, authority and path are all set and valid")
    }

    /// Makes a path-only `uri` (`/sms/1/reports`) absolute on this base URL;
    /// returns whether it was path-only. Any other URI is left as it is.
    pub(crate) fn resolve_path_only(&self, uri: &mut Uri) -> bool {
        if uri.scheme().is_some() || uri.authority().is_some() {
            return false;
        }
        // Moved, not cloned: cloning a parsed path allocates.
        let path = std::mem::take(uri).into_parts().path_and_query;
        *uri = self.resolve(path.unwrap_or_else(|| PathAndQuery::from_static("/")));
        true
    }

    /// Whether `uri` points at this origin (scheme, host and port, with
    /// default ports filled in).
    ///
    /// Authorities are compared as text, ignoring case: a URI with user
    /// information, or an IP address spelt differently, does not match.
    pub fn matches(&self, uri: &Uri) -> bool {
        self.origin_of(uri) != Origin::Other
    }

    /// How `uri`'s origin relates to this one (see [`matches`](Self::matches)).
    pub(crate) fn origin_of(&self, uri: &Uri) -> Origin {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Origin::Other;
        };
        let expected = if self.https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let authority = authority.as_str();
        if *scheme != expected {
            return Origin::Other;
        }
        // Exact bytes first: the common case, and a cheap one.
        if authority == self.short_form {
            return Origin::Exact;
        }
        if authority == self.with_port {
            return Origin::Same;
        }
        // Then the same origin spelt otherwise (case, an explicit default
        // port, leading zeros); never a URI carrying user information.
        if authority.contains('@') {
            return Origin::Other;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => match port.parse::<u16>() {
                Ok(port) => (host, port),
                Err(_) => return Origin::Other,
            },
            _ => (authority, if self.https { 443 } else { 80 }),
        };
        if port == self.port && host.eq_ignore_ascii_case(&self.host) {
            Origin::Same
        } else {
            Origin::Other
        }
    }
}

#[cfg(feature = "reqwest-middleware")]
impl BaseUrl {
    /// Whether a reqwest URL points at this origin: the same scheme, host
    /// (ignoring case) and port, and no user information.
    pub(crate) fn matches_url(&self, url: &::reqwest::Url) -> bool {
        url.scheme() == if self.https { "https" } else { "http" }
            && url.username().is_empty()
            && url.password().is_none()
            && url.port_or_known_default() == Some(self.port)
            && url
                .host_str()
                .is_some_and(|host| host.eq_ignore_ascii_case(&self.host))
    }
}

/// A DNS name (letters, digits, `-` and `.`), an IPv4 address, or an IPv6
/// address in brackets.
fn is_valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for BaseUrl {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BaseUrl").field(&self.text).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn err(url: &str) -> String {
        BaseUrl::new(url).unwrap_err().to_string()
    }

    #[test]
    fn adds_https_and_strips_trailing_slashes() {
        let base = BaseUrl::new("xyz.api.infobip.com///").unwrap();
        assert_eq!(base.as_str(), "https://xyz.api.infobip.com");
        assert_eq!(base.port(), 443);
        assert!(base.is_https());
    }

    #[test]
    fn keeps_explicit_port_and_lowercases_host() {
        let base = BaseUrl::new("HTTPS://API.Infobip.com:8443/").unwrap();
        assert_eq!(base.as_str(), "https://api.infobip.com:8443");
        assert_eq!(base.host(), "api.infobip.com");
        assert_eq!(base.port(), 8443);
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        assert!(err("").contains("empty"));
        assert!(err("https://api.infobip.com/sms").contains("path"));
        assert!(err("https://api.infobip.com?x=1").contains("query"));
        assert!(err("https://api.infobip.com/#top").contains("fragment"));
        assert!(err("https://user:pw@api.infobip.com").contains("user information"));
        assert!(err("ftp://api.infobip.com").contains("scheme"));
        assert!(err("https://").contains("no host"));
        assert!(err("https://api.infobip.com:").contains("port is not valid"));
        assert!(err("https://api.infobip.com:99999").contains("port is not valid"));
        assert!(err("https://api.infobip.com:0").contains("port is not valid"));
        assert!(err("https://bad host").contains("not valid"));
        assert!(err("https://),,:010").contains("DNS name"));
        assert!(err("https://a..b").contains("DNS name"));
        assert!(err("https://-a.com").contains("DNS name"));
        assert!(!err("https://user:pw@api.infobip.com").contains("pw"));
        let e = BaseUrl::new("https://a.com/x").unwrap_err();
        assert!(e.kind() == ErrorKind::InvalidBaseUrl);
    }

    #[test]
    fn http_needs_loopback_and_opt_in() {
        assert!(err("http://api.infobip.com").contains("unencrypted"));
        assert!(err("http://127.0.0.1:80").contains("insecure_loopback"));
        let e = BaseUrl::insecure_loopback("http://10.0.0.1").unwrap_err();
        assert!(e.to_string().contains("unencrypted"));
        for ok in [
            "http://127.0.0.1:9",
            "http://localhost",
            "http://[::1]:8080",
        ] {
            let base = BaseUrl::insecure_loopback(ok).unwrap();
            assert!(!base.is_https());
        }
        assert_eq!(
            BaseUrl::insecure_loopback("http://localhost")
                .unwrap()
                .port(),
            80
        );
    }

    #[test]
    fn matches_only_same_origin() {
        let base = BaseUrl::new("https://api.infobip.com").unwrap();
        let m = |s: &str| base.matches(&s.parse().unwrap());
        assert!(m("https://api.infobip.com/sms/2/text/advanced"));
        assert!(m("https://API.INFOBIP.COM:443/x"));
        assert!(!m("http://api.infobip.com/x"));
        assert!(!m("https://api.infobip.com:8443/x"));
        assert!(!m("https://evil.example/x"));
        assert!(!m("https://api.infobip.com.evil.example/x"));
        assert!(!m("/relative"));
        assert!(!m("https://user@api.infobip.com/x"));
        let explicit = BaseUrl::new("https://api.infobip.com:443").unwrap();
        assert!(explicit.matches(&"https://api.infobip.com/x".parse().unwrap()));
        let zeros = BaseUrl::new("https://api.infobip.com:0443").unwrap();
        assert_eq!(zeros.as_str(), "https://api.infobip.com");
        assert!(zeros.matches(&zeros.join("/x").unwrap()));
        assert!(zeros.matches(&"https://api.infobip.com:0443/x".parse().unwrap()));
        let custom = BaseUrl::new("https://api.infobip.com:8443").unwrap();
        assert!(!custom.matches(&"https://api.infobip.com/x".parse().unwrap()));
        assert!(custom.matches(&"https://Api.Infobip.com:8443/x".parse().unwrap()));
    }

    #[test]
    fn exact_origin_is_what_resolve_writes() {
        let base = BaseUrl::new("https://api.infobip.com").unwrap();
        let origin = |s: &str| base.origin_of(&s.parse().unwrap());
        let resolved = base.resolve(PathAndQuery::from_static("/x"));
        assert_eq!(base.origin_of(&resolved), Origin::Exact);
        assert_eq!(origin("https://api.infobip.com/x"), Origin::Exact);
        assert_eq!(origin("https://api.infobip.com:443/x"), Origin::Same);
        assert_eq!(origin("https://Api.infobip.com/x"), Origin::Same);
        assert_eq!(origin("http://api.infobip.com/x"), Origin::Other);
        let custom = BaseUrl::new("https://api.infobip.com:8443").unwrap();
        assert_eq!(
            custom.origin_of(&"https://api.infobip.com:8443/x".parse().unwrap()),
            Origin::Exact
        );
    }

    #[test]
    fn join_and_resolve() {
        let base = BaseUrl::insecure_loopback("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            base.join("/sms/2/text/advanced?a=b").unwrap(),
            "http://127.0.0.1:8080/sms/2/text/advanced?a=b"
        );
        assert!(base.join("sms").is_err());
    }
}
