//! The invalidation actor: applies invalidations one at a time to every cache that
//! remembers something on a subject's behalf — grant standings, verified tokens,
//! introspection answers, exchanged tokens — and tells the other replicas.
//!
//! Invalidations come from revocation and refresh-token reuse detection, from
//! `POST /admin/invalidate` ([`Origin::Local`]: passed on to [`Peers`]) and from other
//! replicas through a stream given with [`Listen`] ([`Origin::Peer`]: applied, never
//! passed on, so nothing echoes).

use std::sync::Arc;

use actix::prelude::*;
use futures_util::stream::BoxStream;

use crate::actors::exchange::Exchanger;
use crate::domain::invalidation::Invalidation;
use crate::store::Peers;
use crate::telemetry::metrics::Metrics;
use crate::tokens::Verifier;
use crate::tokens::grant_standing::ScopeCache;

/// Where an invalidation was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// On this replica: the other replicas must hear of it.
    Local,
    /// On another replica, which has told the others already.
    Peer,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Peer => "peer",
        }
    }
}

/// Applies `what`; answered once every local cache has dropped what it covers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Invalidate {
    pub what: Invalidation,
    pub origin: Origin,
}

/// Invalidations decided by other replicas, applied as they arrive.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Listen(pub BoxStream<'static, Invalidation>);

pub struct Invalidator {
    scopes: ScopeCache,
    verifier: Verifier,
    exchanger: Exchanger,
    metrics: Metrics,
    peers: Option<Arc<dyn Peers>>,
}

impl Invalidator {
    pub fn new(
        scopes: ScopeCache,
        verifier: Verifier,
        exchanger: Exchanger,
        metrics: Metrics,
    ) -> Self {
        Self {
            scopes,
            verifier,
            exchanger,
            metrics,
            peers: None,
        }
    }

    pub fn with_peers(mut self, peers: Arc<dyn Peers>) -> Self {
        self.peers = Some(peers);
        self
    }

    /// The work of one invalidation, for `ctx.wait` (so the next waits for it).
    fn apply(&self, what: Invalidation, origin: Origin) -> impl Future<Output = ()> + 'static {
        tracing::info!(kind = what.kind(), origin = origin.label(), invalidation = ?what, "invalidating cached grants and tokens");
        self.metrics.invalidation(what.kind(), origin.label());
        if origin == Origin::Local
            && let Some(peers) = &self.peers
        {
            peers.publish(&what);
        }
        // A grant's tokens are checked against its standing on every use, so only the
        // standing goes; a subject, client or everything also drops what was verified
        // or exchanged for them (an introspected token is asked about again).
        if !matches!(what, Invalidation::GrantId(_)) {
            self.verifier.invalidate(&what);
            self.exchanger.invalidate(&what);
        }
        let scopes = self.scopes.clone();
        async move { scopes.invalidate(&what).await }
    }
}

impl Actor for Invalidator {
    type Context = Context<Self>;
}

impl Handler<Invalidate> for Invalidator {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Invalidate, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.apply(msg.what, msg.origin).into_actor(self))
    }
}

impl Handler<Listen> for Invalidator {
    type Result = ();

    fn handle(&mut self, msg: Listen, ctx: &mut Context<Self>) {
        ctx.add_stream(msg.0);
    }
}

impl StreamHandler<Invalidation> for Invalidator {
    fn handle(&mut self, what: Invalidation, ctx: &mut Context<Self>) {
        ctx.wait(self.apply(what, Origin::Peer).into_actor(self));
    }

    fn finished(&mut self, _: &mut Context<Self>) {
        tracing::warn!("the stream of invalidations from other replicas ended");
    }
}
