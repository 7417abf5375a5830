//! Learners arrive from the LMS (registration, profile changes) or as emails an admin links
//! before the person has an account. Both end in the same learner id: the directory allocates
//! it for the email, and registration with that email claims it, completing the pending links.

use crate::command::{Appended, EventStore};
use crate::directory::{self, DirectoryError, LmsUser, Registered};
use crate::error::CommandError;
use crate::metadata::CommandMetadata;
use domain::ids::{CustomerId, LearnerId};
use domain::membership::{
    membership_stream_id, LearnerMemberships, MembershipCommand, MembershipError,
};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LearnerServiceError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Membership(#[from] CommandError<MembershipError>),
}

impl LearnerServiceError {
    pub fn kind(&self) -> crate::error::FailureKind {
        match self {
            Self::Directory(e) => e.kind(),
            Self::Membership(e) => e.kind(),
        }
    }
}

/// Records a learner the LMS reports; a learner invited by email before registering gets the
/// memberships the invitations asked for.
pub async fn register(
    store: &EventStore,
    user: &LmsUser,
    meta: &CommandMetadata,
) -> Result<Registered, LearnerServiceError> {
    let registered = directory::register(store.pool(), user).await?;
    complete_pending_links(store, registered.learner_id, meta).await?;
    Ok(registered)
}

/// Turns the learner's pending links into memberships (nothing when there are none). Safe to
/// repeat: it is how a registration interrupted between its two steps is finished.
pub async fn complete_pending_links(
    store: &EventStore,
    learner_id: LearnerId,
    meta: &CommandMetadata,
) -> Result<Appended, LearnerServiceError> {
    let command = MembershipCommand::CompletePendingLinks { learner_id };
    Ok(store
        .execute::<LearnerMemberships>(&membership_stream_id(learner_id), command, &(), meta)
        .await?)
}

/// Links the person with this email to a customer: a registered learner is linked (and made
/// active, as edX's `link_user` does); an unknown email gets a pending link that registration
/// completes.
pub async fn link_by_email(
    store: &EventStore,
    customer_id: CustomerId,
    email: &str,
    meta: &CommandMetadata,
) -> Result<(LearnerId, Appended), LearnerServiceError> {
    let learner = directory::learner_for_email(store.pool(), email).await?;
    let learner_id = learner.id();
    let command = if learner.is_registered() {
        MembershipCommand::LinkLearner {
            learner_id,
            customer_id,
            activate: true,
        }
    } else {
        MembershipCommand::RequestPendingLink {
            learner_id,
            customer_id,
        }
    };
    let appended = store
        .execute::<LearnerMemberships>(&membership_stream_id(learner_id), command, &(), meta)
        .await?;
    Ok((learner_id, appended))
}
