use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::BaseUrl;

/// How long an unused session lives on the fake server, as on Infobip.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// How long an OAuth access token lives by default (`expires_in`).
pub const OAUTH_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

const UNAUTHORIZED_JSON: &str = r#"{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}"#;
const FORBIDDEN_JSON: &str =
    r#"{"requestError":{"serviceException":{"messageId":"FORBIDDEN","text":"Forbidden"}}}"#;

/// One request the authenticated endpoint accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The request path.
    pub path: String,
    /// The `x-request-id` header, if any.
    pub request_id: Option<String>,
    /// The scheme of the credential (`App`, `Basic`, `IBSSO`).
    pub scheme: String,
    /// The whole body as received.
    pub body: Bytes,
}

/// A fake Infobip server on 127.0.0.1; see the [module docs](super).
///
/// Stops when dropped.
pub struct FakeInfobip {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
    certificate: Option<Vec<u8>>,
}

struct State {
    api_keys: Vec<String>,
    users: HashMap<String, String>,
    sessions: HashMap<String, Instant>,
    /// OAuth access tokens and when each expires.
    oauth_tokens: HashMap<String, Instant>,
    oauth_lifetime: Duration,
    issued: Vec<String>,
    next_token: u64,
    idle_timeout: Duration,
    // knobs
    fail_logins: Vec<StatusCode>,
    login_latency: Duration,
    early_401: Vec<usize>,
    forbid: usize,
    drop_next: usize,
    fail_every: Option<(usize, StatusCode)>,
    redirects: HashMap<String, String>,
    /// How logins past a rate are answered 429.
    login_throttle: Option<Throttle>,
    /// The `Retry-After` a throttled or failed-429 login carries.
    retry_after: HeaderValue,
    // counters
    throttled: usize,
    logins: usize,
    failed_logins: usize,
    logouts: usize,
    rejected: usize,
    accepted: Vec<Accepted>,
    authorizations: Vec<Option<HeaderValue>>,
    dropped: usize,
    attempts: HashMap<String, usize>,
    connections: usize,
    /// Keys made through `/settings/2/api-keys`.
    managed: super::keys::Keys,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeInfobip {
    /// The API key the server accepts (`App test-api-key`).
    pub const API_KEY: &'static str = "test-api-key";
    /// The username it accepts for Basic and for logins.
    pub const USERNAME: &'static str = "test-user";
    /// The password that goes with [`USERNAME`](Self::USERNAME).
    pub const PASSWORD: &'static str = "test-password";

    /// Binds an ephemeral port on 127.0.0.1 and serves until dropped.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::bind(None).await
    }

    /// Like [`start`](Self::start), but serves HTTPS with a self-signed
    /// certificate for `127.0.0.1` and `localhost` made now; clients trust
    /// it through [`tls_certificate_der`](Self::tls_certificate_der).
    ///
    /// # Errors
    ///
    /// If the certificate cannot be made or the port cannot be bound.
    pub async fn start_tls() -> std::io::Result<Self> {
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use tokio_rustls::rustls::{crypto, ServerConfig};

        let other = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .map_err(|e| other(&e))?;
        let cert = certified.cert.der().to_vec();
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| other(&e))?
                .with_no_client_auth()
                .with_single_cert(vec![CertificateDer::from(cert.clone())], key)
                .map_err(|e| other(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::bind(Some((TlsAcceptor::from(Arc::new(config)), cert))).await
    }

    async fn bind(tls: Option<(TlsAcceptor, Vec<u8>)>) -> std::io::Result<Self> {
        // A long accept queue: a fleet of processes opening thousands of
        // connections at once overflows the default 1,024, and the kernel
        // then resets connections their clients think are open.
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((std::net::Ipv4Addr::LOCALHOST, 0).into())?;
        let listener: TcpListener = socket.listen(8192)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            api_keys: vec![Self::API_KEY.to_owned()],
            users: HashMap::from([(Self::USERNAME.to_owned(), Self::PASSWORD.to_owned())]),
            sessions: HashMap::new(),
            oauth_tokens: HashMap::new(),
            oauth_lifetime: OAUTH_TOKEN_LIFETIME,
            issued: Vec::new(),
            managed: Default::default(),
            next_token: 0,
            idle_timeout: SESSION_IDLE_TIMEOUT,
            fail_logins: Vec::new(),
            login_latency: Duration::ZERO,
            early_401: Vec::new(),
            forbid: 0,
            drop_next: 0,
            fail_every: None,
            redirects: HashMap::new(),
            login_throttle: None,
            retry_after: HeaderValue::from_static("1"),
            throttled: 0,
            dropped: 0,
            attempts: HashMap::new(),
            connections: 0,
            logins: 0,
            failed_logins: 0,
            logouts: 0,
            rejected: 0,
            accepted: Vec::new(),
            authorizations: Vec::new(),
        }));
        let (acceptor, certificate) = match tls {
            Some((acceptor, certificate)) => (Some(acceptor), Some(certificate)),
            None => (None, None),
        };
        let task = tokio::spawn(accept_loop(listener, acceptor, state.clone()));
        Ok(Self {
            addr,
            state,
            task,
            certificate,
        })
    }

    /// The DER bytes of the server's certificate, when it serves HTTPS.
    pub fn tls_certificate_der(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }

    fn scheme(&self) -> &'static str {
        if self.certificate.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (`https://` from [`start_tls`](Self::start_tls))
    /// as a [`BaseUrl`].
    pub fn base_url(&self) -> BaseUrl {
        BaseUrl::insecure_loopback(&format!("{}://{}", self.scheme(), self.addr))
            .expect("a loopback address is a valid base URL")
    }

    /// The absolute URI of `path` on this server.
    ///
    /// # Panics
    ///
    /// If `path` is not a valid URI path (this is a test helper).
    pub fn uri(&self, path: &str) -> Uri {
        format!("{}://{}{}", self.scheme(), self.addr, path)
            .parse()
            .expect("path must be a valid URI path")
    }

    /// Accepts another API key.
    pub fn add_api_key(&self, key: &str) {
        lock(&self.state).api_keys.push(key.to_owned());
    }

    /// Ends every session and OAuth access token now, as if they had all
    /// expired.
    pub fn revoke_sessions(&self) {
        let mut state = lock(&self.state);
        state.sessions.clear();
        state.oauth_tokens.clear();
    }

    /// Sets the lifetime of OAuth access tokens issued from now on (default
    /// [`OAUTH_TOKEN_LIFETIME`]), at most a year.
    pub fn set_oauth_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state).oauth_lifetime = lifetime.min(Duration::from_secs(366 * 86_400));
    }

    /// Answers the next `n` logins with `status` (a 429 carries
    /// `Retry-After: 1`).
    pub fn fail_next_logins(&self, n: usize, status: StatusCode) {
        lock(&self.state)
            .fail_logins
            .extend(std::iter::repeat_n(status, n));
    }

    /// Answers 429 with `Retry-After: 1` to logins past `per_second`, as
    /// Infobip throttles its login and token endpoints: a bucket of
    /// `per_second` logins, refilled at that rate.
    pub fn throttle_logins(&self, per_second: u32) {
        let rate = f64::from(per_second);
        lock(&self.state).login_throttle = Some(Throttle::Bucket {
            rate,
            tokens: rate,
            refilled: Instant::now(),
        });
    }

    /// Answers 429 to a login when `per_second` logins arrived in the
    /// second before it: a limiter that counts a sliding second, the
    /// strictest reading of "so many a second".
    pub fn throttle_logins_sliding(&self, per_second: u32) {
        lock(&self.state).login_throttle = Some(Throttle::Sliding {
            limit: per_second as usize,
            arrivals: std::collections::VecDeque::new(),
        });
    }

    /// The `Retry-After` value 429 login answers carry from now on
    /// (default `1`), taken as it is: a server's extreme values included.
    pub fn set_login_retry_after(&self, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            lock(&self.state).retry_after = value;
        }
    }

    /// Logins answered 429 by [`throttle_logins`](Self::throttle_logins).
    pub fn throttled_logins(&self) -> usize {
        lock(&self.state).throttled
    }

    /// Sets the daily limit on creating and updating API keys (default 40,
    /// Infobip's); counts changes made so far.
    pub fn set_key_change_limit(&self, limit: usize) {
        lock(&self.state).managed.limit = Some(limit);
    }

    /// Answers the next `n` key creations or updates with `status`.
    pub fn fail_next_key_changes(&self, n: usize, status: StatusCode) {
        lock(&self.state)
            .managed
            .fail_changes
            .extend(std::iter::repeat_n(status, n));
    }

    /// Answers the next `n` key updates (and so disables) with `status`.
    pub fn fail_next_key_updates(&self, n: usize, status: StatusCode) {
        lock(&self.state)
            .managed
            .fail_updates
            .extend(std::iter::repeat_n(status, n));
    }

    /// Answers the next key creation with `secret` as its `apiKeySecret`
    /// (any JSON: a number, `null`, a string no header can carry); the key
    /// is created and enabled all the same.
    pub fn answer_next_creation_with_secret(&self, secret: serde_json::Value) {
        lock(&self.state).managed.created_secrets.push(secret);
    }

    /// Key creations and updates made through `/settings/2/api-keys`.
    pub fn key_changes(&self) -> usize {
        lock(&self.state).managed.changes
    }

    /// Delays every login answer by `latency`.
    pub fn set_login_latency(&self, latency: Duration) {
        lock(&self.state).login_latency = latency;
    }

    /// Sets how long an unused session lives (default [`SESSION_IDLE_TIMEOUT`]).
    pub fn set_session_idle_timeout(&self, timeout: Duration) {
        lock(&self.state).idle_timeout = timeout;
    }

    /// Answers the next `n` authenticated requests 401 after reading only
    /// `read_bytes` of their body (whatever their credential).
    pub fn reject_early(&self, n: usize, read_bytes: usize) {
        lock(&self.state)
            .early_401
            .extend(std::iter::repeat_n(read_bytes, n));
    }

    /// Answers the next `n` authenticated requests 403, as Infobip does for a
    /// credential that lacks a permission.
    pub fn forbid_next(&self, n: usize) {
        lock(&self.state).forbid += n;
    }

    /// Answers every request for `path` with `307 Temporary Redirect` to
    /// `location` (recording its `Authorization` first, like any request).
    pub fn redirect(&self, path: &str, location: &str) {
        lock(&self.state)
            .redirects
            .insert(path.to_owned(), location.to_owned());
    }

    /// Closes the connection of the next `n` authenticated requests without
    /// answering or processing them.
    pub fn drop_next(&self, n: usize) {
        lock(&self.state).drop_next += n;
    }

    /// Answers every `n`-th login with `status` from now on (`n` = 0 stops).
    pub fn fail_every_nth_login(&self, n: usize, status: StatusCode) {
        lock(&self.state).fail_every = (n > 0).then_some((n, status));
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }

    /// Authenticated requests whose connection was dropped unanswered.
    pub fn dropped(&self) -> usize {
        lock(&self.state).dropped
    }

    /// How many times each `x-request-id` reached the authenticated
    /// endpoint, whatever the outcome.
    pub fn attempts_by_request_id(&self) -> HashMap<String, usize> {
        lock(&self.state).attempts.clone()
    }

    /// Login requests received (`/auth/1/session` and
    /// `/auth/1/oauth2/token`), successful or not.
    pub fn logins(&self) -> usize {
        lock(&self.state).logins
    }

    /// Login requests answered with an error.
    pub fn failed_logins(&self) -> usize {
        lock(&self.state).failed_logins
    }

    /// Sessions ended by `DELETE /auth/1/session`.
    pub fn logouts(&self) -> usize {
        lock(&self.state).logouts
    }

    /// Requests the authenticated endpoint answered 401 or 403.
    pub fn rejected(&self) -> usize {
        lock(&self.state).rejected
    }

    /// Requests the authenticated endpoint accepted.
    pub fn accepted(&self) -> usize {
        lock(&self.state).accepted.len()
    }

    /// Every accepted request, in order, with its body.
    pub fn accepted_requests(&self) -> Vec<Accepted> {
        lock(&self.state).accepted.clone()
    }

    /// The `Authorization` header of every request to the authenticated
    /// endpoint, accepted or not, exactly as received.
    pub fn authorizations(&self) -> Vec<Option<HeaderValue>> {
        lock(&self.state).authorizations.clone()
    }

    /// Every session token issued so far (for tests that check no token
    /// leaks anywhere).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state).issued.clone()
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        let mut state = lock(&self.state);
        state.expire_sessions();
        state.sessions.len()
    }
}

impl Drop for FakeInfobip {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for FakeInfobip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeInfobip")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<Mutex<State>>) {
    // Connections live in the set, so stopping the loop stops them too.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // Small request/response exchanges: do not wait on Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        lock(&state).connections += 1;
        let state = state.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve(TokioIo::new(stream), state).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(TokioIo::new(stream), state).await;
                    }
                }
            }
        });
    }
}

async fn serve<I>(io: I, state: Arc<Mutex<State>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move {
            handle(&state, request).await.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "fault injected")
            })
        }
    });
    // HTTP/1.1, and HTTP/2 (prior knowledge or ALPN) for clients that need
    // thousands of concurrent requests on one connection.
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A renewal storm cancels thousands of rejected responses on one
    // connection; that is the client's right, not an attack.
    builder.http2().max_local_error_reset_streams(None);
    let _ = builder.serve_connection(io, service).await;
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer to `request`, or `None` to drop the connection unanswered.
async fn handle(state: &Mutex<State>, request: Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let path = request.uri().path().to_owned();
    let redirect = {
        let mut state = lock(state);
        let location = state.redirects.get(&path).cloned();
        if location.is_some() {
            state
                .authorizations
                .push(request.headers().get(AUTHORIZATION).cloned());
        }
        location
    };
    if let Some(location) = redirect {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        if let Ok(location) = HeaderValue::from_str(&location) {
            response
                .headers_mut()
                .insert(http::header::LOCATION, location);
        }
        return Some(response);
    }
    match (request.method(), path.as_str()) {
        (&Method::POST, "/auth/1/session") => Some(login(state, request, Login::Session).await),
        (&Method::POST, "/auth/1/oauth2/token") => Some(login(state, request, Login::OAuth).await),
        (&Method::DELETE, "/auth/1/session") => Some(logout(state, &request)),
        (_, "/settings/2/api-keys") => Some(manage_keys(state, request, None).await),
        (_, p) if p.starts_with("/settings/2/api-keys/") => {
            let id = p["/settings/2/api-keys/".len()..].to_owned();
            Some(manage_keys(state, request, Some(id)).await)
        }
        _ => authenticated(state, request, path).await,
    }
}

/// A login limiter of one of the kinds servers run.
enum Throttle {
    /// A bucket of `rate` tokens, refilled at that rate.
    Bucket {
        rate: f64,
        tokens: f64,
        refilled: Instant,
    },
    /// At most `limit` logins in any second.
    Sliding {
        limit: usize,
        arrivals: std::collections::VecDeque<Instant>,
    },
}

impl Throttle {
    /// Whether a login arriving now is let through.
    fn admit(&mut self) -> bool {
        let now = Instant::now();
        match self {
            Self::Bucket {
                rate,
                tokens,
                refilled,
            } => {
                *tokens = (*tokens + *rate * (now - *refilled).as_secs_f64()).min(*rate);
                *refilled = now;
                let admitted = *tokens >= 1.0;
                if admitted {
                    *tokens -= 1.0;
                }
                admitted
            }
            Self::Sliding { limit, arrivals } => {
                while arrivals
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
                {
                    arrivals.pop_front();
                }
                let admitted = arrivals.len() < *limit;
                if admitted {
                    arrivals.push_back(now);
                }
                admitted
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Login {
    Session,
    OAuth,
}

/// `client_id`, `client_secret` from a form body with
/// `grant_type=client_credentials`.
fn oauth_fields(body: &[u8]) -> Option<(String, String)> {
    let mut fields: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if fields.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return None;
    }
    Some((fields.remove("client_id")?, fields.remove("client_secret")?))
}

async fn login(
    state: &Mutex<State>,
    request: Request<Incoming>,
    kind: Login,
) -> Response<Full<Bytes>> {
    let credentials_in_query = request.uri().query().is_some();
    let (failure, latency) = {
        let mut state = lock(state);
        state.logins += 1;
        let mut failure = (!state.fail_logins.is_empty()).then(|| state.fail_logins.remove(0));
        if let Some((every, status)) = state.fail_every {
            if failure.is_none() && state.logins % every == 0 {
                failure = Some(status);
            }
        }
        let admitted = state.login_throttle.as_mut().is_none_or(Throttle::admit);
        if !admitted && failure.is_none() {
            failure = Some(StatusCode::TOO_MANY_REQUESTS);
            state.throttled += 1;
        }
        (failure, state.login_latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let body = request.into_body().collect().await.map(|b| b.to_bytes());
    if let Some(status) = failure {
        lock(state).failed_logins += 1;
        let mut response = json(
            status,
            r#"{"requestError":{"serviceException":{"messageId":"FAILED","text":"Injected failure"}}}"#,
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = lock(state).retry_after.clone();
            response.headers_mut().insert(RETRY_AFTER, retry_after);
        }
        return response;
    }
    let fields = body.ok().and_then(|b| match kind {
        Login::Session => serde_json::from_slice::<serde_json::Value>(&b)
            .ok()
            .and_then(|v| {
                let user = v.get("username")?.as_str()?.to_owned();
                let pass = v.get("password")?.as_str()?.to_owned();
                Some((user, pass))
            }),
        Login::OAuth => oauth_fields(&b),
    });
    let mut state = lock(state);
    let valid = !credentials_in_query
        && fields
            .as_ref()
            .is_some_and(|(user, pass)| state.users.get(user) == Some(pass));
    if !valid {
        state.failed_logins += 1;
        return json(StatusCode::UNAUTHORIZED, UNAUTHORIZED_JSON);
    }
    state.next_token += 1;
    let prefix = if kind == Login::OAuth {
        "oauth"
    } else {
        "fake"
    };
    let token = format!(
        "{:08x}-{prefix}-{:016x}",
        state.next_token,
        rand_suffix(state.next_token)
    );
    state.issued.push(token.clone());
    match kind {
        Login::Session => {
            state.sessions.insert(token.clone(), Instant::now());
            json(StatusCode::OK, format!(r#"{{"token":"{token}"}}"#))
        }
        Login::OAuth => {
            let lifetime = state.oauth_lifetime;
            // Bounded: the setter clamps the lifetime to a year.
            state
                .oauth_tokens
                .insert(token.clone(), Instant::now() + lifetime);
            json(
                StatusCode::OK,
                format!(
                    r#"{{"access_token":"{token}","expires_in":{},"token_type":"Bearer"}}"#,
                    lifetime.as_secs()
                ),
            )
        }
    }
}

/// Token bytes that differ between runs of one server, so tests cannot
/// depend on them.
fn rand_suffix(n: u64) -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17)
}

fn logout(state: &Mutex<State>, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut state = lock(state);
    state.expire_sessions();
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("IBSSO "));
    match token {
        Some(token) if state.sessions.remove(token).is_some() => {
            state.logouts += 1;
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        _ => json(StatusCode::UNAUTHORIZED, UNAUTHORIZED_JSON),
    }
}

impl State {
    fn expire_sessions(&mut self) {
        let now = Instant::now();
        let idle = self.idle_timeout;
        self.sessions
            .retain(|_, last| now.saturating_duration_since(*last) < idle);
    }

    /// Whether `value` is a credential this server accepts; slides the
    /// session's idle clock when it is a session.
    fn authorize(&mut self, value: Option<&HeaderValue>) -> Option<String> {
        let value = value?.to_str().ok()?;
        let (scheme, credential) = value.split_once(' ')?;
        let ok = match scheme {
            "App" => {
                self.api_keys.iter().any(|k| k == credential)
                    || self
                        .managed
                        .keys
                        .iter()
                        .any(|k| k.secret == credential && k.works())
            }
            "Basic" => STANDARD
                .decode(credential)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| {
                    let (user, pass) = pair.split_once(':')?;
                    Some(self.users.get(user).is_some_and(|p| p == pass))
                })
                .unwrap_or(false),
            "Bearer" => {
                let now = Instant::now();
                self.oauth_tokens.retain(|_, expires| now < *expires);
                self.oauth_tokens.contains_key(credential)
            }
            "IBSSO" => {
                self.expire_sessions();
                match self.sessions.get_mut(credential) {
                    Some(last) => {
                        *last = Instant::now();
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        };
        ok.then(|| scheme.to_owned())
    }
}

/// `/settings/2/api-keys`: Basic, a session or a token may manage keys;
/// an API key may not (403).
async fn manage_keys(
    state: &Mutex<State>,
    request: Request<Incoming>,
    id: Option<String>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut state = lock(state);
    match state.authorize(parts.headers.get(AUTHORIZATION)).as_deref() {
        None => json(StatusCode::UNAUTHORIZED, UNAUTHORIZED_JSON),
        Some("App") => json(StatusCode::FORBIDDEN, FORBIDDEN_JSON),
        Some(_) => {
            let (status, answer) = state.managed.handle(&parts.method, id.as_deref(), &body);
            json(status, answer)
        }
    }
}

async fn authenticated(
    state: &Mutex<State>,
    request: Request<Incoming>,
    path: String,
) -> Option<Response<Full<Bytes>>> {
    let (parts, mut body) = request.into_parts();
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (early, forbid, scheme) = {
        let mut state = lock(state);
        if let Some(id) = &request_id {
            *state.attempts.entry(id.clone()).or_default() += 1;
        }
        if state.drop_next > 0 {
            state.drop_next -= 1;
            state.dropped += 1;
            return None;
        }
        state
            .authorizations
            .push(parts.headers.get(AUTHORIZATION).cloned());
        let early = (!state.early_401.is_empty()).then(|| state.early_401.remove(0));
        let forbid = early.is_none() && state.forbid > 0;
        if forbid {
            state.forbid -= 1;
        }
        let scheme = state.authorize(parts.headers.get(AUTHORIZATION));
        (early, forbid, scheme)
    };
    if let Some(limit) = early {
        let mut read = 0;
        while read < limit {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
        lock(state).rejected += 1;
        return Some(json(StatusCode::UNAUTHORIZED, UNAUTHORIZED_JSON));
    }
    let Some(scheme) = scheme else {
        // Read the body first, as a server that checks credentials after
        // parsing the request does; the connection stays usable.
        while let Some(Ok(_)) = body.frame().await {}
        lock(state).rejected += 1;
        return Some(json(StatusCode::UNAUTHORIZED, UNAUTHORIZED_JSON));
    };
    if forbid {
        lock(state).rejected += 1;
        return Some(json(StatusCode::FORBIDDEN, FORBIDDEN_JSON));
    }
    let mut received = BytesMut::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    received.extend_from_slice(data);
                }
            }
            Err(_) => return Some(json(StatusCode::BAD_REQUEST, r#"{"error":"body"}"#)),
        }
    }
    let size = received.len();
    lock(state).accepted.push(Accepted {
        path,
        request_id,
        scheme,
        body: received.freeze(),
    });
    Some(json(StatusCode::OK, format!(r#"{{"received":{size}}}"#)))
}
