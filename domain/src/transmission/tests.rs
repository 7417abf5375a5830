use super::*;
use crate::error::{DomainError, Invalid};
use crate::ids::LearnerId;
use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

type Given = TestFramework<Transmission>;

fn item() -> Uuid {
    Uuid::from_u128(7)
}

fn attempt(number: u32, status: TransmissionStatus, http_status: Option<u16>) -> Attempt {
    Attempt {
        item_id: item(),
        config_id: ChannelConfigId(Uuid::from_u128(1)),
        customer_id: CustomerId(Uuid::from_u128(2)),
        channel: Channel::Degreed2,
        action: TransmissionAction::Completion,
        learner_id: Some(LearnerId(Uuid::from_u128(3))),
        attempt: number,
        status,
        http_status,
        excerpt: None,
        duration_ms: 42,
        at: Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap(),
    }
}

fn recorded(attempt: Attempt) -> TransmissionEvent {
    TransmissionEvent::TransmissionAttempted {
        item_id: attempt.item_id,
        config_id: attempt.config_id,
        customer_id: attempt.customer_id,
        channel: attempt.channel,
        action: attempt.action,
        learner_id: attempt.learner_id,
        attempt: attempt.attempt,
        status: attempt.status,
        http_status: attempt.http_status,
        excerpt: attempt.excerpt,
        duration_ms: attempt.duration_ms,
        at: attempt.at,
    }
}

fn record(attempt: Attempt) -> TransmissionCommand {
    TransmissionCommand::RecordAttempt(attempt)
}

#[tokio::test]
async fn a_first_attempt_is_recorded() {
    let sent = attempt(1, TransmissionStatus::Sent, Some(200));
    Given::with(())
        .given_no_previous_events()
        .when_async(record(sent.clone()))
        .await
        .then_expect_events(vec![recorded(sent)]);
}

#[tokio::test]
async fn a_resend_after_sent_is_recorded_too() {
    let sent = attempt(1, TransmissionStatus::Sent, Some(200));
    Given::with(())
        .given(vec![recorded(sent.clone())])
        .when_async(record(sent.clone()))
        .await
        .then_expect_events(vec![recorded(sent)]);
}

#[tokio::test]
async fn an_attempt_for_another_configuration_is_refused() {
    let mut other = attempt(2, TransmissionStatus::Failed, Some(500));
    other.config_id = ChannelConfigId(Uuid::from_u128(99));
    Given::with(())
        .given(vec![recorded(attempt(
            1,
            TransmissionStatus::Failed,
            Some(500),
        ))])
        .when_async(record(other))
        .await
        .then_expect_error(TransmissionError::KeyMismatch);
}

#[tokio::test]
async fn a_changed_action_keeps_the_record() {
    let mut update = attempt(2, TransmissionStatus::Sent, Some(200));
    update.action = TransmissionAction::Update;
    Given::with(())
        .given(vec![recorded(attempt(1, TransmissionStatus::Failed, None))])
        .when_async(record(update.clone()))
        .await
        .then_expect_events(vec![recorded(update)]);
}

#[tokio::test]
async fn attempt_zero_is_invalid() {
    Given::with(())
        .given_no_previous_events()
        .when_async(record(attempt(0, TransmissionStatus::Sent, None)))
        .await
        .then_expect_error(TransmissionError::Invalid(Invalid::new(
            "attempt",
            "must be 1 or more",
        )));
}

#[tokio::test]
async fn impossible_http_statuses_are_invalid() {
    for (status, code) in [
        (TransmissionStatus::Failed, 99),
        (TransmissionStatus::Failed, 600),
        (TransmissionStatus::DryRun, 200),
        (TransmissionStatus::Sent, 500),
    ] {
        let err = Given::with(())
            .given_no_previous_events()
            .when_async(record(attempt(1, status, Some(code))))
            .await
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.field(), Some("http_status"), "{status:?} {code}");
    }
}

#[tokio::test]
async fn the_excerpt_is_scrubbed_before_it_is_recorded() {
    let mut failed = attempt(1, TransmissionStatus::Failed, Some(400));
    failed.excerpt = Some(
        r#"{"errors":[{"detail":"Invalid user identifier: learner1@example.com"}],"access_token":"abc123"}"#
            .into(),
    );
    let mut expected = failed.clone();
    expected.excerpt = Some(
        r#"{"errors":[{"detail":"Invalid user identifier: [email]"}],"access_token":"[redacted]"}"#
            .into(),
    );
    Given::with(())
        .given_no_previous_events()
        .when_async(record(failed))
        .await
        .then_expect_events(vec![recorded(expected)]);
}

#[test]
fn scrub_redacts_bearer_tokens_and_long_keys_but_keeps_uuids() {
    let id = "1b0f1a5e-4c3d-4e2f-9a8b-7c6d5e4f3a2b";
    let key = "x".repeat(40);
    let text = format!("Authorization: Bearer eyJhbGciOi.abc\nid {id} key {key}");
    assert_eq!(
        scrub(&text).unwrap(),
        format!("Authorization: Bearer [redacted] id {id} key [redacted]")
    );
}

#[test]
fn scrub_cuts_long_text_and_drops_empty_text() {
    let long = "word ".repeat(200);
    let cut = scrub(&long).unwrap();
    assert_eq!(cut.chars().count(), EXCERPT_MAX);
    assert!(cut.ends_with('…'));
    assert_eq!(scrub(" \n\t "), None);
}

#[test]
fn streams_are_per_item() {
    assert_eq!(
        transmission_stream_id(item()),
        transmission_stream_id(item())
    );
    assert_ne!(
        transmission_stream_id(item()),
        transmission_stream_id(Uuid::from_u128(8))
    );
}
