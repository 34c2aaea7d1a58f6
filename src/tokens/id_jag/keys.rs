//! Where an ID-JAG issuer's keys come from: the discovery snapshot when it is the
//! upstream provider, else its own JWKS (from `jwks_uri`, or the one its OpenID
//! Connect discovery document names) fetched once per TTL, one fetch at a time, and
//! again for an unknown `kid` at most once per refetch interval — so a flood of
//! assertions with made-up `kid`s costs the issuer one request per interval.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::{AssertionError, KeyTiming};
use crate::clock::{Clock, UnixSeconds};
use crate::config::Issuer;
use crate::upstream::discovery::discover;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::jwks::{self, KeySet, VerifyKey};
use crate::upstream::snapshot::SnapshotSource;

/// One issuer's keys.
pub(super) enum KeySource {
    Upstream(Arc<dyn SnapshotSource>),
    Remote(Box<RemoteKeys>),
}

/// An issuer's own JWKS, cached.
pub(super) struct RemoteKeys {
    issuer: Issuer,
    /// `None`: read from the issuer's discovery document at each fetch.
    jwks_uri: Option<String>,
    http: UpstreamHttp,
    clock: Clock,
    ttl: u64,
    refetch_interval: u64,
    current: ArcSwapOption<Fetched>,
    fetching: tokio::sync::Mutex<()>,
}

struct Fetched {
    keys: KeySet,
    at: UnixSeconds,
}

impl KeySource {
    pub(super) fn remote(
        issuer: Issuer,
        jwks_uri: Option<String>,
        http: UpstreamHttp,
        clock: Clock,
        timing: &KeyTiming,
    ) -> Self {
        Self::Remote(Box::new(RemoteKeys {
            issuer,
            jwks_uri,
            http,
            clock,
            ttl: timing.ttl.as_secs(),
            refetch_interval: timing.refetch_interval.as_secs(),
            current: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(()),
        }))
    }

    /// The key for `kid`, refetched once (rate-limited) when it is not known.
    pub(super) async fn find(
        &self,
        kid: Option<&str>,
    ) -> Result<Option<VerifyKey>, AssertionError> {
        match self {
            Self::Upstream(source) => {
                let snapshot = source
                    .current()
                    .await
                    .map_err(|_| AssertionError::KeysUnavailable)?;
                if let Some(key) = snapshot.keys.find(kid) {
                    return Ok(Some(key.clone()));
                }
                let Some(kid) = kid else { return Ok(None) };
                let snapshot = source
                    .refetched_for(kid)
                    .await
                    .map_err(|_| AssertionError::KeysUnavailable)?;
                Ok(snapshot.keys.find(Some(kid)).cloned())
            }
            Self::Remote(remote) => remote.find(kid).await,
        }
    }
}

impl RemoteKeys {
    async fn find(&self, kid: Option<&str>) -> Result<Option<VerifyKey>, AssertionError> {
        if let Some(fetched) = self.current.load_full()
            && self.clock.unix() < fetched.at.saturating_add(self.ttl)
            && let Some(key) = fetched.keys.find(kid)
        {
            return Ok(Some(key.clone()));
        }
        let _one_at_a_time = self.fetching.lock().await;
        let now = self.clock.unix();
        let held = self.current.load_full();
        if let Some(fetched) = &held {
            let fresh = now < fetched.at.saturating_add(self.ttl);
            if let Some(key) = fetched.keys.find(kid).filter(|_| fresh) {
                return Ok(Some(key.clone()));
            }
            // Fetched a moment ago (perhaps by the request we waited for): an unknown
            // `kid` does not make the issuer be asked again.
            if fresh && now < fetched.at.saturating_add(self.refetch_interval) {
                return Ok(None);
            }
        }
        match self.fetch().await {
            Ok(keys) => {
                let found = keys.find(kid).cloned();
                self.current
                    .store(Some(Arc::new(Fetched { keys, at: now })));
                Ok(found)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer.as_str(), %error, "cannot fetch the ID-JAG issuer's keys");
                Err(AssertionError::KeysUnavailable)
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, crate::upstream::UpstreamError> {
        let uri = match &self.jwks_uri {
            Some(uri) => uri.clone(),
            None => discover(&self.http, &self.issuer).await?.jwks_uri,
        };
        jwks::fetch(&self.http, &uri).await
    }
}
