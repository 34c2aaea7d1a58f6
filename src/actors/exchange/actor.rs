//! The exchange actor: the bookkeeping of what is in flight. Each provider call — an
//! exchange miss, a grant's refresh — is a future spawned on the actor's context;
//! the handlers only record waiters and hand out answers, so the mailbox never waits
//! on the network.

use std::collections::HashMap;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, MessageResult, SpawnHandle,
    WrapFuture,
};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::cache::ExchangeCache;
use super::fetch::Fetcher;
use super::handle::{Exchanger, Exchanges};
use super::messages::{Abandon, Fetch, Refresh, Waiting};
use super::refresh::{Outcome, RefreshError, RefreshOnce, Refreshes};
use super::{Answer, ExchangeError};

/// Room for bursts of misses from every worker before senders wait.
const MAILBOX: usize = 1024;

/// One exchange miss in flight: who waits, and the call (to stop when nobody does).
struct Miss {
    waiters: Vec<oneshot::Sender<Answer>>,
    call: SpawnHandle,
}

/// Owns the misses and refresh flights in progress. Built with the exchanges' cache
/// and provider access, the refreshes' store and lock, or both.
pub struct ExchangeActor {
    exchanges: Option<(ExchangeCache, Fetcher)>,
    refreshes: Option<Refreshes>,
    misses: HashMap<[u8; 32], Miss>,
    flights: HashMap<String, Vec<oneshot::Sender<Outcome>>>,
}

impl ExchangeActor {
    /// One actor for both: the exchanges' misses and the grants' provider refreshes.
    /// Must run inside an actix `System`.
    pub fn start(exchanges: Exchanges, refreshes: Refreshes) -> (Exchanger, RefreshOnce) {
        let addr = Self::launch(Some(&exchanges), Some(&refreshes));
        (exchanges.handle(addr.clone()), refreshes.handle(addr))
    }

    pub(super) fn launch(
        exchanges: Option<&Exchanges>,
        refreshes: Option<&Refreshes>,
    ) -> Addr<Self> {
        Actor::start(Self {
            exchanges: exchanges.map(|e| (e.cache.clone(), e.fetcher.clone())),
            refreshes: refreshes.cloned(),
            misses: HashMap::new(),
            flights: HashMap::new(),
        })
    }

    /// A miss's answer: cached (a token), then handed to every waiter.
    fn landed(&mut self, key: [u8; 32], answer: Answer) {
        let Some(miss) = self.misses.remove(&key) else {
            return;
        };
        if let (Ok(token), Some((cache, _))) = (&answer, &self.exchanges) {
            cache.insert(key, token.clone());
        }
        for waiter in miss.waiters {
            // A waiter that went away has nothing to be told.
            let _ = waiter.send(answer.clone());
        }
    }
}

impl Actor for ExchangeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl Handler<Fetch> for ExchangeActor {
    type Result = MessageResult<Fetch>;

    fn handle(&mut self, msg: Fetch, ctx: &mut Self::Context) -> Self::Result {
        let Some((cache, fetcher)) = &self.exchanges else {
            let unset = ExchangeError::Unavailable("token exchange is not set up".to_owned());
            return MessageResult(Waiting::Ready(Err(unset)));
        };
        let key = msg.request.key;
        // A miss that landed since the caller looked: no second call.
        if let Some(hit) = cache.cached(&key) {
            fetcher.count_coalesced("local");
            return MessageResult(Waiting::Ready(Ok(hit)));
        }
        let (waiter, answer) = oneshot::channel();
        if let Some(miss) = self.misses.get_mut(&key) {
            miss.waiters.push(waiter);
            fetcher.count_coalesced("local");
            return MessageResult(Waiting::Pending(answer));
        }
        let fetch = fetcher.clone().fetch(msg.request).instrument(msg.span);
        // Polled once this handler returns, so the miss below is recorded first.
        let call = ctx.spawn(
            fetch
                .into_actor(self)
                .map(move |answer, actor, _| actor.landed(key, answer)),
        );
        let waiters = vec![waiter];
        self.misses.insert(key, Miss { waiters, call });
        MessageResult(Waiting::Pending(answer))
    }
}

impl Handler<Abandon> for ExchangeActor {
    type Result = ();

    fn handle(&mut self, msg: Abandon, ctx: &mut Self::Context) {
        let Some(miss) = self.misses.get_mut(&msg.key) else {
            return;
        };
        miss.waiters.retain(|waiter| !waiter.is_closed());
        if miss.waiters.is_empty()
            && let Some(miss) = self.misses.remove(&msg.key)
        {
            ctx.cancel_future(miss.call);
        }
    }
}

impl Handler<Refresh> for ExchangeActor {
    type Result = MessageResult<Refresh>;

    fn handle(&mut self, msg: Refresh, ctx: &mut Self::Context) -> Self::Result {
        let (waiter, outcome) = oneshot::channel();
        let Some(refreshes) = self.refreshes.clone() else {
            let unset = RefreshError::Unavailable("provider refreshes are not set up".to_owned());
            let _ = waiter.send(Err(unset));
            return MessageResult(outcome);
        };
        if let Some(waiters) = self.flights.get_mut(&msg.grant_id) {
            waiters.push(waiter);
            return MessageResult(outcome);
        }
        let grant_id = msg.grant_id.clone();
        // Not cancelled when its callers go away: a provider that rotated the refresh
        // token must have the new one stored, and the lock kept until then.
        ctx.spawn(
            refreshes
                .fly(msg.grant_id.clone(), msg.provider)
                .instrument(msg.span)
                .into_actor(self)
                .map(move |landed, actor, _| {
                    // Forgotten when it ends: a later caller starts afresh, reading
                    // the grant first.
                    for waiter in actor.flights.remove(&grant_id).unwrap_or_default() {
                        let _ = waiter.send(landed.clone());
                    }
                }),
        );
        self.flights.insert(msg.grant_id, vec![waiter]);
        MessageResult(outcome)
    }
}
