//! [`KeyRotator`]: a new API key for a [`Rotating`](crate::Rotating)
//! source, the old one disabled after a grace period.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{ApiKeys, NewApiKey};
use crate::error::{AuthError, ErrorKind};
use crate::source::Rotating;

/// How long the old key keeps working after the switch, for requests
/// already stamped with it and for other holders of the key.
pub(crate) const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(5 * 60);
/// First wait before disabling the old key again; doubles per attempt.
const RETIRE_BACKOFF: Duration = Duration::from_secs(1);
/// Disabling attempts before the rotation reports the old key as live.
const RETIRE_ATTEMPTS: u32 = 6;

/// What a rotation did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Rotation {
    /// The id of the key the source uses now.
    pub new_key_id: String,
    /// The id of the key it replaced.
    pub old_key_id: String,
    /// Attempts made to disable the old key.
    pub disable_attempts: u32,
    /// Why the old key is still enabled, if every attempt failed: disable
    /// it yourself (`ApiKeys::disable`).
    pub disable_error: Option<AuthError>,
}

/// Rotates the API key of a [`Rotating`](crate::Rotating) source.
///
/// [`rotate`](Self::rotate) creates a key (from a template), switches the
/// source to it (every clone of the stack sees it on its next request, no
/// rebuild), waits the grace period, and disables the old key, retrying
/// with a doubling backoff. It never leaves the source without a working
/// key: if creating fails, the source keeps the old one.
pub struct KeyRotator {
    keys: ApiKeys,
    source: Rotating,
    template: NewApiKey,
    /// The validity of each new key, from its creation (None: Infobip's).
    lifetime: Option<Duration>,
    grace: Duration,
    retire_backoff: Duration,
    current: Mutex<String>,
    /// Held for a whole rotation: a second one waits for the first to end.
    rotating: tokio::sync::Mutex<()>,
}

impl KeyRotator {
    /// Rotates the key of `source` (a clone of the one the stack stamps
    /// from), whose current key has id `current_key_id`, managing keys
    /// through `keys`. New keys are made from `template` (name, IPs,
    /// permissions, scopes).
    pub fn new(
        keys: ApiKeys,
        source: Rotating,
        current_key_id: impl Into<String>,
        template: NewApiKey,
    ) -> Self {
        Self {
            keys,
            source,
            template,
            lifetime: None,
            grace: DEFAULT_ROTATION_GRACE,
            retire_backoff: RETIRE_BACKOFF,
            current: Mutex::new(current_key_id.into()),
            rotating: tokio::sync::Mutex::new(()),
        }
    }

    /// How long the old key keeps working after the switch (default
    /// 5 minutes).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Each new key is valid this long from its creation (clamped to at
    /// most a hundred years).
    pub fn key_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// The first wait before disabling the old key again after a failure
    /// (default 1 s; doubles per attempt, 6 attempts).
    pub fn disable_backoff(mut self, first: Duration) -> Self {
        self.retire_backoff = first;
        self
    }

    /// The id of the key the source uses.
    pub fn current_key_id(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Creates a key, switches the source to it, waits the grace period and
    /// disables the old key. Returns once the old key is disabled or every
    /// attempt failed (reported in [`Rotation::disable_error`]); spawn it to
    /// go on meanwhile. Rotations of one rotator run one at a time: a
    /// second call waits for the first to end, then rotates from the key
    /// the first left.
    ///
    /// # Errors
    ///
    /// The creation's error (see [`ApiKeys`]#errors); the source then keeps
    /// the old key. A new key whose secret is not a valid key is disabled,
    /// and the error names it.
    pub async fn rotate(&self) -> Result<Rotation, AuthError> {
        let _turn = self.rotating.lock().await;
        self.rotate_now().await
    }

    async fn rotate_now(&self) -> Result<Rotation, AuthError> {
        let mut template = self.template.clone();
        if let Some(lifetime) = self.lifetime {
            template = template.valid_for(lifetime);
        }
        let created = self.keys.create(&template).await.inspect_err(|error| {
            tracing::warn!(%error, "key rotation: creating the new key failed; the old key stays");
        })?;
        let new_key_id = created.info.id.clone();
        let key = match created.secret.api_key() {
            Ok(key) => key,
            Err(error) => {
                let error = AuthError::new(
                    ErrorKind::InvalidResponse,
                    format!("Infobip gave the new key a secret that is not a valid key ({error})"),
                );
                return Err(self.keys.abandon(&new_key_id, error).await);
            }
        };
        self.source.rotate(key);
        let old_key_id = std::mem::replace(
            &mut *self
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            new_key_id.clone(),
        );
        tracing::info!(new = %new_key_id, old = %old_key_id, "key rotation: switched to the new key");
        tokio::time::sleep(self.grace).await;

        let mut wait = self.retire_backoff;
        let mut attempts = 0;
        let disable_error = loop {
            attempts += 1;
            match self.keys.disable(&old_key_id).await {
                Ok(_) => {
                    tracing::info!(old = %old_key_id, "key rotation: disabled the old key");
                    break None;
                }
                Err(error) if attempts < RETIRE_ATTEMPTS => {
                    tracing::warn!(old = %old_key_id, %error, attempts, "key rotation: disabling the old key failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
                Err(error) => {
                    tracing::error!(old = %old_key_id, %error, attempts, "key rotation: the old key is still enabled");
                    break Some(error);
                }
            }
        };
        Ok(Rotation {
            new_key_id,
            old_key_id,
            disable_attempts: attempts,
            disable_error,
        })
    }

    /// Rotates if the current key stops working within `ahead` (its
    /// `validTo`, read from Infobip); `None` if it was not due.
    ///
    /// # Errors
    ///
    /// Reading the key's validity, or as [`rotate`](Self::rotate).
    pub async fn rotate_if_due(&self, ahead: Duration) -> Result<Option<Rotation>, AuthError> {
        // Checked in turn: after another rotation, it is the new key's due.
        let _turn = self.rotating.lock().await;
        let info = self.keys.get(&self.current_key_id()).await?;
        // The time left, compared with `ahead`: no sum, `ahead` may be any
        // duration.
        let due = info.valid_to.is_some_and(|valid_to| {
            valid_to
                .duration_since(SystemTime::now())
                .map_or(true, |left| left <= ahead)
        });
        if !due {
            return Ok(None);
        }
        tracing::info!(key = %info.id, "key rotation: the key expires soon");
        self.rotate_now().await.map(Some)
    }
}

impl fmt::Debug for KeyRotator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRotator")
            .field("current_key_id", &self.current_key_id())
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}
