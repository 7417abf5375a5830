use super::*;
use crate::error::{DomainError, ErrorKind, Invalid};
use chrono::TimeZone;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type Given = TestFramework<Completion>;

fn customer() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}
fn learner() -> LearnerId {
    LearnerId(Uuid::from_u128(2))
}
fn run() -> CourseRunId {
    CourseRunId("course-v1:edX+DemoX+2025".into())
}
fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, d, 0, 0, 0).unwrap()
}

const AUDIT: CourseMode = CourseMode::Audit;
const VERIFIED: CourseMode = CourseMode::Verified;

fn grade(percent: f64, passed: bool, passed_at: Option<DateTime<Utc>>) -> GradeFact {
    GradeFact {
        percent,
        passed,
        passed_at,
    }
}
fn cert(percent: f64, passing: bool, created_at: Option<DateTime<Utc>>) -> CertificateFact {
    CertificateFact {
        percent,
        passing,
        created_at,
    }
}

// ---- the decision function, branch by branch ----

/// `now` is day 20 in every decision test.
fn decided(mode: CourseMode, facts: LmsFacts) -> Decision {
    decide(mode, &facts, day(20))
}

#[test]
fn audit_without_a_grade_is_in_progress_and_not_completed() {
    let d = decided(AUDIT, LmsFacts::default());
    assert_eq!(
        (d.completed_date, d.grade, d.passing, d.percent),
        (None, None, false, None)
    );
    assert_eq!(d.progress_status, ProgressStatus::InProgress);
    assert!(!d.course_completed);
}

#[test]
fn audit_after_the_course_ended_is_dated_at_the_end_and_labelled_audit() {
    for passed in [true, false] {
        let d = decided(
            AUDIT,
            LmsFacts {
                grade: Some(grade(0.8, passed, None)),
                course_end: Some(day(10)),
                ..Default::default()
            },
        );
        assert_eq!(d.completed_date, Some(day(10)));
        assert_eq!(d.grade, Some(GradeLabel::Audit));
        assert_eq!(d.percent, Some(0.8));
        let status = if passed {
            ProgressStatus::Passed
        } else {
            ProgressStatus::Failed
        };
        assert_eq!(d.progress_status, status);
    }
}

#[test]
fn a_course_ending_now_or_later_has_not_ended() {
    for end in [day(20), day(25)] {
        let d = decided(
            AUDIT,
            LmsFacts {
                grade: Some(grade(0.3, false, None)),
                course_end: Some(end),
                ..Default::default()
            },
        );
        assert_eq!((d.completed_date, d.grade), (None, None));
    }
}

#[test]
fn audit_passing_before_the_end_is_a_pass_dated_now() {
    let d = decided(
        AUDIT,
        LmsFacts {
            grade: Some(grade(0.9, true, Some(day(5)))),
            ..Default::default()
        },
    );
    assert_eq!(d.completed_date, Some(day(20)));
    assert_eq!(d.grade, Some(GradeLabel::Pass));
    assert_eq!(d.progress_status, ProgressStatus::Passed);
}

#[test]
fn audit_not_passing_before_the_end_is_in_progress_with_its_percent() {
    let d = decided(
        AUDIT,
        LmsFacts {
            grade: Some(grade(0.4, false, None)),
            ..Default::default()
        },
    );
    assert_eq!(
        (d.completed_date, d.grade, d.percent),
        (None, None, Some(0.4))
    );
    assert_eq!(d.progress_status, ProgressStatus::InProgress);
}

#[test]
fn audit_with_every_unit_done_is_dated_now_and_completed_without_a_deadline() {
    let d = decided(
        AUDIT,
        LmsFacts {
            grade: Some(grade(0.4, false, None)),
            incomplete_count: Some(0),
            ..Default::default()
        },
    );
    assert_eq!(d.completed_date, Some(day(20)));
    assert_eq!(d.grade, None);
    assert_eq!(d.progress_status, ProgressStatus::Failed);
    assert!(d.course_completed);
}

#[test]
fn audit_with_every_unit_done_keeps_an_earlier_completed_date() {
    let d = decided(
        AUDIT,
        LmsFacts {
            grade: Some(grade(0.4, false, None)),
            course_end: Some(day(10)),
            incomplete_count: Some(0),
            ..Default::default()
        },
    );
    assert_eq!(d.completed_date, Some(day(10)));
}

#[test]
fn audit_completion_needs_a_known_zero_incomplete_count() {
    for count in [None, Some(3)] {
        let d = decided(
            AUDIT,
            LmsFacts {
                grade: Some(grade(1.0, true, Some(day(5)))),
                course_end: Some(day(10)),
                incomplete_count: count,
                ..Default::default()
            },
        );
        assert!(!d.course_completed, "{count:?}");
    }
}

#[test]
fn audit_completion_waits_for_the_upgrade_deadline_to_pass() {
    let at_deadline = |deadline| {
        decided(
            AUDIT,
            LmsFacts {
                incomplete_count: Some(0),
                upgrade_deadline: Some(deadline),
                ..Default::default()
            },
        )
        .course_completed
    };
    assert!(!at_deadline(day(25)));
    assert!(!at_deadline(day(20)));
    assert!(at_deadline(day(19)));
}

#[test]
fn audit_enrollments_ignore_the_certificate() {
    let d = decided(
        CourseMode::Honor,
        LmsFacts {
            certificate: Some(cert(0.9, true, Some(day(3)))),
            ..Default::default()
        },
    );
    assert_eq!((d.completed_date, d.grade), (None, None));
}

#[test]
fn non_audit_with_a_certificate_takes_its_date_grade_and_verdict() {
    let d = decided(
        VERIFIED,
        LmsFacts {
            grade: Some(grade(0.7, true, Some(day(4)))),
            certificate: Some(cert(0.75, true, Some(day(6)))),
            ..Default::default()
        },
    );
    assert_eq!(d.completed_date, Some(day(6)));
    assert_eq!((d.grade, d.percent), (Some(GradeLabel::Pass), Some(0.75)));
    assert_eq!(d.progress_status, ProgressStatus::Passed);
    assert_eq!(d.passed_at, Some(day(4)));
    assert!(d.course_completed);
}

#[test]
fn a_certificate_without_a_date_falls_back_to_the_pass_date_then_now() {
    let with_grade = LmsFacts {
        grade: Some(grade(0.7, true, Some(day(4)))),
        certificate: Some(cert(0.75, true, None)),
        ..Default::default()
    };
    assert_eq!(decided(VERIFIED, with_grade).completed_date, Some(day(4)));
    let alone = LmsFacts {
        certificate: Some(cert(0.75, true, None)),
        ..Default::default()
    };
    assert_eq!(decided(VERIFIED, alone).completed_date, Some(day(20)));
}

#[test]
fn non_audit_completion_needs_a_pass_timestamp_and_a_passing_verdict() {
    let no_timestamp = decided(
        VERIFIED,
        LmsFacts {
            certificate: Some(cert(0.75, true, Some(day(6)))),
            ..Default::default()
        },
    );
    assert!(!no_timestamp.course_completed);
    let failing = decided(
        VERIFIED,
        LmsFacts {
            grade: Some(grade(0.7, true, Some(day(4)))),
            certificate: Some(cert(0.5, false, Some(day(6)))),
            ..Default::default()
        },
    );
    assert_eq!(failing.grade, Some(GradeLabel::Fail));
    assert_eq!(failing.progress_status, ProgressStatus::Failed);
    assert!(!failing.course_completed);
}

#[test]
fn non_audit_without_a_certificate_uses_grades_with_pass_and_fail_labels() {
    let ended = |passed| {
        decided(
            VERIFIED,
            LmsFacts {
                grade: Some(grade(0.6, passed, passed.then_some(day(4)))),
                course_end: Some(day(10)),
                ..Default::default()
            },
        )
    };
    let (pass, fail) = (ended(true), ended(false));
    assert_eq!(
        (pass.completed_date, pass.grade),
        (Some(day(10)), Some(GradeLabel::Pass))
    );
    assert!(pass.course_completed);
    assert_eq!(
        (fail.completed_date, fail.grade),
        (Some(day(10)), Some(GradeLabel::Fail))
    );
    assert!(!fail.course_completed);
    let running = decided(
        VERIFIED,
        LmsFacts {
            grade: Some(grade(0.6, true, Some(day(4)))),
            ..Default::default()
        },
    );
    assert_eq!(
        (running.completed_date, running.grade),
        (Some(day(20)), Some(GradeLabel::Pass))
    );
}

#[test]
fn non_audit_ignores_the_incomplete_count() {
    let d = decided(
        VERIFIED,
        LmsFacts {
            incomplete_count: Some(0),
            ..Default::default()
        },
    );
    assert_eq!(d.completed_date, None);
    assert!(!d.course_completed);
}

// ---- the aggregate ----

fn record(mode: CourseMode, at: DateTime<Utc>, fact: LmsFact) -> CompletionCommand {
    CompletionCommand {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        mode,
        at,
        fact,
    }
}

fn grade_changed(percent: f64, passed: bool, passed_at: Option<DateTime<Utc>>) -> CompletionEvent {
    CompletionEvent::GradeChanged {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        percent,
        passed,
        passed_at,
    }
}

fn completed(
    grade: GradeLabel,
    percent: Option<f64>,
    completed_at: DateTime<Utc>,
    progress_status: ProgressStatus,
) -> CompletionEvent {
    CompletionEvent::CourseCompleted {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        grade,
        percent,
        completed_at,
        progress_status,
    }
}

fn grade_fact(percent: f64, passed: bool, passed_at: Option<DateTime<Utc>>) -> LmsFact {
    LmsFact::RecordGrade {
        percent,
        passed,
        passed_at,
    }
}

fn incomplete(count: u32) -> CompletionEvent {
    CompletionEvent::IncompleteUnitsCounted {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        count,
    }
}

fn deadline(at: Option<DateTime<Utc>>) -> CompletionEvent {
    CompletionEvent::UpgradeDeadlineSet {
        customer_id: customer(),
        learner_id: learner(),
        course_run_id: run(),
        deadline: at,
    }
}

#[tokio::test]
async fn each_new_fact_is_recorded_as_its_event() {
    let keys = (customer(), learner(), run());
    let cases = [
        (
            grade_fact(0.3, false, None),
            grade_changed(0.3, false, None),
        ),
        (
            LmsFact::RecordCertificate {
                percent: 0.4,
                passing: false,
                created_at: Some(day(2)),
            },
            CompletionEvent::CertificateIssued {
                customer_id: keys.0,
                learner_id: keys.1,
                course_run_id: keys.2.clone(),
                percent: 0.4,
                passing: false,
                created_at: Some(day(2)),
            },
        ),
        (
            LmsFact::RecordCourseEnded { ended_at: day(30) },
            CompletionEvent::CourseRunEnded {
                customer_id: keys.0,
                learner_id: keys.1,
                course_run_id: keys.2.clone(),
                ended_at: day(30),
            },
        ),
        (LmsFact::RecordIncompleteUnits { count: 4 }, incomplete(4)),
        (
            LmsFact::RecordUpgradeDeadline {
                deadline: Some(day(25)),
            },
            deadline(Some(day(25))),
        ),
    ];
    for (fact, event) in cases {
        Given::with(())
            .given_no_previous_events()
            .when_async(record(VERIFIED, day(20), fact))
            .await
            .then_expect_events(vec![event]);
    }
}

#[tokio::test]
async fn a_fact_equal_to_the_recorded_one_appends_nothing() {
    Given::with(())
        .given(vec![grade_changed(0.3, false, None)])
        .when_async(record(VERIFIED, day(20), grade_fact(0.3, false, None)))
        .await
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![incomplete(4)])
        .when_async(record(
            AUDIT,
            day(20),
            LmsFact::RecordIncompleteUnits { count: 4 },
        ))
        .await
        .then_expect_events(vec![]);
    Given::with(())
        .given_no_previous_events()
        .when_async(record(
            AUDIT,
            day(20),
            LmsFact::RecordUpgradeDeadline { deadline: None },
        ))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_verified_learner_completes_when_the_grade_passes() {
    Given::with(())
        .given_no_previous_events()
        .when_async(record(
            VERIFIED,
            day(20),
            grade_fact(0.9, true, Some(day(19))),
        ))
        .await
        .then_expect_events(vec![
            grade_changed(0.9, true, Some(day(19))),
            completed(GradeLabel::Pass, Some(0.9), day(20), ProgressStatus::Passed),
        ]);
}

#[tokio::test]
async fn a_certificate_completes_on_its_creation_date_with_its_grade() {
    let fact = LmsFact::RecordCertificate {
        percent: 0.95,
        passing: true,
        created_at: Some(day(18)),
    };
    let events = Given::with(())
        .given(vec![grade_changed(0.9, true, Some(day(17)))])
        .when_async(record(VERIFIED, day(20), fact))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(
        events.last(),
        Some(&completed(
            GradeLabel::Pass,
            Some(0.95),
            day(18),
            ProgressStatus::Passed
        ))
    );
}

#[tokio::test]
async fn an_audit_learner_completes_when_every_unit_is_done_after_the_deadline() {
    Given::with(())
        .given(vec![
            grade_changed(0.4, false, None),
            deadline(Some(day(10))),
        ])
        .when_async(record(
            AUDIT,
            day(20),
            LmsFact::RecordIncompleteUnits { count: 0 },
        ))
        .await
        .then_expect_events(vec![
            incomplete(0),
            // edX says "In Progress" here; the event reports an audit completion as Audit.
            completed(
                GradeLabel::Audit,
                Some(0.4),
                day(20),
                ProgressStatus::Failed,
            ),
        ]);
}

#[tokio::test]
async fn a_repeated_fact_completes_the_course_once_the_deadline_has_passed() {
    let history = vec![deadline(Some(day(25))), incomplete(0)];
    let repeat = |at| record(AUDIT, at, LmsFact::RecordIncompleteUnits { count: 0 });
    Given::with(())
        .given(history.clone())
        .when_async(repeat(day(20)))
        .await
        .then_expect_events(vec![]);
    Given::with(())
        .given(history)
        .when_async(repeat(day(26)))
        .await
        .then_expect_events(vec![completed(
            GradeLabel::Audit,
            None,
            day(26),
            ProgressStatus::Failed,
        )]);
}

#[tokio::test]
async fn a_changed_grade_after_completion_is_a_new_event() {
    let done = vec![
        grade_changed(0.9, true, Some(day(19))),
        completed(GradeLabel::Pass, Some(0.9), day(20), ProgressStatus::Passed),
    ];
    Given::with(())
        .given(done)
        .when_async(record(
            VERIFIED,
            day(22),
            grade_fact(0.95, true, Some(day(19))),
        ))
        .await
        .then_expect_events(vec![
            grade_changed(0.95, true, Some(day(19))),
            CompletionEvent::CompletionGradeChanged {
                customer_id: customer(),
                learner_id: learner(),
                course_run_id: run(),
                grade: GradeLabel::Pass,
                percent: Some(0.95),
                completed_at: day(22),
                progress_status: ProgressStatus::Passed,
            },
        ]);
}

#[tokio::test]
async fn a_fact_that_keeps_grade_and_percent_after_completion_reports_nothing_new() {
    let done = vec![
        grade_changed(0.9, true, Some(day(19))),
        completed(GradeLabel::Pass, Some(0.9), day(20), ProgressStatus::Passed),
    ];
    Given::with(())
        .given(done.clone())
        .when_async(record(
            VERIFIED,
            day(21),
            LmsFact::RecordIncompleteUnits { count: 2 },
        ))
        .await
        .then_expect_events(vec![incomplete(2)]);
    Given::with(())
        .given(done)
        .when_async(record(
            VERIFIED,
            day(21),
            grade_fact(0.9, true, Some(day(19))),
        ))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_non_audit_grade_without_a_verdict_after_completion_reports_nothing() {
    let done = vec![
        grade_changed(0.9, true, Some(day(19))),
        completed(GradeLabel::Pass, Some(0.9), day(20), ProgressStatus::Passed),
    ];
    Given::with(())
        .given(done)
        .when_async(record(VERIFIED, day(21), grade_fact(0.5, false, None)))
        .await
        .then_expect_events(vec![grade_changed(0.5, false, None)]);
}

#[tokio::test]
async fn a_command_for_another_enrollment_is_refused() {
    let mut other = record(VERIFIED, day(20), grade_fact(0.5, false, None));
    other.course_run_id = CourseRunId("course-v1:edX+DemoX+2026".into());
    Given::with(())
        .given(vec![grade_changed(0.3, false, None)])
        .when_async(other)
        .await
        .then_expect_error(CompletionError::KeyMismatch);
}

#[tokio::test]
async fn percents_outside_zero_to_one_are_refused() {
    let certificate = |percent| LmsFact::RecordCertificate {
        percent,
        passing: true,
        created_at: None,
    };
    for fact in [
        grade_fact(1.5, true, None),
        grade_fact(f64::NAN, true, None),
        certificate(-0.1),
    ] {
        Given::with(())
            .given_no_previous_events()
            .when_async(record(VERIFIED, day(20), fact))
            .await
            .then_expect_error(CompletionError::Invalid(Invalid::new(
                "percent",
                "must be between 0 and 1",
            )));
    }
}

#[tokio::test]
async fn a_malformed_run_id_is_refused() {
    let mut bad = record(VERIFIED, day(20), grade_fact(0.5, false, None));
    bad.course_run_id = CourseRunId(String::new());
    let error = Given::with(())
        .given_no_previous_events()
        .when_async(bad)
        .await
        .inspect_result()
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.field()),
        (ErrorKind::Validation, Some("course_run_id"))
    );
}

#[test]
fn accessors_reflect_the_applied_events() {
    let mut record = Completion::default();
    assert!(!record.is_completed());
    record.apply(grade_changed(0.9, true, Some(day(19))));
    assert!(record.decision(VERIFIED, day(20)).course_completed);
    assert!(!record.decision(AUDIT, day(20)).course_completed);
    record.apply(completed(
        GradeLabel::Pass,
        Some(0.9),
        day(20),
        ProgressStatus::Passed,
    ));
    assert!(record.is_completed());
    assert_eq!(record.completion().map(|c| c.completed_at), Some(day(20)));
    assert_eq!(record.facts().grade, Some(grade(0.9, true, Some(day(19)))));
    assert_eq!(CompletionError::KeyMismatch.kind(), ErrorKind::Conflict);
}

#[test]
fn labels_serialize_as_edx_spells_them() {
    use serde_json::json;
    assert_eq!(json!(GradeLabel::Pass), json!("Pass"));
    assert_eq!(json!(GradeLabel::Fail), json!("Fail"));
    assert_eq!(json!(GradeLabel::Audit), json!("Audit"));
    assert_eq!(json!(ProgressStatus::Passed), json!("Passed"));
    assert_eq!(json!(ProgressStatus::InProgress), json!("In Progress"));
}

#[test]
fn each_enrollment_has_its_own_stream() {
    let a = completion_stream_id(customer(), learner(), &run());
    assert_eq!(a, completion_stream_id(customer(), learner(), &run()));
    assert_eq!(
        a,
        stream_id(
            "completion",
            &[&customer().to_string(), &learner().to_string(), &run().0]
        )
    );
    let other = CourseRunId("course-v1:edX+DemoX+2026".into());
    assert_ne!(a, completion_stream_id(customer(), learner(), &other));
}
