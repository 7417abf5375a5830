use super::command::Action;
use super::*;
use crate::error::{DomainError, Invalid};
use crate::ids::CourseKey;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type Given = TestFramework<Consent>;

fn customer() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}

fn learner() -> LearnerId {
    LearnerId(Uuid::from_u128(2))
}

fn course() -> ConsentSubject {
    ConsentSubject::Course(CourseKey("edX+DemoX".into()))
}

fn command(action: Action) -> ConsentCommand {
    ConsentCommand {
        customer_id: customer(),
        learner_id: learner(),
        subject: course(),
        source: ConsentSource::Api,
        action,
    }
}

fn granted() -> ConsentEvent {
    ConsentEvent::ConsentGranted {
        customer_id: customer(),
        learner_id: learner(),
        subject: course(),
        source: ConsentSource::Api,
    }
}

fn declined() -> ConsentEvent {
    ConsentEvent::ConsentDeclined {
        customer_id: customer(),
        learner_id: learner(),
        subject: course(),
        source: ConsentSource::Api,
    }
}

fn revoked() -> ConsentEvent {
    ConsentEvent::ConsentRevoked {
        customer_id: customer(),
        learner_id: learner(),
        subject: course(),
        source: ConsentSource::Api,
    }
}

#[tokio::test]
async fn grant_from_never_asked_records_the_grant() {
    Given::with(())
        .given_no_previous_events()
        .when_async(command(Action::Grant))
        .await
        .then_expect_events(vec![granted()]);
}

#[tokio::test]
async fn granting_again_appends_nothing() {
    Given::with(())
        .given(vec![granted()])
        .when_async(command(Action::Grant))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn decline_from_never_asked_records_the_decline() {
    Given::with(())
        .given_no_previous_events()
        .when_async(command(Action::Decline))
        .await
        .then_expect_events(vec![declined()]);
}

#[tokio::test]
async fn declining_a_granted_consent_is_refused() {
    Given::with(())
        .given(vec![granted()])
        .when_async(command(Action::Decline))
        .await
        .then_expect_error(ConsentError::GrantedUseRevoke);
}

#[tokio::test]
async fn revoke_takes_back_a_grant() {
    Given::with(())
        .given(vec![granted()])
        .when_async(command(Action::Revoke))
        .await
        .then_expect_events(vec![revoked()]);
}

#[tokio::test]
async fn revoking_what_was_never_granted_is_refused() {
    Given::with(())
        .given_no_previous_events()
        .when_async(command(Action::Revoke))
        .await
        .then_expect_error(ConsentError::NotGranted);
    Given::with(())
        .given(vec![declined()])
        .when_async(command(Action::Revoke))
        .await
        .then_expect_error(ConsentError::NotGranted);
}

#[tokio::test]
async fn refusing_leaves_the_consent_not_granted_whatever_it_was() {
    Given::with(())
        .given(vec![granted()])
        .when_async(command(Action::Refuse))
        .await
        .then_expect_events(vec![revoked()]);
    Given::with(())
        .given_no_previous_events()
        .when_async(command(Action::Refuse))
        .await
        .then_expect_events(vec![declined()]);
    Given::with(())
        .given(vec![granted(), revoked()])
        .when_async(command(Action::Refuse))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn grant_after_revocation_is_recorded() {
    Given::with(())
        .given(vec![granted(), revoked()])
        .when_async(command(Action::Grant))
        .await
        .then_expect_events(vec![granted()]);
}

#[tokio::test]
async fn a_command_for_another_key_is_refused() {
    let mut other = command(Action::Grant);
    other.learner_id = LearnerId(Uuid::from_u128(99));
    Given::with(())
        .given(vec![declined()])
        .when_async(other)
        .await
        .then_expect_error(ConsentError::KeyMismatch);
}

#[tokio::test]
async fn a_blank_course_key_is_invalid() {
    let mut bad = command(Action::Grant);
    bad.subject = ConsentSubject::Course(CourseKey(String::new()));
    Given::with(())
        .given_no_previous_events()
        .when_async(bad)
        .await
        .then_expect_error(ConsentError::Invalid(Invalid::new(
            "course_id",
            "must be 1 to 255 characters without whitespace",
        )));
}

#[test]
fn a_run_id_resolves_to_the_course_level_subject() {
    assert_eq!(
        ConsentSubject::for_course_id("course-v1:edX+DemoX+2024"),
        course()
    );
    assert_eq!(ConsentSubject::for_course_id("edX+DemoX"), course());
}

#[test]
fn runs_of_one_course_share_one_stream() {
    let a = consent_stream_id(
        customer(),
        learner(),
        &ConsentSubject::for_course_id("course-v1:edX+DemoX+1"),
    );
    let b = consent_stream_id(
        customer(),
        learner(),
        &ConsentSubject::for_course_id("course-v1:edX+DemoX+2"),
    );
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_course_subject_holding_a_run_id_is_refused() {
    let mut bad = command(Action::Grant);
    bad.subject = ConsentSubject::Course(CourseKey("course-v1:edX+DemoX+1".into()));
    let err = Given::with(())
        .given_no_previous_events()
        .when_async(bad)
        .await
        .inspect_result()
        .unwrap_err();
    assert_eq!(err.field(), Some("course_id"));
}
