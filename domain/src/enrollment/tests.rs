use super::*;
use crate::error::Invalid;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;
use CourseMode::{Audit, Honor, Professional, Verified};
use EnrollmentCommand as C;
use EnrollmentEvent as E;

type Given = TestFramework<Enrollment>;

fn customer() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}

fn learner() -> LearnerId {
    LearnerId(Uuid::from_u128(2))
}

fn run() -> CourseRunId {
    CourseRunId("course-v1:edX+DemoX+2024".into())
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, day, 9, 0, 0).unwrap()
}

fn redemption() -> Uuid {
    Uuid::from_u128(7)
}

fn enroll(mode: CourseMode, day: u32) -> C {
    C::Enroll {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        mode,
        source: EnrollmentSource::OfferRedemption,
        redemption_id: Some(redemption()),
        at: at(day),
    }
}

fn change_mode(mode: CourseMode) -> C {
    C::ChangeMode {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        mode,
        at: at(3),
    }
}

fn unenroll() -> C {
    C::Unenroll {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        at: at(4),
    }
}

fn reenroll() -> C {
    C::Reenroll {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        at: at(5),
    }
}

fn save_for_later(saved: bool) -> C {
    C::SaveForLater {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        saved,
    }
}

fn enrolled(mode: CourseMode) -> E {
    E::Enrolled {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        mode,
        source: EnrollmentSource::OfferRedemption,
        redemption_id: Some(redemption()),
        at: at(1),
    }
}

fn mode_changed(from: CourseMode, to: CourseMode, day: u32) -> E {
    E::ModeChanged {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        from,
        to,
        at: at(day),
    }
}

fn unenrolled() -> E {
    E::Unenrolled {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        at: at(4),
    }
}

fn reenrolled(day: u32) -> E {
    E::Reenrolled {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        at: at(day),
    }
}

fn saved_for_later(saved: bool) -> E {
    E::SavedForLater {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        saved,
    }
}

fn replay(events: &[E]) -> Enrollment {
    let mut enrollment = Enrollment::default();
    for event in events {
        enrollment.apply(event.clone());
    }
    enrollment
}

async fn expect(given: Vec<E>, when: C, then: Vec<E>) {
    Given::with(())
        .given(given)
        .when_async(when)
        .await
        .then_expect_events(then);
}

async fn refuse(given: Vec<E>, when: C, error: EnrollmentError) {
    Given::with(())
        .given(given)
        .when_async(when)
        .await
        .then_expect_error(error);
}

#[tokio::test]
async fn enrolling_a_new_learner_records_every_field() {
    expect(vec![], enroll(Audit, 1), vec![enrolled(Audit)]).await;
    let e = replay(&[enrolled(Audit)]);
    assert!(e.is_enrolled() && e.is_active() && !e.saved_for_later());
    assert_eq!(e.mode(), Some(Audit));
    assert_eq!(e.source(), Some(EnrollmentSource::OfferRedemption));
    assert_eq!(e.redemption_id(), Some(redemption()));
    assert_eq!(e.enrolled_at(), Some(at(1)));
    let key = e.key().expect("an enrollment has its key");
    assert_eq!((key.customer_id, key.learner_id), (customer(), learner()));
    assert_eq!(key.course_run_id, run());
}

#[tokio::test]
async fn enrolling_again_in_the_same_mode_appends_nothing() {
    expect(vec![enrolled(Verified)], enroll(Verified, 2), vec![]).await;
}

#[tokio::test]
async fn enrolling_again_in_a_higher_mode_upgrades() {
    let then = vec![mode_changed(Audit, Verified, 2)];
    expect(vec![enrolled(Audit)], enroll(Verified, 2), then).await;
    let then = vec![mode_changed(Verified, Professional, 2)];
    expect(vec![enrolled(Verified)], enroll(Professional, 2), then).await;
}

#[tokio::test]
async fn moving_between_audit_modes_is_not_a_downgrade() {
    let then = vec![mode_changed(Honor, Audit, 2)];
    expect(vec![enrolled(Honor)], enroll(Audit, 2), then).await;
}

#[tokio::test]
async fn enrolling_again_in_an_audit_mode_after_a_paid_one_is_refused() {
    let refused = EnrollmentError::DowngradeRefused {
        from: Verified,
        to: Audit,
    };
    refuse(vec![enrolled(Verified)], enroll(Audit, 2), refused).await;
}

#[tokio::test]
async fn enrolling_after_an_unenrollment_reenrolls() {
    let given = vec![enrolled(Audit), unenrolled()];
    expect(given.clone(), enroll(Audit, 6), vec![reenrolled(6)]).await;
    let then = vec![reenrolled(6), mode_changed(Audit, Verified, 6)];
    expect(given, enroll(Verified, 6), then).await;
}

#[tokio::test]
async fn enrolling_after_an_unenrollment_with_a_downgrade_is_refused_and_stays_unenrolled() {
    let given = vec![enrolled(Verified), unenrolled()];
    let refused = EnrollmentError::DowngradeRefused {
        from: Verified,
        to: Honor,
    };
    refuse(given, enroll(Honor, 6), refused).await;
}

#[tokio::test]
async fn changing_to_a_higher_mode_records_the_change() {
    let then = vec![mode_changed(Audit, Verified, 3)];
    expect(vec![enrolled(Audit)], change_mode(Verified), then.clone()).await;
    assert_eq!(
        replay(&[enrolled(Audit), then[0].clone()]).mode(),
        Some(Verified)
    );
}

#[tokio::test]
async fn changing_to_the_current_mode_appends_nothing() {
    expect(vec![enrolled(Verified)], change_mode(Verified), vec![]).await;
}

#[tokio::test]
async fn changing_down_to_an_audit_mode_is_refused() {
    let refused = EnrollmentError::DowngradeRefused {
        from: Professional,
        to: Honor,
    };
    refuse(vec![enrolled(Professional)], change_mode(Honor), refused).await;
}

#[tokio::test]
async fn changing_the_mode_of_a_missing_enrollment_is_refused() {
    refuse(vec![], change_mode(Verified), EnrollmentError::NotEnrolled).await;
}

#[tokio::test]
async fn unenrolling_keeps_the_enrollment_and_saves_it_for_later() {
    expect(vec![enrolled(Audit)], unenroll(), vec![unenrolled()]).await;
    let e = replay(&[enrolled(Audit), unenrolled()]);
    assert!(e.is_enrolled());
    assert!(!e.is_active());
    assert!(e.saved_for_later());
    assert_eq!(e.unenrolled_at(), Some(at(4)));
}

#[tokio::test]
async fn unenrolling_twice_appends_nothing() {
    expect(vec![enrolled(Audit), unenrolled()], unenroll(), vec![]).await;
}

#[tokio::test]
async fn unenrolling_a_missing_enrollment_is_refused() {
    refuse(vec![], unenroll(), EnrollmentError::NotEnrolled).await;
}

#[tokio::test]
async fn reenrolling_clears_the_unenrollment_and_saved_for_later() {
    let given = vec![enrolled(Audit), unenrolled()];
    expect(given.clone(), reenroll(), vec![reenrolled(5)]).await;
    let e = replay(&[given, vec![reenrolled(5)]].concat());
    assert!(e.is_active());
    assert!(!e.saved_for_later());
    assert_eq!(e.unenrolled_at(), None);
}

#[tokio::test]
async fn reenrolling_an_active_enrollment_appends_nothing() {
    expect(vec![enrolled(Audit)], reenroll(), vec![]).await;
}

#[tokio::test]
async fn reenrolling_a_missing_enrollment_is_refused() {
    refuse(vec![], reenroll(), EnrollmentError::NotEnrolled).await;
}

#[tokio::test]
async fn saving_for_later_records_each_change() {
    let then = vec![saved_for_later(true)];
    expect(vec![enrolled(Audit)], save_for_later(true), then).await;
    let given = vec![enrolled(Audit), saved_for_later(true)];
    expect(
        given.clone(),
        save_for_later(false),
        vec![saved_for_later(false)],
    )
    .await;
    assert!(replay(&given).saved_for_later());
}

#[tokio::test]
async fn saving_for_later_what_is_already_saved_appends_nothing() {
    expect(vec![enrolled(Audit)], save_for_later(false), vec![]).await;
    let given = vec![enrolled(Audit), unenrolled()];
    expect(given, save_for_later(true), vec![]).await;
}

#[tokio::test]
async fn saving_a_missing_enrollment_for_later_is_refused() {
    refuse(vec![], save_for_later(true), EnrollmentError::NotEnrolled).await;
}

#[tokio::test]
async fn a_command_for_another_key_is_refused() {
    let mut other_run = unenroll();
    if let C::Unenroll { course_run_id, .. } = &mut other_run {
        *course_run_id = CourseRunId("course-v1:edX+DemoX+2025".into());
    }
    refuse(
        vec![enrolled(Audit)],
        other_run,
        EnrollmentError::KeyMismatch,
    )
    .await;
    let mut other_customer = enroll(Audit, 2);
    if let C::Enroll { customer_id, .. } = &mut other_customer {
        *customer_id = CustomerId(Uuid::from_u128(99));
    }
    refuse(
        vec![enrolled(Audit)],
        other_customer,
        EnrollmentError::KeyMismatch,
    )
    .await;
}

#[tokio::test]
async fn a_blank_or_spaced_course_run_id_is_invalid() {
    let invalid = EnrollmentError::Invalid(Invalid::new(
        "course_id",
        "must be 1 to 255 characters without whitespace",
    ));
    for bad_id in ["", "course-v1:edX+Demo X+1"] {
        let mut bad = enroll(Audit, 1);
        if let C::Enroll { course_run_id, .. } = &mut bad {
            *course_run_id = CourseRunId(bad_id.into());
        }
        refuse(vec![], bad, invalid.clone()).await;
    }
}

#[test]
fn check_enroll_refuses_only_a_downgrade_and_writes_nothing() {
    assert_eq!(Enrollment::default().check_enroll(Audit), Ok(()));
    let verified = replay(&[enrolled(Verified)]);
    assert_eq!(verified.check_enroll(Verified), Ok(()));
    assert_eq!(verified.check_enroll(Professional), Ok(()));
    assert_eq!(
        verified.check_enroll(Audit),
        Err(EnrollmentError::DowngradeRefused {
            from: Verified,
            to: Audit
        })
    );
    assert_eq!(verified, replay(&[enrolled(Verified)]));
}

#[test]
fn sources_are_spelled_as_edx_slugs() {
    let slugs = [
        "manual",
        "enterprise_api",
        "customer_admin",
        "enrollment_url",
        "offer_redemption",
        "enrollment_task",
        "management_command",
    ];
    for (source, slug) in EnrollmentSource::ALL.into_iter().zip(slugs) {
        assert_eq!(source.as_str(), slug);
        assert_eq!(slug.parse::<EnrollmentSource>(), Ok(source));
        assert_eq!(serde_json::to_value(source).unwrap(), slug);
    }
    assert!("api".parse::<EnrollmentSource>().is_err());
}

#[test]
fn each_course_run_has_its_own_stream() {
    let a = enrollment_stream_id(customer(), learner(), &run());
    assert_eq!(a, enrollment_stream_id(customer(), learner(), &run()));
    let other = CourseRunId("course-v1:edX+DemoX+2025".into());
    assert_ne!(a, enrollment_stream_id(customer(), learner(), &other));
}

#[test]
fn errors_map_to_their_kinds() {
    use crate::error::{DomainError, ErrorKind};
    assert_eq!(EnrollmentError::NotEnrolled.kind(), ErrorKind::NotFound);
    assert_eq!(EnrollmentError::KeyMismatch.kind(), ErrorKind::Conflict);
    let downgrade = EnrollmentError::DowngradeRefused {
        from: Verified,
        to: Audit,
    };
    assert_eq!(downgrade.kind(), ErrorKind::ForbiddenTransition);
    let invalid = EnrollmentError::Invalid(Invalid::new("course_id", "blank"));
    assert_eq!(invalid.field(), Some("course_id"));
}

#[test]
fn events_are_named_and_versioned() {
    use cqrs_es::DomainEvent;
    assert_eq!(enrolled(Audit).event_type(), "Enrolled");
    assert_eq!(saved_for_later(true).event_type(), "SavedForLater");
    assert_eq!(unenrolled().event_version(), "1.0");
}
