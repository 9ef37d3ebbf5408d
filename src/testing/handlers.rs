//! How [`FakeInfobip`](super::FakeInfobip) answers each request.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::state::{lock, Accepted, State, Throttle, FORBIDDEN_JSON, UNAUTHORIZED_JSON};

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer to `request`, or `None` to drop the connection unanswered.
pub(super) async fn handle(
    state: &Mutex<State>,
    request: Request<Incoming>,
) -> Option<Response<Full<Bytes>>> {
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
