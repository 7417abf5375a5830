use super::*;
use crate::error::{DomainError, ErrorKind, Invalid};
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use std::collections::BTreeMap;

type Given = TestFramework<ContentItem>;

const RUN: &str = "course-v1:edX+DemoX+Demo_Course";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn run() -> ContentMetadata {
    ContentMetadata {
        key: RUN.into(),
        content_type: ContentType::CourseRun,
        title: "edX Demonstration Course".into(),
        short_description: None,
        full_description: None,
        image_url: Some("https://cdn.example.com/demo.png".into()),
        marketing_url: None,
        enrollment_url: None,
        pacing_type: Some("self_paced".into()),
        start: None,
        end: None,
        language: Some("English".into()),
        first_enrollable_paid_seat_price: Some(149.0),
        estimated_hours: None,
        subjects: vec![],
        partners: vec!["edX".into()],
        seats: vec![Seat {
            mode: "verified".into(),
            price: 149.0,
            currency: "USD".into(),
            upgrade_deadline: None,
        }],
        course_key: Some("edX+DemoX".into()),
        course_run_keys: vec![],
        program_course_keys: vec![],
        program_type: None,
        attributes: BTreeMap::new(),
    }
}

fn renamed() -> ContentMetadata {
    ContentMetadata {
        title: "edX Demonstration Course (2024)".into(),
        ..run()
    }
}

fn publish(metadata: ContentMetadata) -> ContentCommand {
    ContentCommand::PublishContent {
        metadata,
        at: now(),
    }
}

fn retire() -> ContentCommand {
    ContentCommand::RetireContent {
        content_type: ContentType::CourseRun,
        key: RUN.into(),
        at: now(),
    }
}

fn published(metadata: ContentMetadata) -> ContentEvent {
    ContentEvent::ContentPublished { metadata }
}

fn updated(metadata: ContentMetadata) -> ContentEvent {
    ContentEvent::ContentUpdated { metadata }
}

fn retired() -> ContentEvent {
    ContentEvent::ContentRetired {
        content_type: ContentType::CourseRun,
        key: RUN.into(),
    }
}

#[tokio::test]
async fn publishing_a_new_item_records_it_as_published() {
    Given::with(())
        .given_no_previous_events()
        .when_async(publish(run()))
        .await
        .then_expect_events(vec![published(run())]);
}

#[tokio::test]
async fn publishing_changed_metadata_records_the_update() {
    Given::with(())
        .given(vec![published(run())])
        .when_async(publish(renamed()))
        .await
        .then_expect_events(vec![updated(renamed())]);
}

#[tokio::test]
async fn publishing_the_same_metadata_again_appends_nothing() {
    Given::with(())
        .given(vec![published(run()), updated(renamed())])
        .when_async(publish(renamed()))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn publishing_a_retired_item_publishes_it_again() {
    Given::with(())
        .given(vec![published(run()), retired()])
        .when_async(publish(run()))
        .await
        .then_expect_events(vec![published(run())]);
}

#[tokio::test]
async fn retiring_a_published_item_records_the_retirement() {
    Given::with(())
        .given(vec![published(run())])
        .when_async(retire())
        .await
        .then_expect_events(vec![retired()]);
}

#[tokio::test]
async fn retiring_a_retired_item_appends_nothing() {
    Given::with(())
        .given(vec![published(run()), retired()])
        .when_async(retire())
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn retiring_an_item_never_published_is_refused_as_not_found() {
    Given::with(())
        .given_no_previous_events()
        .when_async(retire())
        .await
        .then_expect_error(ContentError::ContentNotFound);
    assert_eq!(ContentError::ContentNotFound.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn publishing_another_key_on_this_stream_is_a_conflict() {
    let other = ContentMetadata {
        key: "course-v1:edX+DemoX+Other".into(),
        ..run()
    };
    Given::with(())
        .given(vec![published(run())])
        .when_async(publish(other))
        .await
        .then_expect_error(ContentError::KeyMismatch);
    assert_eq!(ContentError::KeyMismatch.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn retiring_another_type_on_this_stream_is_a_conflict() {
    Given::with(())
        .given(vec![published(run())])
        .when_async(ContentCommand::RetireContent {
            content_type: ContentType::Course,
            key: RUN.into(),
            at: now(),
        })
        .await
        .then_expect_error(ContentError::KeyMismatch);
}

#[tokio::test]
async fn a_key_with_whitespace_is_invalid() {
    let bad = ContentMetadata {
        key: "edX DemoX".into(),
        ..run()
    };
    Given::with(())
        .given_no_previous_events()
        .when_async(publish(bad))
        .await
        .then_expect_error(ContentError::Invalid(Invalid::new(
            "key",
            "must be 1 to 255 characters without whitespace",
        )));
}

#[tokio::test]
async fn retiring_a_blank_key_is_invalid() {
    Given::with(())
        .given(vec![published(run())])
        .when_async(ContentCommand::RetireContent {
            content_type: ContentType::CourseRun,
            key: String::new(),
            at: now(),
        })
        .await
        .then_expect_error(ContentError::Invalid(Invalid::new(
            "key",
            "must be 1 to 255 characters without whitespace",
        )));
}

#[tokio::test]
async fn a_program_key_must_be_a_uuid() {
    let program = ContentMetadata {
        key: "not-a-uuid".into(),
        content_type: ContentType::Program,
        ..run()
    };
    Given::with(())
        .given_no_previous_events()
        .when_async(publish(program))
        .await
        .then_expect_error(ContentError::Invalid(Invalid::new(
            "key",
            "a program's key must be its uuid",
        )));
}

#[tokio::test]
async fn a_blank_or_long_title_is_invalid() {
    for title in [" ".to_string(), "x".repeat(256)] {
        let result = Given::with(())
            .given_no_previous_events()
            .when_async(publish(ContentMetadata { title, ..run() }))
            .await
            .inspect_result();
        let err = result.unwrap_err();
        assert_eq!(err.field(), Some("title"));
        assert_eq!(err.kind(), ErrorKind::Validation);
    }
}

#[tokio::test]
async fn a_present_url_must_be_absolute() {
    let bad = ContentMetadata {
        marketing_url: Some("course/demo".into()),
        ..run()
    };
    Given::with(())
        .given_no_previous_events()
        .when_async(publish(bad))
        .await
        .then_expect_error(ContentError::Invalid(Invalid::new(
            "marketing_url",
            "must be an absolute http(s) URL",
        )));
}

#[tokio::test]
async fn a_price_that_is_not_a_finite_positive_number_is_invalid() {
    for price in [f64::NAN, -1.0] {
        let bad = ContentMetadata {
            first_enrollable_paid_seat_price: Some(price),
            ..run()
        };
        let err = Given::with(())
            .given_no_previous_events()
            .when_async(publish(bad))
            .await
            .inspect_result()
            .unwrap_err();
        assert_eq!(err.field(), Some("first_enrollable_paid_seat_price"));
    }
}

#[test]
fn state_follows_publication_and_retirement() {
    let mut item = ContentItem::default();
    assert!(!item.is_published());
    assert_eq!(item.metadata(), None);
    item.apply(published(run()));
    assert!(item.is_published());
    item.apply(updated(renamed()));
    assert_eq!(item.metadata(), Some(&renamed()));
    item.apply(retired());
    assert!(!item.is_published());
    assert_eq!(item.metadata(), Some(&renamed()), "kept after retirement");
}

#[test]
fn streams_are_keyed_by_type_and_key() {
    let a = content_stream_id(ContentType::CourseRun, RUN);
    assert_eq!(a, content_stream_id(ContentType::CourseRun, RUN));
    assert_ne!(a, content_stream_id(ContentType::Course, RUN));
    assert_ne!(
        a,
        content_stream_id(ContentType::CourseRun, "course-v1:edX+Other+1")
    );
}

#[test]
fn content_types_use_the_discovery_spelling() {
    for (t, s) in [
        (ContentType::Course, "course"),
        (ContentType::CourseRun, "courserun"),
        (ContentType::Program, "program"),
    ] {
        assert_eq!(serde_json::to_value(t).unwrap(), s);
        assert_eq!(serde_json::from_value::<ContentType>(s.into()).unwrap(), t);
    }
}

#[test]
fn events_round_trip_through_json() {
    for event in [published(run()), updated(renamed()), retired()] {
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<ContentEvent>(&text).unwrap(), event);
    }
}

#[test]
fn the_filter_view_is_flat_and_typed_fields_win() {
    let mut metadata = run();
    metadata
        .attributes
        .insert("language".into(), serde_json::json!("French"));
    metadata
        .attributes
        .insert("level_type".into(), serde_json::json!("Intermediate"));
    let view = metadata.filter_view();
    assert_eq!(view["key"], RUN);
    assert_eq!(view["content_type"], "courserun");
    assert_eq!(view["aggregation_key"], "courserun:edX+DemoX");
    assert_eq!(view["language"], "English");
    assert_eq!(view["level_type"], "Intermediate");
    assert_eq!(view["seat_types"], serde_json::json!(["verified"]));
    assert_eq!(view["first_enrollable_paid_seat_price"], 149.0);
    assert_eq!(view["course_key"], "edX+DemoX");
    assert!(
        view.get("program_type").is_none(),
        "absent typed fields are left out"
    );
}

#[test]
fn aggregation_keys_follow_edx() {
    let course = ContentMetadata {
        key: "edX+DemoX".into(),
        content_type: ContentType::Course,
        course_key: None,
        ..run()
    };
    assert_eq!(course.aggregation_key(), "course:edX+DemoX");
    let uuid = "52ad909b-c57d-4ff1-bab3-999813a2479b";
    let program = ContentMetadata {
        key: uuid.into(),
        content_type: ContentType::Program,
        course_key: None,
        ..run()
    };
    assert_eq!(program.aggregation_key(), format!("program:{uuid}"));
    let run_without_course = ContentMetadata {
        course_key: None,
        ..run()
    };
    assert_eq!(run_without_course.aggregation_key(), "courserun:edX+DemoX");
}
