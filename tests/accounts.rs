//! Many accounts behind one stack, against FakeInfobip.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{hyper_client, HyperClient};
use futures_util::future::join_all;
use http::{Request, StatusCode};
use http_body_util::Full;
use infobip_auth::accounts::{Account, Accounts, AccountsLayer};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::ErrorKind;
use infobip_auth::{ApiKey, AuthError, Ibsso, UserSession};

/// Logins a second Infobip allows.
const INFOBIP_LOGIN_RATE: u32 = 10;
use tower::{Layer, ServiceExt};

/// A customer of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Customer(u32);

fn sms_for(customer: Option<Customer>) -> Request<Full<Bytes>> {
    let mut request = Request::post("/sms/2/text/advanced")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    if let Some(customer) = customer {
        request.extensions_mut().insert(customer);
    }
    request
}

type Resolver = Box<
    dyn Fn(Customer) -> futures_util::future::BoxFuture<'static, Result<Account, AuthError>>
        + Send
        + Sync,
>;

/// Every customer has an IBSSO session on the fake's account, logging in at
/// `rate` a second; `resolutions` counts the resolver's calls.
fn sessions(fake: &FakeInfobip, rate: Option<u32>, resolutions: Arc<AtomicUsize>) -> Resolver {
    let (base, client) = (fake.base_url(), hyper_client());
    Box::new(move |_customer| {
        resolutions.fetch_add(1, Ordering::SeqCst);
        let builder = Ibsso::builder(base.clone(), FakeInfobip::USERNAME, FakeInfobip::PASSWORD);
        let builder = match rate {
            Some(rate) => builder.login_rate(rate),
            None => builder,
        };
        let session = builder.build(client.clone());
        Box::pin(async move { Ok(Account::session(session?)) })
    })
}

async fn send(
    service: &Accounts<HyperClient, Customer, Resolver>,
    customer: Option<Customer>,
) -> Result<StatusCode, AuthError> {
    Ok(service.clone().oneshot(sms_for(customer)).await?.status())
}

/// Accounts started cold, three concurrent requests each: one resolution
/// and one login per account, and no 429 from a server that throttles
/// logins at the rate the client keeps.
async fn cold_start(accounts: u32, rate: Option<u32>) {
    let fake = FakeInfobip::start().await.unwrap();
    // Without a rate of the client's, the server throttles at Infobip's 10.
    fake.throttle_logins(rate.unwrap_or(INFOBIP_LOGIN_RATE));
    let resolutions = Arc::new(AtomicUsize::new(0));
    let service =
        AccountsLayer::new(sessions(&fake, rate, resolutions.clone())).layer(hyper_client());
    let requests = (0..accounts)
        .flat_map(|n| [n, n, n])
        .map(|n| send(&service, Some(Customer(n))));
    let statuses = join_all(requests).await;
    assert!(statuses.iter().all(|s| matches!(s, Ok(StatusCode::OK))));
    assert_eq!(
        resolutions.load(Ordering::SeqCst),
        accounts as usize,
        "one resolution per account"
    );
    assert_eq!(fake.logins(), accounts as usize, "one login per account");
    assert_eq!(fake.throttled_logins(), 0, "no 429");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_accounts_cost_one_login_each_and_no_429() {
    cold_start(1000, Some(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_accounts_at_the_default_login_rate_draw_no_429() {
    cold_start(15, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_account_is_logged_out_and_its_next_request_logs_in_again() {
    let fake = FakeInfobip::start().await.unwrap();
    let resolutions = Arc::new(AtomicUsize::new(0));
    let service = AccountsLayer::new(sessions(&fake, None, resolutions.clone()))
        .idle_timeout(Duration::from_millis(500))
        .layer(hyper_client());
    assert_eq!(
        send(&service, Some(Customer(1))).await.unwrap(),
        StatusCode::OK
    );
    assert_eq!(fake.logins(), 1);

    // The cache keeps real time.
    tokio::time::sleep(Duration::from_millis(800)).await;
    service.run_pending_tasks().await;
    assert_eq!(service.accounts(), 0, "evicted");
    for _ in 0..100 {
        if fake.logouts() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.logouts(),
        1,
        "DELETE /auth/1/session seen by the server"
    );

    assert_eq!(
        send(&service, Some(Customer(1))).await.unwrap(),
        StatusCode::OK
    );
    assert_eq!(resolutions.load(Ordering::SeqCst), 2);
    assert_eq!(fake.logins(), 2, "logged in again");
}

#[tokio::test]
async fn the_cache_never_holds_more_than_its_capacity() {
    let fake = FakeInfobip::start().await.unwrap();
    let base = fake.base_url();
    let resolver = move |_: Customer| {
        let base = base.clone();
        async move { Ok(Account::new(base, ApiKey::new(FakeInfobip::API_KEY)?)) }
    };
    let service = AccountsLayer::new(resolver)
        .max_accounts(10)
        .layer(hyper_client());
    for n in 0..50 {
        let response = service
            .clone()
            .oneshot(sms_for(Some(Customer(n))))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        service.run_pending_tasks().await;
        assert!(
            service.accounts() <= 10,
            "{} accounts kept",
            service.accounts()
        );
    }
}

#[tokio::test]
async fn a_request_without_an_account_fails_or_takes_the_default() {
    let fake = FakeInfobip::start().await.unwrap();
    let base = fake.base_url();
    let resolver = move |_: Customer| {
        let base = base.clone();
        async move { Ok(Account::new(base, ApiKey::new(FakeInfobip::API_KEY)?)) }
    };
    let layer = AccountsLayer::new(resolver);
    let error = layer
        .clone()
        .layer(hyper_client())
        .oneshot(sms_for(None))
        .await
        .unwrap_err();
    assert!(error.kind() == ErrorKind::NoAccount, "{error:?}");
    assert_eq!(fake.accepted() + fake.rejected(), 0, "nothing sent");

    let with_default = layer.default_key(Customer(0)).layer(hyper_client());
    let response = with_default.oneshot(sms_for(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A resolver's error reaches the request, and is not kept: the next
/// request for that account resolves again.
#[tokio::test]
async fn a_failed_resolution_fails_the_request_and_is_tried_again() {
    let fake = FakeInfobip::start().await.unwrap();
    let (base, calls) = (fake.base_url(), Arc::new(AtomicUsize::new(0)));
    let counted = calls.clone();
    let resolver = move |_: Customer| {
        let (base, n) = (base.clone(), counted.fetch_add(1, Ordering::SeqCst));
        async move {
            if n == 0 {
                return Err(AuthError::source_failed("directory unavailable", None));
            }
            Ok(Account::new(base, ApiKey::new(FakeInfobip::API_KEY)?))
        }
    };
    let service = AccountsLayer::new(resolver).layer(hyper_client());
    let error = service
        .clone()
        .oneshot(sms_for(Some(Customer(3))))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("directory unavailable"),
        "{error}"
    );
    let response = service.oneshot(sms_for(Some(Customer(3)))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A user's own session as an account: a 401 asks the user to log in again.
#[tokio::test]
async fn a_user_session_account_asks_for_a_new_login_on_401() {
    let fake = FakeInfobip::start().await.unwrap();
    let user = UserSession::login(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
        hyper_client(),
    )
    .await
    .unwrap();
    let resolver = move |_: Customer| {
        let user = user.clone();
        async move { Ok(Account::user(user)) }
    };
    let service = AccountsLayer::new(resolver).layer(hyper_client());
    let response = service
        .clone()
        .oneshot(sms_for(Some(Customer(9))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    fake.revoke_sessions();
    let error = service
        .oneshot(sms_for(Some(Customer(9))))
        .await
        .unwrap_err();
    assert!(
        error.kind() == ErrorKind::ReauthenticationRequired,
        "{error:?}"
    );
    assert_eq!(fake.logins(), 1);
}

/// Each account keeps the layer's promises: its credential only on its own
/// origin, a caller's own `Authorization` kept.
#[tokio::test]
async fn each_account_is_scoped_to_its_origin_and_keeps_a_callers_header() {
    let (one, two) = (
        FakeInfobip::start().await.unwrap(),
        FakeInfobip::start().await.unwrap(),
    );
    let bases = [one.base_url(), two.base_url()];
    let resolver = move |customer: Customer| {
        let base = bases[customer.0 as usize].clone();
        async move { Ok(Account::new(base, ApiKey::new(FakeInfobip::API_KEY)?)) }
    };
    let service = AccountsLayer::new(resolver).layer(hyper_client());

    // Customer 0's account, asked to send to the other origin: unstamped.
    let mut elsewhere = Request::get(two.uri("/sms/1/reports"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    elsewhere.extensions_mut().insert(Customer(0));
    service.clone().oneshot(elsewhere).await.unwrap();
    assert_eq!(two.authorizations(), vec![None]);

    // Customer 1's account, on its own origin, with the caller's own header
    // (a key the server does not know): sent as the caller set it.
    let mut own = sms_for(Some(Customer(1)));
    own.headers_mut()
        .insert("authorization", "App callers-own".parse().unwrap());
    let response = service.oneshot(own).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(two.authorizations()[1].as_ref().unwrap(), "App callers-own");
    assert!(one.authorizations().is_empty());
}

#[tokio::test]
async fn an_idle_timeout_of_duration_max_is_clamped_and_serves() {
    let fake = FakeInfobip::start().await.unwrap();
    let resolutions = Arc::new(AtomicUsize::new(0));
    let service = AccountsLayer::new(sessions(&fake, None, resolutions.clone()))
        .idle_timeout(Duration::MAX)
        .layer(hyper_client());
    for _ in 0..3 {
        let status = send(&service, Some(Customer(1))).await.unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(resolutions.load(Ordering::SeqCst), 1, "kept");
}
