//! The scope cache's write side: the [`Invalidator`] actor applies invalidations one
//! at a time to the grant standings ([`ScopeCache`], a shared handle that lives in
//! `tokens::grant_standing` beside the verifier that reads it) and to the other
//! caches that remember something on a subject's behalf.

pub mod handle;
mod invalidator;

pub use invalidator::{Invalidate, Invalidator, Listen, Origin};

pub use crate::tokens::grant_standing::ScopeCache;
