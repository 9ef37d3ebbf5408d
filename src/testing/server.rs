use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::Uri;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::handlers::handle;
use super::state::{lock, State};
use crate::BaseUrl;

/// A fake Infobip server on 127.0.0.1; see the [module docs](super).
///
/// Stops when dropped.
pub struct FakeInfobip {
    addr: SocketAddr,
    pub(super) state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
    certificate: Option<Vec<u8>>,
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
        let state = Arc::new(Mutex::new(State::new(
            Self::API_KEY,
            Self::USERNAME,
            Self::PASSWORD,
        )));
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
