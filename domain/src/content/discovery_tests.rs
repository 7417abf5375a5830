use super::*;
use serde_json::json;

const COURSE: &str = include_str!("../../../fixtures/discovery/course.json");
const COURSE_RUN: &str = include_str!("../../../fixtures/discovery/course_run.json");
const PROGRAM: &str = include_str!("../../../fixtures/discovery/program.json");

fn parse(content_type: ContentType, text: &str) -> ContentMetadata {
    let doc: Value = serde_json::from_str(text).expect("fixture is JSON");
    from_discovery(content_type, &doc).expect("fixture parses")
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[test]
fn a_course_run_fixture_parses_to_its_metadata() {
    let run = parse(ContentType::CourseRun, COURSE_RUN);
    assert_eq!(run.key, "course-v1:edX+DemoX+Demo_Course");
    assert_eq!(run.content_type, ContentType::CourseRun);
    assert_eq!(run.title, "edX Demonstration Course");
    assert_eq!(
        run.short_description.as_deref(),
        Some("This course demonstrates many features of the edX platform.")
    );
    assert!(run.full_description.unwrap().starts_with("Lorem ipsum"));
    assert!(run
        .image_url
        .unwrap()
        .starts_with("http://edx.devstack.lms:18000/asset-v1:edX+DemoX"));
    assert_eq!(run.enrollment_url.as_deref(), Some("https://fake.url"));
    assert_eq!(run.pacing_type.as_deref(), Some("instructor_paced"));
    assert_eq!(run.start, Some(at("2013-02-05T05:00:00Z")));
    assert_eq!(run.end, Some(at("3000-12-31T18:00:00Z")));
    assert_eq!(run.language.as_deref(), Some("English"));
    assert_eq!(run.first_enrollable_paid_seat_price, Some(149.0));
    assert_eq!(run.estimated_hours, Some(6.0));
    assert_eq!(run.course_key.as_deref(), Some("edX+DemoX"));
    assert_eq!(
        run.seats,
        vec![
            Seat {
                mode: "audit".into(),
                price: 0.0,
                currency: "USD".into(),
                upgrade_deadline: None,
            },
            Seat {
                mode: "verified".into(),
                price: 149.0,
                currency: "USD".into(),
                upgrade_deadline: Some(at("2018-08-03T16:44:26.595896Z")),
            },
        ]
    );
}

#[test]
fn relative_marketing_urls_are_dropped() {
    let run = parse(ContentType::CourseRun, COURSE_RUN);
    assert_eq!(run.marketing_url, None);
    let program = parse(ContentType::Program, PROGRAM);
    assert_eq!(program.marketing_url, None);
}

#[test]
fn a_course_run_keeps_its_other_scalar_fields_as_attributes() {
    let run = parse(ContentType::CourseRun, COURSE_RUN);
    let attr = |name: &str| run.attributes.get(name).cloned();
    assert_eq!(attr("type"), Some(json!("verified")));
    assert_eq!(attr("level_type"), Some(json!("Type 1")));
    assert_eq!(attr("is_enrollable"), Some(json!(true)));
    assert_eq!(attr("weeks_to_complete"), Some(json!(10)));
    assert_eq!(attr("max_effort"), Some(json!(6)));
    assert_eq!(attr("transcript_languages"), Some(json!([])));
    // Null, typed and structured fields are not attributes.
    for absent in [
        "announcement",
        "key",
        "title",
        "seats",
        "image",
        "content_type",
        "course",
    ] {
        assert_eq!(attr(absent), None, "{absent}");
    }
}

#[test]
fn fields_about_people_are_never_kept() {
    let run = parse(ContentType::CourseRun, COURSE_RUN);
    assert!(!run.attributes.contains_key("staff"));
    assert!(!run.attributes.contains_key("instructors"));
    let text = serde_json::to_string(&run).unwrap();
    assert!(!text.contains("Agarwal"), "a staff name leaked: {text}");
    let mut doc: Value = serde_json::from_str(COURSE_RUN).unwrap();
    doc["instructors"] = json!(["Jane Doe"]);
    let run = from_discovery(ContentType::CourseRun, &doc).unwrap();
    assert!(!serde_json::to_string(&run).unwrap().contains("Jane Doe"));
}

#[test]
fn a_course_fixture_parses_to_its_metadata() {
    let course = parse(ContentType::Course, COURSE);
    assert_eq!(course.key, "edX+DemoX");
    assert_eq!(course.content_type, ContentType::Course);
    assert_eq!(course.title, "edX Demonstration Course");
    assert_eq!(
        course.course_run_keys,
        vec!["course-v1:edX+DemoX+Demo_Course"]
    );
    assert_eq!(course.partners, vec!["edX"]);
    assert!(course.subjects.is_empty());
    assert_eq!(course.image_url, None);
    assert_eq!(course.enrollment_url.as_deref(), Some("https://fake.url"));
    assert_eq!(course.course_key, None);
    assert_eq!(course.attributes.get("course_type"), Some(&json!("course")));
    assert_eq!(
        course.attributes.get("expected_learning_items"),
        Some(&json!(["XBlocks", "Peer Assessment"]))
    );
    assert!(!course.attributes.contains_key("normalized_metadata"));
    assert!(!course.attributes.contains_key("owners"));
}

#[test]
fn a_program_fixture_parses_to_its_metadata() {
    let program = parse(ContentType::Program, PROGRAM);
    assert_eq!(program.key, "52ad909b-c57d-4ff1-bab3-999813a2479b");
    assert_eq!(program.title, "Program Title 1");
    assert_eq!(
        program.short_description.as_deref(),
        Some("Program Subtitle 1")
    );
    assert_eq!(
        program.full_description.as_deref(),
        Some("This is a test Program.")
    );
    assert_eq!(
        program.program_type.as_deref(),
        Some("Professional Certificate")
    );
    assert_eq!(
        program.program_course_keys,
        vec![
            "course-v1:edX+DemoX+Demo_Course",
            "course-v1:edX+DemoX+Demo_Course2"
        ]
    );
    assert_eq!(program.partners, vec!["edX"]);
    assert_eq!(
        program.attributes.get("applicable_seat_types"),
        Some(&json!(["verified", "professional", "credit"]))
    );
    assert!(!program.attributes.contains_key("corporate_endorsements"));
    assert!(!program.attributes.contains_key("type"));
}

#[test]
fn parsed_fixtures_pass_the_aggregate_validation() {
    for (content_type, text) in [
        (ContentType::Course, COURSE),
        (ContentType::CourseRun, COURSE_RUN),
        (ContentType::Program, PROGRAM),
    ] {
        assert_eq!(parse(content_type, text).validate(), Ok(()));
    }
}

#[test]
fn a_missing_key_or_title_is_invalid_naming_the_field() {
    let mut run: Value = serde_json::from_str(COURSE_RUN).unwrap();
    run.as_object_mut().unwrap().remove("key");
    let err = from_discovery(ContentType::CourseRun, &run).unwrap_err();
    assert_eq!(err, Invalid::new("key", "is required"));

    let mut program: Value = serde_json::from_str(PROGRAM).unwrap();
    program["uuid"] = Value::Null;
    let err = from_discovery(ContentType::Program, &program).unwrap_err();
    assert_eq!(err.field, "uuid");

    let mut course: Value = serde_json::from_str(COURSE).unwrap();
    course["title"] = json!(42);
    let err = from_discovery(ContentType::Course, &course).unwrap_err();
    assert_eq!(err, Invalid::new("title", "must be a string"));
}

#[test]
fn unknown_and_oddly_shaped_fields_are_never_an_error() {
    let doc = json!({
        "key": "edX+X",
        "title": "X",
        "brand_new_field": {"nested": [1, 2]},
        "start": "not a date",
        "seats": [{"type": "verified", "price": "99.50"}, {"price": 3}],
        "first_enrollable_paid_seat_price": "99.50",
        "image": "https://cdn.example.com/x.png",
    });
    let run = from_discovery(ContentType::CourseRun, &doc).unwrap();
    assert_eq!(run.start, None);
    assert_eq!(run.first_enrollable_paid_seat_price, Some(99.5));
    assert_eq!(run.seats.len(), 1, "a seat without a mode is skipped");
    assert_eq!(run.seats[0].price, 99.5);
    assert_eq!(run.seats[0].currency, "USD");
    assert_eq!(
        run.image_url.as_deref(),
        Some("https://cdn.example.com/x.png")
    );
    assert!(!run.attributes.contains_key("brand_new_field"));
}

#[test]
fn a_run_without_a_course_field_takes_the_course_key_from_its_own_key() {
    let doc = json!({"key": "course-v1:MITx+6.00x+2024", "title": "Intro"});
    let run = from_discovery(ContentType::CourseRun, &doc).unwrap();
    assert_eq!(run.course_key.as_deref(), Some("MITx+6.00x"));
}

#[test]
fn estimated_hours_prefers_the_estimated_hours_field() {
    let doc = json!({"key": "k", "title": "t", "estimated_hours": 12, "max_effort": 6});
    let run = from_discovery(ContentType::CourseRun, &doc).unwrap();
    assert_eq!(run.estimated_hours, Some(12.0));
    assert!(!run.attributes.contains_key("estimated_hours"));
}

#[test]
fn subjects_are_names_or_slugs() {
    let doc = json!({
        "key": "edX+X",
        "title": "X",
        "subjects": [{"name": "Computer Science", "slug": "cs"}, {"slug": "math"}, "Physics"],
    });
    let course = from_discovery(ContentType::Course, &doc).unwrap();
    assert_eq!(course.subjects, vec!["Computer Science", "math", "Physics"]);
}

#[test]
fn a_program_image_falls_back_to_its_banner() {
    let doc = json!({
        "uuid": "52ad909b-c57d-4ff1-bab3-999813a2479b",
        "title": "P",
        "banner_image": {"large": {"url": "https://cdn.example.com/large.png"}},
    });
    let program = from_discovery(ContentType::Program, &doc).unwrap();
    assert_eq!(
        program.image_url.as_deref(),
        Some("https://cdn.example.com/large.png")
    );
}

#[test]
fn a_document_of_another_type_or_shape_is_refused() {
    let run: Value = serde_json::from_str(COURSE_RUN).unwrap();
    let err = from_discovery(ContentType::Course, &run).unwrap_err();
    assert_eq!(err.field, "content_type");
    let err = from_discovery(ContentType::Course, &json!([1])).unwrap_err();
    assert_eq!(err.field, "content");
}
