//! Read models that tail the global log (`store::log`): the projection runner, consent state,
//! catalog, learners, enrollments and reporting, and the integration outbox. Not built yet; the
//! crate exists so the workspace has its final shape.
