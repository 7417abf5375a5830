//! Read models that tail the global log, and the runner that keeps them up to date.
//!
//! - [`projection`]: the `Projection` trait a read model implements, and event decoding.
//! - [`copy`]: binary `COPY` of many rows, for the folds' writes and the outbox's new inputs.
//! - [`checkpoint`]: where each projection stands, advanced by compare-and-set in the same
//!   transaction as the projection's writes.
//! - [`runner`]: wait, read a batch, apply it and advance the checkpoint in one transaction,
//!   repeat; one active runner per projection across processes.
//! - [`rebuild`]: rebuilding a read model from zero, in place or into fresh tables then swapped;
//!   several in place together, with one read of the log.
//! - [`status`]: position, lag and last error of every projection.
//! - [`read_models`]: the read models.
//! - [`bench_log`]: a generated log of a realistic mix, for the benchmarks.
//!
//! The read models key their in-memory maps with `rustc_hash` (`FxHashMap`, `FxHashSet`): a
//! rebuild hashes every key of the log several times, and the standard library's DoS-resistant
//! hasher was a tenth of the enrollments' rebuild (README, Performance). Their keys are the ids
//! and content keys of logged events: keys crafted to collide could slow a rebuild down, not
//! change what it writes.

pub mod bench_log;
pub mod checkpoint;
pub mod copy;
pub mod projection;
pub mod read_models;
pub mod rebuild;
pub mod runner;
pub mod status;

pub use projection::{ApplyError, Projection};
