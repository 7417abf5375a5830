//! Enrolling a learner on behalf of a customer (admins, the enterprise API, the LMS): the
//! checks that span streams, then the enrollment itself.
//!
//! Checks, none of which writes: the customer exists and is active; the learner is linked to
//! it; one of its catalogs holds the published course run and enables the mode; the run offers
//! the mode. Without a mode, the best one the catalogs enable and the run offers is taken
//! (paid before audit). Consent is not checked here: edX asks for it on the learner's path
//! (landing page, code redemption), not when an administrator enrolls.

use crate::command::{Appended, EventStore};
use crate::error::{CommandError, Failure, FailureKind};
use crate::metadata::CommandMetadata;
use chrono::Utc;
use domain::content::{content_stream_id, ContentItem, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::{customer_stream_id, Customer};
use domain::enrollment::{
    enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentError, EnrollmentSource,
};
use domain::ids::{CourseRunId, CustomerId, LearnerId};
use domain::membership::{membership_stream_id, LearnerMemberships, MembershipState};
use thiserror::Error;

/// An enrollment to make.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    pub customer_id: CustomerId,
    pub learner_id: LearnerId,
    pub course_run_id: CourseRunId,
    /// `None`: the best mode available.
    pub mode: Option<CourseMode>,
    pub source: EnrollmentSource,
}

#[derive(Debug, Error)]
pub enum EnrollError {
    #[error("no such customer")]
    UnknownCustomer,
    #[error("the customer is inactive")]
    CustomerInactive,
    #[error("the learner is not linked to the customer")]
    NotLinked,
    #[error("course run {0} is not in any of the customer's catalogs")]
    CourseNotInCatalog(String),
    #[error("no catalog holding the course run offers mode '{0}'")]
    ModeNotOffered(CourseMode),
    #[error("no catalog holding the course run offers a mode the run has")]
    NoModeOffered,
    #[error(transparent)]
    Enrollment(#[from] CommandError<EnrollmentError>),
    #[error(transparent)]
    Store(#[from] Failure),
}

impl EnrollError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::UnknownCustomer => FailureKind::NotFound,
            Self::CustomerInactive | Self::NotLinked => FailureKind::ForbiddenTransition,
            Self::CourseNotInCatalog(_) | Self::ModeNotOffered(_) | Self::NoModeOffered => {
                FailureKind::Validation
            }
            Self::Enrollment(e) => e.kind(),
            Self::Store(f) => f.kind(),
        }
    }

    /// The input field a validation failure is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::CourseNotInCatalog(_) => Some("course_run_id"),
            Self::ModeNotOffered(_) | Self::NoModeOffered => Some("course_mode"),
            Self::Enrollment(e) => e.field(),
            _ => None,
        }
    }
}

/// Paid modes first: the mode taken when none is asked for.
const PREFERENCE: [CourseMode; 4] = [
    CourseMode::Verified,
    CourseMode::Professional,
    CourseMode::Audit,
    CourseMode::Honor,
];

/// Checks, then enrolls (see the module doc).
pub async fn enroll(
    store: &EventStore,
    request: &EnrollRequest,
    meta: &CommandMetadata,
) -> Result<Appended, EnrollError> {
    let mode = check(store, request).await?;
    let command = EnrollmentCommand::Enroll {
        customer_id: request.customer_id,
        learner_id: request.learner_id,
        course_run_id: request.course_run_id.clone(),
        mode,
        source: request.source,
        redemption_id: None,
        at: Utc::now(),
    };
    let stream = enrollment_stream_id(
        request.customer_id,
        request.learner_id,
        &request.course_run_id,
    );
    Ok(store
        .execute::<Enrollment>(&stream, command, &(), meta)
        .await?)
}

/// The checks of [`enroll`], which write nothing; the mode the enrollment would take. A
/// request enrolling several learners runs them all before enrolling any.
pub async fn check(store: &EventStore, request: &EnrollRequest) -> Result<CourseMode, EnrollError> {
    let run = &request.course_run_id.0;
    // Three streams, read at once: the checks need all of them.
    let customer_stream = customer_stream_id(request.customer_id);
    let membership_stream = membership_stream_id(request.learner_id);
    let content_stream = content_stream_id(ContentType::CourseRun, run);
    let ((customer, _), (memberships, _), (content, _)) = tokio::try_join!(
        store.load::<Customer>(&customer_stream),
        store.load::<LearnerMemberships>(&membership_stream),
        store.load::<ContentItem>(&content_stream),
    )?;
    if !customer.is_created() {
        return Err(EnrollError::UnknownCustomer);
    }
    if !customer.is_active() {
        return Err(EnrollError::CustomerInactive);
    }
    if !matches!(
        memberships.membership(request.customer_id),
        Some(MembershipState::Linked { .. })
    ) {
        return Err(EnrollError::NotLinked);
    }
    let Some(metadata) = content.metadata().filter(|_| content.is_published()) else {
        return Err(EnrollError::CourseNotInCatalog(run.clone()));
    };
    let view = metadata.filter_view();
    let mut enabled: Vec<CourseMode> = Vec::new();
    let mut contained = false;
    for catalog in customer.catalogs() {
        let filter = domain::catalog_filter::parse(&catalog.content_filter)
            .map_err(|e| Failure::Corrupt(format!("stored catalog filter: {e}")))?;
        if filter.matches(&view) {
            contained = true;
            enabled.extend(catalog.enabled_course_modes.iter().copied());
        }
    }
    if !contained {
        return Err(EnrollError::CourseNotInCatalog(run.clone()));
    }
    let offered = |mode: CourseMode| {
        enabled.contains(&mode) && metadata.seats.iter().any(|seat| seat.mode == mode.as_str())
    };
    match request.mode {
        Some(mode) if offered(mode) => Ok(mode),
        Some(mode) => Err(EnrollError::ModeNotOffered(mode)),
        None => PREFERENCE
            .into_iter()
            .find(|mode| offered(*mode))
            .ok_or(EnrollError::NoModeOffered),
    }
}
