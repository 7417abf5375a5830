//! The events the read model uses, decoded into [`Input`]s, and the keys whose rows a batch of
//! them reads ([`Needs`]).

use super::fold::{Completion, ConsentKey, Coupon, Run, RunKey};
use crate::projection::{decode, ApplyError};
use chrono::{DateTime, Utc};
use domain::completion::{CompletionEvent, GradeLabel, ProgressStatus};
use domain::consent::{ConsentEvent, ConsentSubject};
use domain::content::{ContentEvent, ContentType};
use domain::coupon::{CouponBenefit, CouponEvent};
use domain::customer::CustomerEvent;
use domain::enrollment::EnrollmentEvent;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;
use std::hash::Hash;
use store::log::LoggedEvent;
use uuid::Uuid;

/// One event the read model uses, reduced to what its rule needs.
pub(super) enum Input {
    Enrolled(Box<Enrolled>),
    ModeChanged {
        id: Uuid,
        mode: &'static str,
    },
    Unenrolled {
        id: Uuid,
        at: DateTime<Utc>,
    },
    Reenrolled {
        id: Uuid,
    },
    SavedForLater {
        id: Uuid,
        saved: bool,
    },
    CustomerNamed {
        customer: Uuid,
        name: String,
    },
    RunPublished {
        run: String,
        metadata: Run,
    },
    Consent {
        key: ConsentKey,
        granted: bool,
    },
    CouponCreated {
        coupon: Uuid,
        terms: Coupon,
    },
    CodeRedeemed {
        redemption: Uuid,
        coupon: Uuid,
        code: String,
    },
    RedemptionReversed {
        redemption: Uuid,
    },
    Completed {
        key: RunKey,
        decision: Completion,
    },
}

/// An `Enrolled` event: the row it creates, before the inputs fill it.
pub(super) struct Enrolled {
    pub(super) id: Uuid,
    pub(super) key: RunKey,
    pub(super) consent_key: String,
    pub(super) redemption_id: Option<Uuid>,
    pub(super) source: &'static str,
    pub(super) mode: &'static str,
    pub(super) at: DateTime<Utc>,
    pub(super) recorded_at: DateTime<Utc>,
}

/// The input the event gives, if the read model uses it. Events this read model never uses are
/// skipped before decoding: a rebuild reads the whole log, most of which is not about
/// enrollments.
pub(super) fn decode_input(event: &LoggedEvent) -> Result<Option<Input>, ApplyError> {
    if !wanted(event) {
        return Ok(None);
    }
    match event.aggregate_type.as_str() {
        "enrollment" => enrollment(event).map(Some),
        "customer" => Ok(customer(decode(event)?)),
        "content_item" => Ok(content(decode(event)?)),
        "consent" => Ok(consent(decode(event)?)),
        "coupon" => Ok(coupon(decode(event)?)),
        "completion" => Ok(completion(decode(event)?)),
        _ => Ok(None),
    }
}

fn wanted(event: &LoggedEvent) -> bool {
    match event.aggregate_type.as_str() {
        "enrollment" | "consent" => true,
        "customer" => matches!(
            event.event_type.as_str(),
            "CustomerCreated" | "CustomerUpdated"
        ),
        // Courses' and programs' metadata (told by a look into the payload) is never decoded;
        // anything else is, so a malformed payload still stops the projection.
        "content_item" => {
            matches!(
                event.event_type.as_str(),
                "ContentPublished" | "ContentUpdated"
            ) && {
                let item = content_type(event);
                item.as_deref() != Some(ContentType::Course.as_str())
                    && item.as_deref() != Some(ContentType::Program.as_str())
            }
        }
        "coupon" => matches!(
            event.event_type.as_str(),
            "CouponCreated" | "CodeRedeemed" | "RedemptionReversed"
        ),
        "completion" => matches!(
            event.event_type.as_str(),
            "CourseCompleted" | "CompletionGradeChanged"
        ),
        _ => false,
    }
}

/// The content type a content event's metadata names, read past everything else in the
/// payload; `None` when it names none or the payload does not read (decoding it then says why).
fn content_type(event: &LoggedEvent) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        content_type: Option<String>,
    }
    let tagged: FxHashMap<String, Body> = serde_json::from_str(event.payload.get()).ok()?;
    tagged.into_values().next()?.metadata?.content_type
}

fn enrollment(event: &LoggedEvent) -> Result<Input, ApplyError> {
    let id = Uuid::parse_str(&event.aggregate_id)
        .map_err(|e| ApplyError::Malformed(format!("enrollment stream id: {e}")))?;
    Ok(match decode::<EnrollmentEvent>(event)? {
        EnrollmentEvent::Enrolled {
            customer_id,
            learner_id,
            course_run_id,
            mode,
            source,
            redemption_id,
            at,
        } => {
            // The key the consent aggregate files this run's consent under.
            let ConsentSubject::Course(consent_key) =
                ConsentSubject::for_course_id(&course_run_id.0)
            else {
                return Err(ApplyError::Malformed(format!(
                    "course run '{course_run_id}' gives no course consent key"
                )));
            };
            Input::Enrolled(Box::new(Enrolled {
                id,
                key: (customer_id.0, learner_id.0, course_run_id.0),
                consent_key: consent_key.0,
                redemption_id,
                source: source.as_str(),
                mode: mode.as_str(),
                at,
                recorded_at: event.recorded_at,
            }))
        }
        EnrollmentEvent::ModeChanged { to, .. } => Input::ModeChanged {
            id,
            mode: to.as_str(),
        },
        EnrollmentEvent::Unenrolled { at, .. } => Input::Unenrolled { id, at },
        EnrollmentEvent::Reenrolled { .. } => Input::Reenrolled { id },
        EnrollmentEvent::SavedForLater { saved, .. } => Input::SavedForLater { id, saved },
    })
}

fn customer(event: CustomerEvent) -> Option<Input> {
    match event {
        CustomerEvent::CustomerCreated {
            customer_id, name, ..
        }
        | CustomerEvent::CustomerUpdated {
            customer_id,
            name: Some(name),
            ..
        } => Some(Input::CustomerNamed {
            customer: customer_id.0,
            name,
        }),
        _ => None,
    }
}

fn content(event: ContentEvent) -> Option<Input> {
    let (ContentEvent::ContentPublished { metadata } | ContentEvent::ContentUpdated { metadata }) =
        event
    else {
        return None;
    };
    if metadata.content_type != ContentType::CourseRun {
        return None;
    }
    let course_key = metadata.run_course_key();
    Some(Input::RunPublished {
        run: metadata.key,
        metadata: Run {
            course_key,
            title: metadata.title,
            pacing_type: metadata.pacing_type,
            start_date: metadata.start,
            end_date: metadata.end,
        },
    })
}

fn consent(event: ConsentEvent) -> Option<Input> {
    let (customer, learner, subject, granted) = match event {
        ConsentEvent::ConsentGranted {
            customer_id,
            learner_id,
            subject,
            ..
        } => (customer_id, learner_id, subject, true),
        ConsentEvent::ConsentDeclined {
            customer_id,
            learner_id,
            subject,
            ..
        }
        | ConsentEvent::ConsentRevoked {
            customer_id,
            learner_id,
            subject,
            ..
        } => (customer_id, learner_id, subject, false),
    };
    let ConsentSubject::Course(course_key) = subject else {
        return None;
    };
    Some(Input::Consent {
        key: (customer.0, learner.0, course_key.0),
        granted,
    })
}

/// The coupon benefit's type, as ecommerce (django-oscar's `Benefit.type`) spells it.
fn offer_type(benefit: CouponBenefit) -> &'static str {
    match benefit {
        CouponBenefit::Percentage { .. } => "Percentage",
        CouponBenefit::Absolute { .. } => "Absolute",
    }
}

fn coupon(event: CouponEvent) -> Option<Input> {
    match event {
        CouponEvent::CouponCreated {
            coupon_id,
            name,
            benefit,
            ..
        } => Some(Input::CouponCreated {
            coupon: coupon_id.0,
            terms: Coupon {
                name,
                offer_type: offer_type(benefit).to_string(),
            },
        }),
        CouponEvent::CodeRedeemed {
            coupon_id,
            code,
            redemption_id,
            ..
        } => Some(Input::CodeRedeemed {
            redemption: redemption_id,
            coupon: coupon_id.0,
            code,
        }),
        CouponEvent::RedemptionReversed { redemption_id, .. } => Some(Input::RedemptionReversed {
            redemption: redemption_id,
        }),
        CouponEvent::CodeAssigned { .. } | CouponEvent::CodeAssignmentRevoked { .. } => None,
    }
}

fn grade_label(grade: GradeLabel) -> &'static str {
    match grade {
        GradeLabel::Pass => "Pass",
        GradeLabel::Fail => "Fail",
        GradeLabel::Audit => "Audit",
    }
}

fn progress_status(status: ProgressStatus) -> &'static str {
    match status {
        ProgressStatus::Passed => "Passed",
        ProgressStatus::Failed => "Failed",
        ProgressStatus::InProgress => "In Progress",
    }
}

fn completion(event: CompletionEvent) -> Option<Input> {
    let (CompletionEvent::CourseCompleted {
        customer_id,
        learner_id,
        course_run_id,
        grade,
        percent,
        completed_at,
        progress_status: status,
    }
    | CompletionEvent::CompletionGradeChanged {
        customer_id,
        learner_id,
        course_run_id,
        grade,
        percent,
        completed_at,
        progress_status: status,
    }) = event
    else {
        return None;
    };
    let passed = grade == GradeLabel::Pass;
    Some(Input::Completed {
        key: (customer_id.0, learner_id.0, course_run_id.0),
        decision: Completion {
            has_passed: passed,
            progress_status: progress_status(status).to_string(),
            passed_date: passed.then_some(completed_at),
            current_grade: percent,
            letter_grade: grade_label(grade).to_string(),
        },
    })
}

/// The keys whose current rows a batch must load before its fold.
#[derive(Default)]
pub(super) struct Needs {
    /// Report rows, by enrollment id.
    pub(super) ids: FxHashSet<Uuid>,
    /// Report rows, by customer x learner: those of an `Enrolled` (which must not duplicate a
    /// row of its customer x learner x run), of a consent and of a completion.
    pub(super) learners: FxHashSet<(Uuid, Uuid)>,
    /// Report rows, by the redemption they name.
    pub(super) redemption_ids: FxHashSet<Uuid>,
    pub(super) customers: Reads<Uuid>,
    pub(super) runs: Reads<String>,
    pub(super) consents: Reads<ConsentKey>,
    pub(super) completions: Reads<RunKey>,
    pub(super) redemptions: Reads<Uuid>,
    /// Besides these, the coupons of the redemptions loaded.
    pub(super) coupons: Reads<Uuid>,
}

/// The keys of an input table the fold reads before writing them: only their current rows
/// matter (a row the batch writes before reading it need not be loaded).
pub(super) struct Reads<K> {
    pub(super) load: FxHashSet<K>,
    written: FxHashSet<K>,
}

impl<K> Default for Reads<K> {
    fn default() -> Self {
        Self {
            load: FxHashSet::default(),
            written: FxHashSet::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> Reads<K> {
    fn read(&mut self, key: &K) {
        if !self.written.contains(key) {
            self.load.insert(key.clone());
        }
    }

    fn write(&mut self, key: &K) {
        self.written.insert(key.clone());
    }
}

impl Needs {
    /// What the fold of `inputs`, in this order, reads.
    pub(super) fn of(inputs: &[Input]) -> Self {
        let mut needs = Self::default();
        for input in inputs {
            match input {
                Input::Enrolled(e) => {
                    let (customer, learner, run) = &e.key;
                    needs.ids.insert(e.id);
                    needs.learners.insert((*customer, *learner));
                    needs.customers.read(customer);
                    needs.runs.read(run);
                    needs
                        .consents
                        .read(&(*customer, *learner, e.consent_key.clone()));
                    needs.completions.read(&e.key);
                    if let Some(redemption) = &e.redemption_id {
                        needs.redemptions.read(redemption);
                    }
                }
                Input::ModeChanged { id, .. }
                | Input::Unenrolled { id, .. }
                | Input::Reenrolled { id }
                | Input::SavedForLater { id, .. } => {
                    needs.ids.insert(*id);
                }
                Input::CustomerNamed { customer, .. } => needs.customers.write(customer),
                Input::RunPublished { run, .. } => needs.runs.write(run),
                Input::Consent { key, .. } => {
                    needs.learners.insert((key.0, key.1));
                    needs.consents.write(key);
                }
                Input::CouponCreated { coupon, .. } => needs.coupons.write(coupon),
                Input::CodeRedeemed {
                    redemption, coupon, ..
                } => {
                    needs.redemption_ids.insert(*redemption);
                    needs.coupons.read(coupon);
                    needs.redemptions.write(redemption);
                }
                Input::RedemptionReversed { redemption } => {
                    needs.redemption_ids.insert(*redemption);
                    // Only a redemption that exists is marked reversed.
                    needs.redemptions.read(redemption);
                }
                Input::Completed { key, .. } => {
                    needs.learners.insert((key.0, key.1));
                    needs.completions.write(key);
                }
            }
        }
        needs
    }
}
