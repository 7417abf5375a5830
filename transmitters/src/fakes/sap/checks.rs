//! The fake SAP's checks of request bodies: OCN courses and learning events, field by field
//! with their types, nothing unknown allowed (see the parent module's doc).

use serde_json::{Map, Value};

/// Whether `value` is an object with exactly the `required` keys, plus some of `optional`.
fn keys(value: &Value, required: &[&str], optional: &[&str]) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err("expected an object".into());
    };
    if let Some(missing) = required.iter().find(|k| !object.contains_key(**k)) {
        return Err(format!("{missing} is required"));
    }
    if let Some(extra) = object
        .keys()
        .find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        return Err(format!("{extra} is not a known field"));
    }
    Ok(())
}

fn string(object: &Map<String, Value>, field: &str) -> Result<(), String> {
    match object.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        _ => Err(format!("{field} must be a non-empty string")),
    }
}

fn list<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a Vec<Value>, String> {
    object
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{field} must be an array"))
}

/// The OCN course rules of the module doc.
pub(super) fn check_course(course: &Value, provider: &str) -> Result<(), String> {
    const FIELDS: [&str; 10] = [
        "content",
        "courseID",
        "description",
        "price",
        "providerID",
        "revisionNumber",
        "schedule",
        "status",
        "thumbnailURI",
        "title",
    ];
    keys(course, &FIELDS, &[])?;
    let c = course.as_object().ok_or("expected an object")?;
    string(c, "courseID")?;
    if c["providerID"] != provider {
        return Err(format!("providerID must be {provider}"));
    }
    if !["ACTIVE", "INACTIVE", "DELETED"].contains(&c["status"].as_str().unwrap_or_default()) {
        return Err("status must be ACTIVE, INACTIVE or DELETED".into());
    }
    for field in ["title", "description"] {
        let locales = list(c, field)?;
        if locales.is_empty() {
            return Err(format!("{field} needs a locale"));
        }
        for locale in locales {
            keys(locale, &["locale", "value"], &[]).map_err(|e| format!("{field}: {e}"))?;
            string(locale.as_object().ok_or("")?, "locale").map_err(|e| format!("{field}: {e}"))?;
            if !locale["value"].is_string() {
                return Err(format!("{field}: value must be a string"));
            }
        }
    }
    if !c["thumbnailURI"].is_string() {
        return Err("thumbnailURI must be a string".into());
    }
    if !c["revisionNumber"].is_i64() {
        return Err("revisionNumber must be an integer".into());
    }
    let content = list(c, "content")?;
    if content.is_empty() {
        return Err("content needs a launch point".into());
    }
    for point in content {
        keys(
            point,
            &[
                "contentID",
                "contentTitle",
                "launchType",
                "launchURL",
                "mobileEnabled",
                "providerID",
            ],
            &["mobileLaunchURL"],
        )
        .map_err(|e| format!("content: {e}"))?;
        let p = point.as_object().ok_or("")?;
        for field in ["contentID", "contentTitle", "launchURL", "providerID"] {
            string(p, field).map_err(|e| format!("content: {e}"))?;
        }
        if !p["launchType"].is_i64() || !p["mobileEnabled"].is_boolean() {
            return Err("content: launchType must be an integer, mobileEnabled a boolean".into());
        }
        if p.get("mobileLaunchURL").is_some_and(|u| !u.is_string()) {
            return Err("content: mobileLaunchURL must be a string".into());
        }
    }
    for slot in list(c, "schedule")? {
        keys(slot, &["active", "endDate", "startDate"], &["duration"])
            .map_err(|e| format!("schedule: {e}"))?;
        if !slot["startDate"].is_i64() || !slot["endDate"].is_i64() || !slot["active"].is_boolean()
        {
            return Err(
                "schedule: startDate and endDate must be integers (ms), active a boolean".into(),
            );
        }
        if slot.get("duration").is_some_and(|d| !d.is_string()) {
            return Err("schedule: duration must be a string".into());
        }
    }
    for price in list(c, "price")? {
        keys(price, &["currency", "value"], &[]).map_err(|e| format!("price: {e}"))?;
        if !price["currency"].is_string() || !price["value"].is_number() {
            return Err("price: currency must be a string, value a number".into());
        }
    }
    Ok(())
}

/// The learning event rules of the module doc; `completed_as_bool` on the admin path.
pub(super) fn check_event(
    event: &Value,
    provider: &str,
    completed_as_bool: bool,
) -> Result<(), String> {
    const FIELDS: [&str; 8] = [
        "completedTimestamp",
        "courseCompleted",
        "courseID",
        "creditHours",
        "grade",
        "providerID",
        "totalHours",
        "userID",
    ];
    keys(event, &FIELDS, &[])?;
    let e = event.as_object().ok_or("expected an object")?;
    for field in ["userID", "courseID", "grade"] {
        string(e, field)?;
    }
    if e["providerID"] != provider {
        return Err(format!("providerID must be {provider}"));
    }
    let completed = &e["courseCompleted"];
    if completed_as_bool && !completed.is_boolean() {
        return Err("courseCompleted must be a boolean".into());
    }
    let is_text = completed == "true" || completed == "false";
    if !completed_as_bool && !is_text {
        return Err("courseCompleted must be the string \"true\" or \"false\"".into());
    }
    if !e["totalHours"].is_number() || !e["creditHours"].is_number() {
        return Err("totalHours and creditHours must be numbers".into());
    }
    let Some(at) = e["completedTimestamp"].as_i64() else {
        return Err("completedTimestamp must be an integer (epoch milliseconds)".into());
    };
    // A little slack for clocks; SAP refuses completion dates in the future.
    let now = chrono::Utc::now().timestamp_millis();
    if at > now + 60_000 {
        return Err("completedTimestamp is in the future".into());
    }
    Ok(())
}
