//! Pure parsers from course-discovery documents (a course, a course run or a program, in the
//! JSON shape discovery and enterprise-catalog's `search/all` serve) to [`ContentMetadata`].
//!
//! Only the key (`key`, or `uuid` for a program) and the `title` are required. A known optional
//! field of an unexpected shape is treated as absent, and unknown fields are never an error:
//! upstream adds fields often, and one odd value must not stop ingestion. URLs that are not
//! absolute http(s) (edX's fakes carry relative marketing URLs) are dropped, since no learner
//! could follow them. The document's other top-level scalar (or list-of-scalar) fields are kept
//! in `attributes`, except fields about people (instructors, staff), which are never kept.

use super::command::{ContentMetadata, ContentType, Seat};
use crate::error::Invalid;
use crate::ids::course_key_of_run;
use crate::validate;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Fields about people: never kept, whatever their shape.
const PERSONAL_FIELDS: &[&str] = &["instructors", "staff", "email", "username"];

/// Fields every parser reads itself (`content_type` is the argument, checked against it).
const COMMON_FIELDS: &[&str] = &["content_type", "title", "first_enrollable_paid_seat_price"];

const RUN_FIELDS: &[&str] = &[
    "key",
    "short_description",
    "full_description",
    "image",
    "marketing_url",
    "enrollment_url",
    "pacing_type",
    "start",
    "end",
    "content_language",
    "language",
    "seats",
    "course",
    "estimated_hours",
    "subjects",
];

const COURSE_FIELDS: &[&str] = &[
    "key",
    "short_description",
    "full_description",
    "image",
    "card_image_url",
    "marketing_url",
    "enrollment_url",
    "course_runs",
    "owners",
    "subjects",
];

const PROGRAM_FIELDS: &[&str] = &[
    "uuid",
    "subtitle",
    "overview",
    "card_image_url",
    "banner_image_url",
    "banner_image",
    "marketing_url",
    "type",
    "courses",
    "authoring_organizations",
    "subjects",
];

/// Parses one discovery document of the given type. Fails, naming the field, when the document
/// is not an object (`content`), its `content_type` names another type (`content_type`), or its
/// key (`key`, `uuid` for programs) or `title` is missing or not a string.
pub fn from_discovery(content_type: ContentType, doc: &Value) -> Result<ContentMetadata, Invalid> {
    let doc = doc
        .as_object()
        .ok_or_else(|| Invalid::new("content", "must be a JSON object"))?;
    if let Some(found) = doc.get("content_type").and_then(Value::as_str) {
        if found != content_type.as_str() {
            return Err(Invalid::new(
                "content_type",
                format!("is `{found}`, expected `{content_type}`"),
            ));
        }
    }
    let key_field = match content_type {
        ContentType::Program => "uuid",
        ContentType::Course | ContentType::CourseRun => "key",
    };
    let key = required(doc, key_field)?;
    let title = required(doc, "title")?;
    let mut metadata = ContentMetadata {
        key,
        content_type,
        title,
        short_description: None,
        full_description: None,
        image_url: None,
        marketing_url: url(doc.get("marketing_url")),
        enrollment_url: None,
        pacing_type: None,
        start: None,
        end: None,
        language: None,
        first_enrollable_paid_seat_price: number(doc.get("first_enrollable_paid_seat_price")),
        estimated_hours: None,
        subjects: subjects(doc.get("subjects")),
        partners: Vec::new(),
        seats: Vec::new(),
        course_key: None,
        course_run_keys: Vec::new(),
        program_course_keys: Vec::new(),
        program_type: None,
        attributes: BTreeMap::new(),
    };
    let read = match content_type {
        ContentType::CourseRun => {
            metadata.short_description = string(doc.get("short_description"));
            metadata.full_description = string(doc.get("full_description"));
            metadata.image_url = image(doc.get("image"));
            metadata.enrollment_url = url(doc.get("enrollment_url"));
            metadata.pacing_type = string(doc.get("pacing_type"));
            metadata.start = date(doc.get("start"));
            metadata.end = date(doc.get("end"));
            metadata.language =
                string(doc.get("content_language")).or_else(|| string(doc.get("language")));
            metadata.seats = seats(doc.get("seats"));
            metadata.course_key =
                string(doc.get("course")).or_else(|| course_key_of_run(&metadata.key).map(|k| k.0));
            metadata.estimated_hours =
                number(doc.get("estimated_hours")).or_else(|| number(doc.get("max_effort")));
            RUN_FIELDS
        }
        ContentType::Course => {
            metadata.short_description = string(doc.get("short_description"));
            metadata.full_description = string(doc.get("full_description"));
            metadata.image_url = image(doc.get("image")).or_else(|| url(doc.get("card_image_url")));
            metadata.enrollment_url = url(doc.get("enrollment_url"));
            metadata.course_run_keys = keys(doc.get("course_runs"), "key");
            metadata.partners = keys(doc.get("owners"), "key");
            COURSE_FIELDS
        }
        ContentType::Program => {
            metadata.short_description = string(doc.get("subtitle"));
            metadata.full_description = string(doc.get("overview"));
            metadata.image_url = url(doc.get("card_image_url"))
                .or_else(|| url(doc.get("banner_image_url")))
                .or_else(|| banner(doc.get("banner_image")));
            metadata.program_type = string(doc.get("type"));
            metadata.program_course_keys = keys(doc.get("courses"), "key");
            metadata.partners = keys(doc.get("authoring_organizations"), "key");
            PROGRAM_FIELDS
        }
    };
    metadata.attributes = attributes(doc, read);
    Ok(metadata)
}

/// A required, non-blank string field.
fn required(doc: &Map<String, Value>, field: &'static str) -> Result<String, Invalid> {
    match doc.get(field) {
        None | Some(Value::Null) => Err(Invalid::new(field, "is required")),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(Invalid::new(field, "must not be blank")),
        Some(_) => Err(Invalid::new(field, "must be a string")),
    }
}

/// A non-blank string, else absent.
fn string(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

/// An absolute http(s) URL, else absent.
fn url(value: Option<&Value>) -> Option<String> {
    string(value).filter(|u| validate::url("url", u).is_ok())
}

/// An image as discovery gives it: an object with `src` (or `url`), or the URL itself.
fn image(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Object(image) => url(image.get("src")).or_else(|| url(image.get("url"))),
        other => url(Some(other)),
    }
}

/// A program's `banner_image`: sizes (`large`, `medium`, ...) each with a `url`.
fn banner(value: Option<&Value>) -> Option<String> {
    let sizes = value?.as_object()?;
    ["large", "medium", "small", "x-small"]
        .iter()
        .find_map(|size| image(sizes.get(*size)))
}

/// A finite number, given as a JSON number or a numeric string (discovery serves decimal
/// prices as strings such as `"149.00"`).
fn number(value: Option<&Value>) -> Option<f64> {
    let n = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// An RFC 3339 timestamp, else absent.
fn date(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The `field` of each object of a list (or each string of it).
fn keys(value: Option<&Value>, field: &str) -> Vec<String> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Object(object) => string(object.get(field)),
            other => string(Some(other)),
        })
        .collect()
}

/// Subjects as names, falling back to slugs (or plain strings).
fn subjects(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Object(subject) => {
                string(subject.get("name")).or_else(|| string(subject.get("slug")))
            }
            other => string(Some(other)),
        })
        .collect()
}

/// Seats with a mode and a price; a seat without either is skipped. Discovery's currency
/// default is USD.
fn seats(value: Option<&Value>) -> Vec<Seat> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let seat = item.as_object()?;
            Some(Seat {
                mode: string(seat.get("type"))?,
                price: number(seat.get("price"))?,
                currency: string(seat.get("currency")).unwrap_or_else(|| "USD".to_string()),
                upgrade_deadline: date(seat.get("upgrade_deadline")),
            })
        })
        .collect()
}

/// The top-level fields not read into typed fields, kept when scalar (not null) or a list of
/// scalars; never fields about people.
fn attributes(doc: &Map<String, Value>, read: &[&str]) -> BTreeMap<String, Value> {
    let is_scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    doc.iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !read.contains(&name)
                && !COMMON_FIELDS.contains(&name)
                && !PERSONAL_FIELDS.contains(&name)
        })
        .filter(|(_, value)| match value {
            Value::Array(items) => items.iter().all(is_scalar),
            other => is_scalar(other),
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
