//! Replicas of one service sharing one Infobip session through Redis: the
//! first to need a session logs in, the others take it from Redis, and
//! after a revocation one login serves them all again.
//!
//! Each replica here has its own client and session engine, as separate
//! processes would. Runs offline, against the built-in fake Infobip server
//! and a `redis-server` of its own on a loopback port (Debian:
//! `apt-get install redis-server`).
//!
//! ```text
//! cargo run --example fleet --features redis,test-util
//! ```

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::store::{RedisStore, SealingKey, SharedStore};
use infobip_auth::testing::{FakeInfobip, RedisServer};
use infobip_auth::{AuthLayer, BoxError, Ibsso};
use tower::{Layer, ServiceExt};

const REPLICAS: usize = 3;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let fake = FakeInfobip::start().await?;
    let redis = RedisServer::start()?;
    // In production: the same key on every replica, from a secret manager
    // (`SealingKey::from_base64`), never from Redis.
    let key = SealingKey::generate()?;

    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let shared = SharedStore::new(RedisStore::new(&redis.url())?, "sms-service", key.clone());
        let session = Ibsso::builder(
            fake.base_url(),
            FakeInfobip::USERNAME,
            FakeInfobip::PASSWORD,
        )
        // Replicas run on several hosts: the session must not be bound
        // to one host's IP.
        .bind_to_client_ip(false)
        .shared_store(shared)
        .build(client.clone())?;
        let service = AuthLayer::new(fake.base_url(), session.clone()).layer(client);
        replicas.push((service, session));
    }

    let send_round = |requests_each: usize| {
        let sends = replicas.iter().flat_map(|(service, _)| {
            (0..requests_each).map(move |_| {
                let request = Request::post("/sms/2/text/advanced")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .expect("a valid request");
                service.clone().oneshot(request)
            })
        });
        futures_util::future::join_all(sends)
    };
    let ok = |responses: Vec<Result<http::Response<_>, _>>| {
        responses
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.status() == StatusCode::OK))
            .count()
    };

    // One after the other: the first replica logs in, the others take its
    // session from Redis.
    for (i, (service, _)) in replicas.iter().enumerate() {
        let request =
            Request::post("/sms/2/text/advanced").body(Full::new(Bytes::from_static(b"{}")))?;
        let status = service.clone().oneshot(request).await?.status();
        println!(
            "replica {i}: {status}, logins at Infobip so far: {}",
            fake.logins()
        );
    }

    fake.revoke_sessions();
    println!("sessions revoked at Infobip");
    let answered = ok(send_round(100).await);
    println!(
        "{answered} of {} requests answered 200; logins at Infobip: {} in all",
        REPLICAS * 100,
        fake.logins()
    );
    for (i, (_, session)) in replicas.iter().enumerate() {
        let stats = session.stats();
        println!(
            "replica {i}: {} renewals, {} sessions taken from Redis, {} store errors",
            stats.renewals, stats.shared_hits, stats.store_errors
        );
    }
    if answered != REPLICAS * 100 || fake.logins() != 2 {
        return Err("expected every request answered and two logins in all".into());
    }
    Ok(())
}
