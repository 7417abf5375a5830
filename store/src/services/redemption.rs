//! Redeeming a coupon code ends in an enrollment with source `offer_redemption`.
//!
//! The code's use and the enrollment live in two streams (the coupon, where usage limits hold;
//! the enrollment, one per customer x learner x run), and postgres-es commits one stream at a
//! time. So redemption is a short process with a compensation, in this order:
//!
//! 1. Checks that write nothing: the code exists; the customer is active and the coupon's
//!    catalog still exists and holds the course run; the mode is one the catalog offers; the
//!    learner granted consent when the customer requires it for this course; the enrollment
//!    would accept the mode.
//! 2. The coupon records the redemption (`CodeRedeemed`); this is where limits hold under any
//!    concurrency.
//! 3. The enrollment records `Enrolled` (source `offer_redemption`, naming the redemption).
//!    If the enrollment refuses (its state changed since step 1), the coupon records
//!    `RedemptionReversed` and the use is given back.
//!
//! A process stopped between 2 and 3 (a crash, the database gone) leaves a redemption without
//! an enrollment. Redeeming the same code for the same learner and run again finds that
//! redemption and finishes step 3 instead of using the code a second time.

use crate::command::EventStore;
use crate::error::{CommandError, Failure, FailureKind};
use crate::metadata::CommandMetadata;
use chrono::{DateTime, Utc};
use domain::consent::{consent_stream_id, Consent, ConsentState, ConsentSubject};
use domain::content::{content_stream_id, ContentItem, ContentType};
use domain::coupon::{coupon_stream_id, Coupon, CouponCommand, CouponError, CouponServices};
use domain::course_mode::CourseMode;
use domain::customer::{customer_stream_id, Customer};
use domain::enrollment::{
    enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentError, EnrollmentSource,
};
use domain::ids::{CouponId, CourseRunId, LearnerId};
use thiserror::Error;
use uuid::Uuid;

/// A learner's request to redeem a code.
#[derive(Debug, Clone)]
pub struct RedeemRequest {
    pub code: String,
    pub learner_id: LearnerId,
    /// The learner's email domain, for coupons restricted to some domains.
    pub email_domain: Option<String>,
    pub course_run_id: CourseRunId,
    pub mode: CourseMode,
    pub at: DateTime<Utc>,
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
            Self::UnknownCode => FailureKind::NotFound,
            Self::CustomerInactive | Self::CatalogRemoved | Self::ConsentRequired => {
                FailureKind::ForbiddenTransition
            }
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

/// Redeems a code and enrolls the learner (see the module doc for the steps).
pub async fn redeem(
    store: &EventStore,
    services: &CouponServices,
    request: RedeemRequest,
    meta: &CommandMetadata,
) -> Result<Redeemed, RedemptionError> {
    let coupon_id = coupon_of_code(store, &request.code)
        .await?
        .ok_or(RedemptionError::UnknownCode)?;
    let coupon_stream = coupon_stream_id(coupon_id);
    let (coupon, _) = store.load::<Coupon>(&coupon_stream).await?;
    let (Some(customer_id), Some(catalog_id)) = (coupon.customer_id(), coupon.catalog_id()) else {
        return Err(RedemptionError::UnknownCode);
    };
    let enrollment_stream =
        enrollment_stream_id(customer_id, request.learner_id, &request.course_run_id);

    let earlier = coupon.redemption_for(&request.code, request.learner_id, &request.course_run_id);
    if earlier.is_none() {
        check(store, &request, customer_id, catalog_id, &enrollment_stream).await?;
    }
    let redemption_id = match earlier {
        Some(id) => id,
        None => {
            let redemption_id = Uuid::new_v4();
            let command = CouponCommand::RedeemCode {
                code: request.code.clone(),
                learner_id: request.learner_id,
                email_domain: request.email_domain.clone(),
                course_run_id: request.course_run_id.clone(),
                redemption_id,
                at: request.at,
            };
            let appended = store
                .execute::<Coupon>(&coupon_stream, command, services, meta)
                .await
                .map_err(RedemptionError::Coupon)?;
            if appended.position.is_some() {
                redemption_id
            } else {
                // A concurrent identical request redeemed first: continue with its redemption.
                let (coupon, _) = store.load::<Coupon>(&coupon_stream).await?;
                coupon
                    .redemption_for(&request.code, request.learner_id, &request.course_run_id)
                    .ok_or_else(|| Failure::Unexpected("a redemption vanished".into()))?
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
        at: request.at,
    };
    match store
        .execute::<Enrollment>(
            &enrollment_stream,
            enroll,
            &(),
            &meta.caused_by(redemption_id),
        )
        .await
    {
        Ok(appended) => Ok(Redeemed {
            coupon_id,
            redemption_id,
            position: appended.position,
        }),
        Err(CommandError::Domain(refused)) => {
            let reverse = CouponCommand::ReverseRedemption {
                redemption_id,
                reason: format!("enrollment refused: {refused}"),
            };
            store
                .execute::<Coupon>(
                    &coupon_stream,
                    reverse,
                    services,
                    &meta.caused_by(redemption_id),
                )
                .await
                .map_err(RedemptionError::Coupon)?;
            Err(RedemptionError::Enrollment(CommandError::Domain(refused)))
        }
        Err(CommandError::Store(failure)) => Err(failure.into()),
    }
}

/// The checks of step 1: none of them writes.
async fn check(
    store: &EventStore,
    request: &RedeemRequest,
    customer_id: domain::ids::CustomerId,
    catalog_id: domain::ids::CatalogId,
    enrollment_stream: &str,
) -> Result<(), RedemptionError> {
    let (customer, _) = store
        .load::<Customer>(&customer_stream_id(customer_id))
        .await?;
    if !customer.is_active() {
        return Err(RedemptionError::CustomerInactive);
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
    let in_catalog = content.is_published()
        && content
            .metadata()
            .is_some_and(|m| filter.matches(&m.filter_view()));
    if !in_catalog {
        return Err(RedemptionError::CourseNotInCatalog(run.clone()));
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
    let (enrollment, _) = store.load::<Enrollment>(enrollment_stream).await?;
    enrollment
        .check_enroll(request.mode)
        .map_err(|e| RedemptionError::Enrollment(CommandError::Domain(e)))?;
    Ok(())
}
