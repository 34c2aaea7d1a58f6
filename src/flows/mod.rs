//! The application layer: one module per capability (access, exchange, login, grants,
//! registration). A flow takes a typed request and returns a typed outcome or its own
//! error; it knows nothing of HTTP (no actix-web types), so `http/` and `gateway/` are
//! thin adapters over it and the same use case has one home whichever door it came
//! through. Flows are built by the composition root (`server.rs`) from slices of the
//! configuration and the actors' handles, and each is registered as its own
//! `web::Data`, so a handler receives only the flow it calls.

pub mod access;
pub mod addresses;
pub mod admin;
pub mod clients;
pub mod exchange;
pub mod grants;
pub mod limits;
pub mod login;
pub mod readiness;
pub mod registration;
