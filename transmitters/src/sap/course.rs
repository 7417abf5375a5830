//! One OCN course item (`ocnCourses[]`) built from the content metadata the outbox keeps, as
//! edX's SAP content exporter maps it: locale arrays for title and description, one launch
//! point, the schedule in epoch milliseconds, a price.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

/// The settings a course item depends on.
pub struct CourseSettings<'a> {
    pub provider_id: &'a str,
    pub additional_locales: &'a [String],
}

/// edX's stand-ins for a course run without a start or an end (`UNIX_MIN_DATE_STRING`,
/// `UNIX_MAX_DATE_STRING`).
const UNIX_MIN_MS: i64 = 0;
const UNIX_MAX_MS: i64 = 2_147_483_647_000;

/// The locale SAP knows the content by when nothing says otherwise.
const DEFAULT_LOCALE: &str = "English";

/// Language codes discovery uses, as SAP names the languages (edX's `transform_language_code`).
const LANGUAGES: [(&str, &str); 16] = [
    ("en", "English"),
    ("en-us", "English"),
    ("en-gb", "English United Kingdom"),
    ("ar", "Arabic"),
    ("de", "German"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("hi", "Hindi"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("ko", "Korean"),
    ("nl", "Dutch"),
    ("pt", "Portuguese"),
    ("ru", "Russian"),
    ("tr", "Turkish"),
    ("zh", "Chinese"),
];

/// The OCN course of `metadata`; `active` is false for a delete (`status: INACTIVE`).
pub fn course(
    metadata: &Value,
    settings: &CourseSettings<'_>,
    active: bool,
    now: DateTime<Utc>,
) -> Value {
    let text = |field: &str| metadata[field].as_str().filter(|s| !s.is_empty());
    let is_run = metadata["content_type"] == "courserun";
    let key = content_id(metadata);
    let title = text("title").unwrap_or_default();
    let start = date(&metadata["start"]);
    let end = date(&metadata["end"]);
    let enrollable = enrollable(metadata, end, now);

    let mut shown_title = title.to_string();
    if let (true, Some(start)) = (is_run, start) {
        let month = start.format("%B %Y");
        if enrollable {
            shown_title.push_str(&format!(" (Starts: {month})"));
        } else {
            shown_title.push_str(&format!(" ({month} - Enrollment Closed)"));
        }
    }
    let mut description = String::new();
    match text("pacing_type") {
        Some("instructor_paced") => description.push_str("Pacing: Instructor-Paced. "),
        Some("self_paced") => description.push_str("Pacing: Self-Paced. "),
        _ => {}
    }
    if let (Some(start), Some(end)) = (start, end) {
        description.push_str(&format!(
            "Starts: {}, Ends: {}. ",
            start.format("%B %Y"),
            end.format("%B %Y")
        ));
    }
    if !enrollable {
        description.push_str("Enrollment is closed. ");
    }
    description.push_str(
        text("full_description")
            .or_else(|| text("short_description"))
            .unwrap_or(title),
    );

    let default_locale = if is_run {
        sap_language(text("language"))
    } else {
        DEFAULT_LOCALE
    };
    let locales = locales(default_locale, settings.additional_locales);
    let localized = |value: &str| -> Value {
        locales
            .iter()
            .map(|l| json!({"locale": l, "value": value}))
            .collect()
    };

    let schedule = match (is_run, start, end) {
        (true, start, end) => json!([{
            "active": enrollable,
            "endDate": end.map_or(UNIX_MAX_MS, |d| d.timestamp_millis()),
            "startDate": start.map_or(UNIX_MIN_MS, |d| d.timestamp_millis()),
        }]),
        (false, Some(start), Some(end)) => json!([{
            "active": enrollable,
            "duration": format!("{} days", (end - start).num_days()),
            "endDate": end.timestamp_millis(),
            "startDate": start.timestamp_millis(),
        }]),
        _ => json!([]),
    };
    let launch_url = text("enrollment_url");
    json!({
        "content": [{
            "contentID": key,
            "contentTitle": title,
            "launchType": 3,
            "launchURL": launch_url,
            "mobileEnabled": true,
            "mobileLaunchURL": launch_url,
            "providerID": settings.provider_id,
        }],
        "courseID": key,
        "description": localized(&description),
        // `show_course_price` is not a setting here: edX then sends 0.0.
        "price": [{"currency": "USD", "value": 0.0}],
        "providerID": settings.provider_id,
        "revisionNumber": 1,
        "schedule": schedule,
        "status": if active { "ACTIVE" } else { "INACTIVE" },
        "thumbnailURI": text("image_url").unwrap_or_default(),
        "title": localized(&shown_title),
    })
}

/// The OCN course id: a program's uuid, the key otherwise.
pub fn content_id(metadata: &Value) -> &str {
    let key = metadata["key"].as_str().unwrap_or_default();
    if metadata["content_type"] == "program" {
        return metadata["attributes"]["uuid"].as_str().unwrap_or(key);
    }
    key
}

/// The default locale, then the configuration's others, each once.
fn locales<'a>(default: &'a str, additional: &'a [String]) -> Vec<&'a str> {
    let mut locales = vec![default];
    for locale in additional
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
    {
        if !locales.contains(&locale) {
            locales.push(locale);
        }
    }
    locales
}

/// SAP's name of a discovery language (a code, or already a name); English when unknown.
fn sap_language(language: Option<&str>) -> &'static str {
    let Some(language) = language.map(|l| l.trim().to_ascii_lowercase()) else {
        return DEFAULT_LOCALE;
    };
    LANGUAGES
        .iter()
        .find(|(code, name)| *code == language || name.to_ascii_lowercase() == language)
        .map_or(DEFAULT_LOCALE, |(_, name)| name)
}

fn date(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Whether learners can still enroll: discovery did not say otherwise, the enrollment window
/// is open and the content has not ended.
fn enrollable(metadata: &Value, end: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let attributes = &metadata["attributes"];
    if attributes["is_enrollable"] == false {
        return false;
    }
    let closed = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at <= now);
    let opens = date(&attributes["enrollment_start"]);
    !closed(end) && !closed(date(&attributes["enrollment_end"])) && opens.is_none_or(|at| at <= now)
}

/// Epoch milliseconds of an RFC 3339 instant (completion timestamps).
pub fn epoch_millis(value: &Value) -> Option<i64> {
    date(value).map(|d| d.timestamp_millis())
}

/// An instant from epoch milliseconds (the fake's checks).
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Value {
        json!({
            "key": "course-v1:edX+DemoX+Demo_Course", "content_type": "courserun",
            "title": "Demo", "full_description": "Learn.", "pacing_type": "self_paced",
            "start": "2013-02-05T05:00:00Z", "end": "2013-12-31T00:00:00Z",
            "enrollment_url": "https://lms/enroll", "image_url": "https://lms/i.jpg",
            "language": "en-gb", "attributes": {},
        })
    }

    fn settings(locales: &[String]) -> CourseSettings<'_> {
        CourseSettings {
            provider_id: "EDX",
            additional_locales: locales,
        }
    }

    #[test]
    fn an_ended_run_says_enrollment_closed_in_its_title_and_description() {
        let now = DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let extra = vec!["French".to_string(), "English United Kingdom".to_string()];
        let item = course(&run(), &settings(&extra), true, now);
        assert_eq!(
            item["title"],
            json!([
                {"locale": "English United Kingdom", "value": "Demo (February 2013 - Enrollment Closed)"},
                {"locale": "French", "value": "Demo (February 2013 - Enrollment Closed)"},
            ])
        );
        assert_eq!(
            item["description"][0]["value"],
            "Pacing: Self-Paced. Starts: February 2013, Ends: December 2013. Enrollment is closed. Learn."
        );
        assert_eq!(
            item["schedule"],
            json!([{"active": false, "endDate": 1388448000000_i64, "startDate": 1360040400000_i64}])
        );
    }

    #[test]
    fn a_course_without_dates_has_an_empty_schedule_and_english_locale() {
        let mut course_doc = run();
        course_doc["content_type"] = json!("course");
        course_doc["key"] = json!("edX+DemoX");
        course_doc["start"] = Value::Null;
        let item = course(&course_doc, &settings(&[]), false, Utc::now());
        assert_eq!(item["schedule"], json!([]));
        assert_eq!(item["status"], "INACTIVE");
        assert_eq!(
            item["title"],
            json!([{"locale": "English", "value": "Demo"}])
        );
        assert_eq!(item["courseID"], "edX+DemoX");
    }
}
