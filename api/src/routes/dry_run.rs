//! Deciding a request's commands before writing any of them.
//!
//! A route that runs several commands (assigning codes to a list of emails, a change that also
//! sets secrets) or that writes beside the log first (encrypted secrets) would leave part of a
//! bad request behind if the third command were refused after the first two were appended. So
//! such a route first lets the aggregate decide every command on a copy of its current state;
//! only when all are accepted does it execute them for real. A concurrent writer can still
//! change the stream in between: the real execution then decides again and may refuse.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

/// The state after `commands`, each decided on the state the previous ones left, or the first
/// refusal with the index of the command refused.
pub async fn decide_all<A: Aggregate>(
    mut state: A,
    commands: impl IntoIterator<Item = A::Command>,
    services: &A::Services,
) -> Result<A, (usize, A::Error)> {
    for (i, command) in commands.into_iter().enumerate() {
        let sink = EventSink::default();
        // `write` applies each event to the state as it is decided.
        state
            .handle(command, services, &sink)
            .await
            .map_err(|e| (i, e))?;
    }
    Ok(state)
}
