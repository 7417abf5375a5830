//! Transmitters: the workers that drain the integration outbox into customers' systems, and
//! one client per channel.
//!
//! - [`worker`]: the loop (claim, build, send, record, settle) and [`run`], the `--workers`
//!   role of the service binary;
//! - [`channel`]: what a channel implements (plan requests, fetch tokens, classify answers);
//! - [`http`]: sending with a timeout, cached bearer tokens refreshed once on 401,
//!   `Retry-After`;
//! - [`limits`]: the token bucket and the circuit breaker per configuration;
//! - [`config`]: configuration settings and decrypted secrets, cached briefly;
//! - [`consent`]: the consent re-check at send time;
//! - [`lease`]: handing a row back uncounted, or cancelling it;
//! - [`record`]: outcomes as `TransmissionAttempted` events (the transmission audit);
//! - `directory`: the learner and content data requests need;
//! - channels: [`xapi`], [`degreed`], [`cornerstone`] (its pull endpoint:
//!   [`cornerstone::router`]; the learners' launch parameters: [`cornerstone_launch`]),
//!   [`sap`] (with the periodic unlinking of SAP's inactive students, [`sap::inactive`]);
//! - [`fakes`]: strict fake servers of the remote systems, for tests and by hand.

#![forbid(unsafe_code)]

pub mod channel;
mod channels;
pub mod config;
pub mod consent;
pub mod cornerstone;
pub mod cornerstone_launch;
pub mod degreed;
mod directory;
pub mod fakes;
pub mod http;
pub mod lease;
pub mod limits;
pub mod record;
pub mod sap;
pub mod worker;
pub mod xapi;

pub use worker::{run, TurnReport, Worker, WorkerError, WorkerOptions};
