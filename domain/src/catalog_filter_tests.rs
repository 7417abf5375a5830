use super::*;
use crate::content::discovery::from_discovery;
use crate::content::ContentType;
use serde_json::json;

const COURSE: &str = include_str!("../../fixtures/discovery/course.json");
const COURSE_RUN: &str = include_str!("../../fixtures/discovery/course_run.json");
const PROGRAM: &str = include_str!("../../fixtures/discovery/program.json");

const PROGRAM_UUID: &str = "52ad909b-c57d-4ff1-bab3-999813a2479b";

fn view(content_type: ContentType, text: &str) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap();
    from_discovery(content_type, &doc).unwrap().filter_view()
}

fn course() -> Value {
    view(ContentType::Course, COURSE)
}

fn run() -> Value {
    view(ContentType::CourseRun, COURSE_RUN)
}

fn program() -> Value {
    view(ContentType::Program, PROGRAM)
}

fn filter(value: Value) -> ContentFilter {
    parse(&value).expect("a valid filter")
}

/// Which of course, run and program the filter admits.
fn admits(value: Value) -> [bool; 3] {
    let f = filter(value);
    [
        f.matches(&course()),
        f.matches(&run()),
        f.matches(&program()),
    ]
}

fn refusal(value: Value) -> Invalid {
    parse(&value).expect_err("an invalid filter")
}

#[test]
fn the_empty_filter_matches_everything() {
    let f = filter(json!({}));
    assert!(f.matches_everything());
    assert_eq!(admits(json!({})), [true, true, true]);
    assert!(f.matches(&json!({})));
}

#[test]
fn a_filter_must_be_an_object() {
    for bad in [json!([]), json!("content_type=course"), Value::Null] {
        assert_eq!(
            refusal(bad),
            Invalid::new("content_filter", "must be a JSON object")
        );
    }
}

#[test]
fn a_scalar_means_equality() {
    assert_eq!(
        admits(json!({"content_type": "course"})),
        [true, false, false]
    );
    assert_eq!(
        admits(json!({"content_type": "courserun"})),
        [false, true, false]
    );
    assert_eq!(
        admits(json!({"program_type": "Professional Certificate"})),
        [false, false, true]
    );
}

#[test]
fn string_equality_is_case_sensitive() {
    assert_eq!(admits(json!({"language": "English"})), [false, true, false]);
    assert_eq!(
        admits(json!({"language": "english"})),
        [false, false, false]
    );
}

#[test]
fn a_list_means_any_of() {
    assert_eq!(
        admits(json!({"content_type": ["course", "program"]})),
        [true, false, true]
    );
    assert_eq!(
        admits(json!({"aggregation_key": ["courserun:edX+DemoX", "course:edX+DemoX"]})),
        [true, true, false]
    );
}

#[test]
fn an_empty_list_matches_nothing() {
    assert_eq!(admits(json!({"content_type": []})), [false, false, false]);
    assert_eq!(admits(json!({"key": []})), [false, false, false]);
}

#[test]
fn any_element_of_a_list_field_may_satisfy_an_entry() {
    assert_eq!(admits(json!({"partners": "edX"})), [true, false, true]);
    assert_eq!(
        admits(json!({"seat_types": "verified"})),
        [false, true, false]
    );
    assert_eq!(
        admits(json!({"seat_types": ["professional", "audit"]})),
        [false, true, false]
    );
    assert_eq!(
        admits(json!({"applicable_seat_types": "credit"})),
        [false, false, true]
    );
}

#[test]
fn numbers_compare_numerically_and_numeric_strings_equal_numbers() {
    for price in [json!(149), json!(149.0), json!("149"), json!("149.00")] {
        assert_eq!(
            admits(json!({"first_enrollable_paid_seat_price": price})),
            [false, true, false],
            "{price}"
        );
    }
    assert_eq!(
        admits(json!({"first_enrollable_paid_seat_price": "cheap"})),
        [false, false, false]
    );
    assert_eq!(
        admits(json!({"weeks_to_complete": [9, 10]})),
        [false, true, false]
    );
}

#[test]
fn booleans_equal_booleans_and_their_strings() {
    assert_eq!(admits(json!({"is_enrollable": true})), [false, true, false]);
    assert_eq!(
        admits(json!({"is_enrollable": "true"})),
        [false, true, false]
    );
    assert_eq!(
        admits(json!({"is_enrollable": "True"})),
        [false, false, false]
    );
    assert_eq!(admits(json!({"hidden": false})), [false, true, false]);
    assert_eq!(admits(json!({"hidden": 0})), [false, false, false]);
}

#[test]
fn comparisons_take_numbers_or_numeric_strings() {
    let price = |op: &str, bound: Value| {
        let name = format!("first_enrollable_paid_seat_price__{op}");
        filter(json!({ name: bound })).matches(&run())
    };
    assert!(!price("lte", json!("100")));
    assert!(price("lte", json!("149")));
    assert!(!price("lt", json!(149)));
    assert!(price("lt", json!(149.5)));
    assert!(price("gte", json!(149.0)));
    assert!(!price("gt", json!("149")));
    assert!(price("gt", json!("100.5")));
}

#[test]
fn a_comparison_fails_on_a_missing_or_non_numeric_field() {
    assert_eq!(
        admits(json!({"first_enrollable_paid_seat_price__lte": 1000})),
        [false, true, false]
    );
    assert_eq!(admits(json!({"title__gte": 0})), [false, false, false]);
    let numeric_string = json!({"price": "99.50"});
    assert!(filter(json!({"price__lt": 100})).matches(&numeric_string));
    let listed = json!({"efforts": [2, "x", 8]});
    assert!(filter(json!({"efforts__gt": 5})).matches(&listed));
    assert!(!filter(json!({"efforts__gt": 8})).matches(&listed));
}

#[test]
fn a_missing_or_null_field_fails_its_entry() {
    // level_type is null in the course fixture and set on the run.
    assert_eq!(
        admits(json!({"level_type": "Type 1"})),
        [false, true, false]
    );
    assert!(!filter(json!({"level_type": "x"})).matches(&json!({"level_type": null})));
    assert_eq!(admits(json!({"no_such_field": "x"})), [false, false, false]);
}

#[test]
fn every_entry_must_hold() {
    let both = json!({"content_type": "courserun", "pacing_type": "instructor_paced"});
    assert_eq!(admits(both), [false, true, false]);
    let one_fails = json!({"content_type": "courserun", "pacing_type": "self_paced"});
    assert_eq!(admits(one_fails), [false, false, false]);
}

#[test]
fn a_course_key_admits_the_course_and_its_runs() {
    assert_eq!(admits(json!({"key": ["edX+DemoX"]})), [true, true, false]);
}

#[test]
fn a_run_key_admits_only_that_run() {
    assert_eq!(
        admits(json!({"key": ["course-v1:edX+DemoX+Demo_Course"]})),
        [false, true, false]
    );
}

#[test]
fn a_program_is_listed_by_its_uuid() {
    assert_eq!(
        admits(json!({"key": ["edX+Other", PROGRAM_UUID]})),
        [false, false, true]
    );
}

#[test]
fn only_a_run_is_admitted_through_its_course_key() {
    let not_a_run = json!({"key": "x", "content_type": "course", "course_key": "edX+DemoX"});
    assert!(!filter(json!({"key": ["edX+DemoX"]})).matches(&not_a_run));
}

#[test]
fn key_must_be_a_list_of_strings() {
    for bad in [json!("edX+DemoX"), json!(["edX+DemoX", 7]), json!({"a": 1})] {
        assert_eq!(
            refusal(json!({ "key": bad })),
            Invalid::new("content_filter", "`key`: must be a list of strings")
        );
    }
}

#[test]
fn an_unknown_operator_is_refused_naming_the_entry() {
    let err = refusal(json!({"org__exclude": ["MITx"]}));
    assert_eq!(err.field, "content_filter");
    assert!(err
        .reason
        .starts_with("`org__exclude`: unsupported operator `__exclude`"));
    assert!(refusal(json!({"price__": 1})).reason.contains("`price__`"));
}

#[test]
fn an_empty_field_name_is_refused() {
    for name in ["", "__lte"] {
        assert!(refusal(json!({ name: 1 }))
            .reason
            .contains("the field name is empty"));
    }
}

#[test]
fn a_comparison_value_must_be_numeric() {
    for bad in [
        json!("a hundred"),
        json!(true),
        json!([100]),
        Value::Null,
        json!("NaN"),
    ] {
        assert_eq!(
            refusal(json!({"first_enrollable_paid_seat_price__lte": bad})),
            Invalid::new(
                "content_filter",
                "`first_enrollable_paid_seat_price__lte`: must be a number or numeric string"
            )
        );
    }
}

#[test]
fn null_object_and_nested_values_are_refused() {
    for bad in [
        Value::Null,
        json!({"a": 1}),
        json!(["course", ["nested"]]),
        json!([null]),
    ] {
        let err = refusal(json!({ "content_type": bad }));
        assert_eq!(err.field, "content_filter");
        assert!(err.reason.starts_with("`content_type`:"), "{}", err.reason);
    }
}

#[test]
fn an_edx_style_catalog_filter_selects_the_paid_run() {
    let edx = json!({
        "content_type": "courserun",
        "pacing_type": ["instructor_paced", "self_paced"],
        "first_enrollable_paid_seat_price__lte": "150",
        "aggregation_key": ["courserun:edX+DemoX"],
    });
    assert_eq!(admits(edx), [false, true, false]);
}

#[test]
fn the_source_is_kept_unchanged() {
    let source = json!({"key": ["edX+DemoX"], "first_enrollable_paid_seat_price__lte": "100"});
    assert_eq!(filter(source.clone()).as_json(), &source);
}

#[test]
fn fixture_views_expose_the_documented_fields() {
    let run = run();
    assert_eq!(run["aggregation_key"], "courserun:edX+DemoX");
    assert_eq!(run["course_key"], "edX+DemoX");
    assert_eq!(run["seat_types"], json!(["audit", "verified"]));
    assert_eq!(course()["aggregation_key"], "course:edX+DemoX");
    assert_eq!(course()["partners"], json!(["edX"]));
    assert_eq!(
        program()["aggregation_key"],
        format!("program:{PROGRAM_UUID}")
    );
    assert_eq!(program()["key"], PROGRAM_UUID);
}

#[test]
fn a_view_cut_down_to_the_filters_fields_gets_the_same_answer() {
    let filters = [
        json!({}),
        json!({"content_type": "courserun", "pacing_type": ["instructor_paced", "self_paced"]}),
        json!({"key": ["edX+DemoX"]}),
        json!({"key": ["course-v1:edX+DemoX+Demo_Course"], "level_type": "Introductory"}),
        json!({"first_enrollable_paid_seat_price__lte": 100, "partners": "edX"}),
        json!({"seat_types": "verified", "language": "en-us"}),
    ];
    let mut answers = Vec::new();
    for value in filters {
        let f = filter(value.clone());
        let fields = f.fields();
        for full in [course(), run(), program()] {
            let cut: serde_json::Map<String, Value> = full
                .as_object()
                .unwrap()
                .iter()
                .filter(|(name, _)| fields.contains(&name.as_str()))
                .map(|(name, v)| (name.clone(), v.clone()))
                .collect();
            let answer = f.matches(&full);
            assert_eq!(
                f.matches(&Value::Object(cut)),
                answer,
                "{value} on {}",
                full["key"]
            );
            answers.push(answer);
        }
    }
    // Both answers occur: the cut views decide something.
    assert!(answers.contains(&true) && answers.contains(&false));
}
