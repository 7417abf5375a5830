//! Upcasters turn stored events of an older `event_version` into the shape the current code
//! reads, on load. Events are never edited in the store: a schema change adds an upcaster here.
//!
//! Every event type is at version 1.0, so the list is empty; the store already applies it to
//! every load and every log read, so a future change only adds an entry.

use cqrs_es::persist::EventUpcaster;

/// The upcasters of every aggregate, in the order they apply.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    Vec::new()
}
