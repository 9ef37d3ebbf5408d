//! Live rotation: replacing the key while 1,000 requests are in flight.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{authed, send, sms};
use http::StatusCode;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, Rotating};

const NEW_KEY: &str = "rotated-api-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_mid_flight_gives_each_request_the_old_or_the_new_key_whole() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.add_api_key(NEW_KEY);
    let key = Rotating::new(ApiKey::new(FakeInfobip::API_KEY).unwrap());
    let handle = key.clone();
    // Every clone of the stack shares the key.
    let service = authed(&fake, key);

    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let service = service.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let result = send(&service, sms("{}")).await;
                done.fetch_add(1, Ordering::SeqCst);
                result
            })
        })
        .collect();
    // Rotate once some requests have completed and many are still in flight.
    while done.load(Ordering::SeqCst) < 100 {
        tokio::task::yield_now().await;
    }
    handle.rotate_api_key(NEW_KEY).unwrap();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().0, StatusCode::OK);
    }
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);

    let old = format!("App {}", FakeInfobip::API_KEY);
    let new = format!("App {NEW_KEY}");
    let seen = fake.authorizations();
    assert_eq!(seen.len(), 1001);
    let (mut olds, mut news) = (0, 0);
    for value in &seen {
        let value = value.as_ref().unwrap().to_str().unwrap();
        if value == old {
            olds += 1;
        } else if value == new {
            news += 1;
        } else {
            panic!("a request carried neither key whole");
        }
    }
    println!("rotation: {olds} requests with the old key, {news} with the new");
    assert!(olds >= 100, "requests before the rotation used the old key");
    assert!(news >= 1, "requests after the rotation use the new key");
    assert_eq!(
        seen.last().unwrap().as_ref().unwrap().to_str().unwrap(),
        new,
        "a request after the rotation carries the new key"
    );
}
