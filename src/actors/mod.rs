//! The actors: state whose changes must be applied one at a time (a single refresh
//! that other callers wait on, lifecycles). Each folder holds the actor, its messages
//! and the small handle that HTTP handlers and hot paths use.

pub mod discovery;
pub mod exchange;
pub mod registration;
pub mod scopes;
pub mod sessions;
