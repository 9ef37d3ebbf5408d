//! API key management (`/settings/2/api-keys`) and automated rotation.
//!
//! Infobip manages API keys only for a request authenticated some other way
//! (Basic, an IBSSO session or an OAuth2 token), never with a key. So
//! [`ApiKeys`] sends through a service you give it, typically the crate's
//! own stack with [`Basic`](crate::Basic), [`Ibsso`](crate::Ibsso) or
//! [`OAuth2`](crate::OAuth2).
//!
//! [`KeyRotator`] creates a new key, switches a [`Rotating`](crate::Rotating)
//! source to it (every clone of the stack, no rebuild), and disables the old
//! key after a grace period.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), infobip_auth::AuthError> {
//! use std::time::Duration;
//! use infobip_auth::keys::{ApiKeys, NewApiKey};
//! use infobip_auth::{AuthLayer, BaseUrl, Basic};
//! use tower::Layer;
//! # let client = hyper_util::client::legacy::Client::builder(
//! #     hyper_util::rt::TokioExecutor::new(),
//! # ).build::<_, http_body_util::Full<bytes::Bytes>>(
//! #     hyper_util::client::legacy::connect::HttpConnector::new(),
//! # );
//!
//! let base = BaseUrl::new("xyz.api.infobip.com")?;
//! let admin = AuthLayer::new(base.clone(), Basic::new("username", "password")?).layer(client);
//! let keys = ApiKeys::new(base, admin);
//! let created = keys
//!     .create(&NewApiKey::new("sms-service").valid_for(Duration::from_secs(90 * 86_400)))
//!     .await?;
//! println!("created {}", created.info.id); // the secret never prints
//! for key in keys.list().await? {
//!     println!("{} {} enabled={}", key.id, key.name, key.enabled);
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod model;
mod rotate;

pub use client::ApiKeys;
pub use model::{ApiKeyInfo, ApiKeySecret, ApiKeyUpdate, CreatedApiKey, NewApiKey};
pub use rotate::{KeyRotator, Rotation};
