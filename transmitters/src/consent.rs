//! The consent check at send time. The outbox queues a learner row only with the consent the
//! customer requires, but a row may have been claimed before a revocation reached the outbox,
//! so the worker asks the consent read model again just before sending.

use sqlx::PgPool;
use uuid::Uuid;

/// What the consent read model says about sending one learner's data for one course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentCheck {
    /// Consent is granted, or the customer does not request it (disabled or externally
    /// managed).
    Allowed,
    /// The learner declined or revoked consent: the data must never be sent.
    Refused,
    /// The read model has no answer yet (it lags behind the outbox): ask again later.
    Unknown,
}

/// Asks the consent read model (tables `consent_customers`, `consent_records`) about a
/// customer x learner x course key.
pub async fn check(
    pool: &PgPool,
    customer_id: Uuid,
    learner_id: Uuid,
    course_key: &str,
) -> Result<ConsentCheck, sqlx::Error> {
    let row: Option<(bool, String, Option<bool>)> = sqlx::query_as(
        "SELECT c.enable_data_sharing_consent, c.enforce_data_sharing_consent,
                (SELECT granted FROM consent_records r
                  WHERE r.customer_id = c.customer_id AND r.learner_id = $2
                    AND r.subject_type = 'course' AND r.subject_key = $3)
           FROM consent_customers c WHERE c.customer_id = $1",
    )
    .bind(customer_id)
    .bind(learner_id)
    .bind(course_key)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => ConsentCheck::Unknown,
        Some((enabled, enforce, _)) if !enabled || enforce == "externally_managed" => {
            ConsentCheck::Allowed
        }
        Some((_, _, Some(true))) => ConsentCheck::Allowed,
        Some((_, _, Some(false))) => ConsentCheck::Refused,
        Some((_, _, None)) => ConsentCheck::Unknown,
    })
}
