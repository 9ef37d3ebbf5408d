//! A platform sending for several customers, each with an Infobip account of
//! its own, through one stack: `AccountsLayer` picks each request's account
//! by the customer id in its extensions. One customer has an API key, two
//! have IBSSO sessions; all against the built-in fake Infobip server.
//!
//! ```text
//! cargo run --example many_accounts --features accounts,test-util
//! ```

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::accounts::{Account, AccountsLayer};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthError, BoxError, Ibsso};
use tower::{Layer, ServiceExt};

/// The platform's own customer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Customer(u32);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let fake = FakeInfobip::start().await?;
    let base = fake.base_url();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();

    // Where a real platform would read its customer directory or a vault.
    let login_client = client.clone();
    let resolver = move |customer: Customer| {
        let (base, client) = (base.clone(), login_client.clone());
        async move {
            println!("resolving the account of {customer:?}");
            match customer.0 {
                1 => Ok(Account::mixed(base, ApiKey::new(FakeInfobip::API_KEY)?)),
                2 | 3 => {
                    let user = (FakeInfobip::USERNAME, FakeInfobip::PASSWORD);
                    Ok(Account::session(
                        Ibsso::builder(base, user.0, user.1).build(client)?,
                    ))
                }
                _ => Err(AuthError::source_failed("no such customer", None)),
            }
        }
    };
    let infobip = AccountsLayer::new(resolver).layer(client);

    let mut ok = 0;
    for round in 0..3 {
        let sends = (1..=3).map(|id| {
            let mut request = Request::post("/sms/2/text/advanced")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(format!(r#"{{"round":{round}}}"#))))
                .expect("a valid request");
            request.extensions_mut().insert(Customer(id));
            infobip.clone().oneshot(request)
        });
        for response in futures_util::future::join_all(sends).await {
            ok += usize::from(response?.status().is_success());
        }
    }
    // The cache counts its entries as it tidies up.
    infobip.run_pending_tasks().await;
    println!(
        "{ok}/9 requests succeeded for 3 customers; {} accounts kept, {} logins",
        infobip.accounts(),
        fake.logins()
    );
    if ok != 9 || fake.logins() != 2 {
        return Err("every request should succeed, with one login per session".into());
    }
    Ok(())
}
