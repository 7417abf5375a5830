//! Redeeming a coupon code ends in an enrollment with source `offer_redemption`.
//!
//! The code's use and the enrollment live in two streams (the coupon, where usage limits hold;
//! the enrollment, one per customer x learner x run), and postgres-es commits one stream at a
//! time. So redemption is a short process with a compensation, in this order:
//!
//! 1. Checks that write nothing: the code exists; the customer is active; the learner is linked
//!    to it; the coupon's catalog still exists and holds the course run; the catalog and the run
//!    offer the mode; the learner granted consent when the customer requires it for this course;
//!    the enrollment would accept the mode and is not already in it (a code is never spent on
//!    nothing).
//! 2. The coupon records the redemption (`CodeRedeemed`); this is where limits hold under any
//!    concurrency.
//! 3. The enrollment records `Enrolled` (source `offer_redemption`, naming the redemption).
//!    If the enrollment refuses (its state changed since step 1), the coupon records
//!    `RedemptionReversed` and the use is given back.
//!
//! A process stopped between 2 and 3 (a crash, the database gone) leaves a redemption without
//! an enrollment. Redeeming the same code for the same learner and run again finds that
//! redemption and finishes step 3 instead of using the code a second time; when the enrollment
//! already names the redemption, the request is answered as done and nothing is written.

use crate::command::EventStore;
use crate::directory;
use crate::error::{CommandError, Failure, FailureKind};
use crate::metadata::CommandMetadata;
use chrono::Utc;
use domain::consent::{consent_stream_id, Consent, ConsentState, ConsentSubject};
use domain::content::{content_stream_id, ContentItem, ContentType};
use domain::coupon::{coupon_stream_id, Coupon, CouponCommand, CouponError, CouponServices};
use domain::course_mode::CourseMode;
use domain::customer::{customer_stream_id, Customer};
use domain::enrollment::{
    enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentError, EnrollmentSource,
};
use domain::ids::{CatalogId, CouponId, CourseRunId, CustomerId, LearnerId};
use domain::membership::{membership_stream_id, LearnerMemberships, MembershipState};
use thiserror::Error;
use uuid::Uuid;

/// A learner's request to redeem a code.
#[derive(Debug, Clone)]
pub struct RedeemRequest {
    pub code: String,
    pub learner_id: LearnerId,
    pub course_run_id: CourseRunId,
    pub mode: CourseMode,
}

/// A completed redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub coupon_id: CouponId,
    pub redemption_id: Uuid,
    /// Global position of the enrollment's event (or of the redemption when the enrollment
    /// already held).
    pub position: Option<i64>,
}

#[derive(Debug, Error)]
pub enum RedemptionError {
    #[error("no coupon has this code")]
    UnknownCode,
    #[error("no such learner")]
    UnknownLearner,
    #[error("the learner is not linked to the coupon's customer")]
    NotLinked,
    #[error("the learner is already enrolled in this course run in this mode")]
    AlreadyEnrolled,
    #[error("the idempotency key was used for another redemption")]
    IdempotencyKeyReused,
    #[error("the customer is inactive")]
    CustomerInactive,
    #[error("the coupon's catalog no longer exists")]
    CatalogRemoved,
    #[error("course run {0} is not in the coupon's catalog")]
    CourseNotInCatalog(String),
    #[error("the catalog does not offer mode '{0}'")]
    ModeNotOffered(CourseMode),
    #[error("data sharing consent is required for this course: the learner must grant it before redeeming")]
    ConsentRequired,
    #[error(transparent)]
    Coupon(CommandError<CouponError>),
    #[error(transparent)]
    Enrollment(CommandError<EnrollmentError>),
    #[error(transparent)]
    Store(#[from] Failure),
}

impl RedemptionError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::UnknownCode | Self::UnknownLearner => FailureKind::NotFound,
            Self::CustomerInactive
            | Self::CatalogRemoved
            | Self::ConsentRequired
            | Self::NotLinked => FailureKind::ForbiddenTransition,
            Self::AlreadyEnrolled | Self::IdempotencyKeyReused => FailureKind::Conflict,
            Self::CourseNotInCatalog(_) | Self::ModeNotOffered(_) => FailureKind::Validation,
            Self::Coupon(e) => e.kind(),
            Self::Enrollment(e) => e.kind(),
            Self::Store(f) => f.kind(),
        }
    }
}

/// The coupon a code belongs to, found in the log itself (an index on the codes of
/// `CouponCreated` events).
pub async fn coupon_of_code(store: &EventStore, code: &str) -> Result<Option<CouponId>, Failure> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE event_type = 'CouponCreated' AND payload -> 'CouponCreated' -> 'codes' ? $1
          LIMIT 1",
    )
    .bind(code)
    .fetch_optional(store.pool())
    .await?;
    Ok(id.and_then(|id| Uuid::parse_str(&id).ok()).map(CouponId))
}

/// Redeems a code and enrolls the learner (see the module doc for the steps). The time and the
/// learner's email domain are the service's own (its clock, the learner directory), never the
/// caller's.
pub async fn redeem(
    store: &EventStore,
    services: &CouponServices,
    request: RedeemRequest,
    meta: &CommandMetadata,
) -> Result<Redeemed, RedemptionError> {
    let at = Utc::now();
    let coupon_id = coupon_of_code(store, &request.code)
        .await?
        .ok_or(RedemptionError::UnknownCode)?;
    let coupon_stream = coupon_stream_id(coupon_id);
    let (coupon, _) = store.load::<Coupon>(&coupon_stream).await?;
    let (Some(customer_id), Some(catalog_id)) = (coupon.customer_id(), coupon.catalog_id()) else {
        return Err(RedemptionError::UnknownCode);
    };
    let learner = directory::find(store.pool(), request.learner_id)
        .await?
        .ok_or(RedemptionError::UnknownLearner)?;
    let email_domain = learner.email.as_deref().and_then(directory::email_domain);
    let enrollment_stream =
        enrollment_stream_id(customer_id, request.learner_id, &request.course_run_id);
    let (enrollment, _) = store.load::<Enrollment>(&enrollment_stream).await?;

    let earlier = coupon.redemption_for(&request.code, request.learner_id, &request.course_run_id);
    let (redemption_id, made_here) = match earlier {
        // This learner already redeemed this code for this run and the enrollment followed:
        // the same request again, answered with the first outcome.
        Some(id) if enrollment.redemption_id() == Some(id) => {
            return Ok(Redeemed {
                coupon_id,
                redemption_id: id,
                position: None,
            });
        }
        // A redemption whose enrollment never followed (an interrupted process): finish it.
        Some(id) => (id, false),
        None => {
            check(store, &request, customer_id, catalog_id, &enrollment).await?;
            let redemption_id = Uuid::new_v4();
            let command = CouponCommand::RedeemCode {
                code: request.code.clone(),
                learner_id: request.learner_id,
                email_domain,
                course_run_id: request.course_run_id.clone(),
                redemption_id,
                at,
            };
            let appended = store
                .execute::<Coupon>(&coupon_stream, command, services, meta)
                .await
                .map_err(RedemptionError::Coupon)?;
            if appended.position.is_some() && !appended.replayed {
                (redemption_id, true)
            } else {
                // A concurrent identical request redeemed first, or the idempotency key was
                // handled before: continue with the redemption that stands, if it is this one's.
                let (coupon, _) = store.load::<Coupon>(&coupon_stream).await?;
                let standing = coupon
                    .redemption_for(&request.code, request.learner_id, &request.course_run_id)
                    .ok_or(RedemptionError::IdempotencyKeyReused)?;
                (standing, false)
            }
        }
    };

    let enroll = EnrollmentCommand::Enroll {
        customer_id,
        learner_id: request.learner_id,
        course_run_id: request.course_run_id.clone(),
        mode: request.mode,
        source: EnrollmentSource::OfferRedemption,
        redemption_id: Some(redemption_id),
        at,
    };
    // The follow-up commands are caused by the redemption and carry no idempotency key of
    // their own: the caller's key names the redemption, on the coupon's stream.
    let follow_up = meta.caused_by(redemption_id);
    match store
        .execute::<Enrollment>(&enrollment_stream, enroll, &(), &follow_up)
        .await
    {
        Ok(appended) => Ok(Redeemed {
            coupon_id,
            redemption_id,
            position: appended.position,
        }),
        Err(CommandError::Domain(refused)) => {
            // Only a redemption no enrollment uses is given back: one made by this call, or an
            // interrupted one whose enrollment never followed.
            if made_here || enrollment.redemption_id() != Some(redemption_id) {
                let reverse = CouponCommand::ReverseRedemption {
                    redemption_id,
                    reason: format!("enrollment refused: {refused}"),
                };
                store
                    .execute::<Coupon>(&coupon_stream, reverse, services, &follow_up)
                    .await
                    .map_err(RedemptionError::Coupon)?;
            }
            Err(RedemptionError::Enrollment(CommandError::Domain(refused)))
        }
        Err(CommandError::Store(failure)) => Err(failure.into()),
    }
}

/// The checks of step 1: none of them writes.
async fn check(
    store: &EventStore,
    request: &RedeemRequest,
    customer_id: CustomerId,
    catalog_id: CatalogId,
    enrollment: &Enrollment,
) -> Result<(), RedemptionError> {
    let (customer, _) = store
        .load::<Customer>(&customer_stream_id(customer_id))
        .await?;
    if !customer.is_active() {
        return Err(RedemptionError::CustomerInactive);
    }
    let (memberships, _) = store
        .load::<LearnerMemberships>(&membership_stream_id(request.learner_id))
        .await?;
    if !matches!(
        memberships.membership(customer_id),
        Some(MembershipState::Linked { .. })
    ) {
        return Err(RedemptionError::NotLinked);
    }
    let catalog = customer
        .catalog(catalog_id)
        .ok_or(RedemptionError::CatalogRemoved)?;
    if !catalog.enabled_course_modes.contains(&request.mode) {
        return Err(RedemptionError::ModeNotOffered(request.mode));
    }
    let run = &request.course_run_id.0;
    let (content, _) = store
        .load::<ContentItem>(&content_stream_id(ContentType::CourseRun, run))
        .await?;
    let filter = domain::catalog_filter::parse(&catalog.content_filter)
        .map_err(|e| Failure::Corrupt(format!("stored catalog filter: {e}")))?;
    let metadata = content.metadata().filter(|_| content.is_published());
    let Some(metadata) = metadata.filter(|m| filter.matches(&m.filter_view())) else {
        return Err(RedemptionError::CourseNotInCatalog(run.clone()));
    };
    if !metadata
        .seats
        .iter()
        .any(|seat| seat.mode == request.mode.as_str())
    {
        return Err(RedemptionError::ModeNotOffered(request.mode));
    }
    // The course is in one of the customer's catalogs, so edX's rule reduces to the policy.
    if customer.consent_policy().enforces_at_enrollment() {
        let subject = ConsentSubject::for_course_id(run);
        let (consent, _) = store
            .load::<Consent>(&consent_stream_id(
                customer_id,
                request.learner_id,
                &subject,
            ))
            .await?;
        if consent.state() != ConsentState::Granted {
            return Err(RedemptionError::ConsentRequired);
        }
    }
    if enrollment.is_active() && enrollment.mode() == Some(request.mode) {
        return Err(RedemptionError::AlreadyEnrolled);
    }
    enrollment
        .check_enroll(request.mode)
        .map_err(|e| RedemptionError::Enrollment(CommandError::Domain(e)))?;
    Ok(())
}
