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

/// Asks the consent read model about many learner x course key pairs of one customer at
/// once: the answers come in the order asked.
pub async fn check_many(
    pool: &PgPool,
    customer_id: Uuid,
    asked: &[(Uuid, String)],
) -> Result<Vec<ConsentCheck>, sqlx::Error> {
    let policy: Option<(bool, String)> = sqlx::query_as(
        "SELECT enable_data_sharing_consent, enforce_data_sharing_consent
           FROM consent_customers WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(pool)
    .await?;
    let Some((enabled, enforce)) = policy else {
        return Ok(vec![ConsentCheck::Unknown; asked.len()]);
    };
    if !enabled || enforce == "externally_managed" {
        return Ok(vec![ConsentCheck::Allowed; asked.len()]);
    }
    let (learners, keys): (Vec<Uuid>, Vec<String>) = asked.iter().cloned().unzip();
    let granted: Vec<Option<bool>> = sqlx::query_scalar(
        "SELECT (SELECT r.granted FROM consent_records r
                  WHERE r.customer_id = $1 AND r.learner_id = a.learner
                    AND r.subject_type = 'course' AND r.subject_key = a.course_key)
           FROM UNNEST($2::uuid[], $3::text[]) WITH ORDINALITY AS a(learner, course_key, n)
          ORDER BY a.n",
    )
    .bind(customer_id)
    .bind(&learners)
    .bind(&keys)
    .fetch_all(pool)
    .await?;
    Ok(granted
        .into_iter()
        .map(|granted| match granted {
            Some(true) => ConsentCheck::Allowed,
            Some(false) => ConsentCheck::Refused,
            None => ConsentCheck::Unknown,
        })
        .collect())
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
