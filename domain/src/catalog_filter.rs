//! The content-filter language of catalogs: edX's `content_filter`, the course-discovery
//! `search/all` query parameters that define which content a catalog holds. A filter is
//! matched against a content item's flat filter view
//! ([`ContentMetadata::filter_view`](crate::content::ContentMetadata::filter_view)).
//!
//! A filter is a JSON object; `{}` matches every item. Each entry constrains one field of the
//! view, and an item matches when every entry holds (AND):
//!
//! - `"field": value` (a string, number or boolean): equality, the view's field equals `value`.
//! - `"field": [v1, v2, ...]` (strings, numbers or booleans): any-of, the view's field equals
//!   one of the values. An empty list matches nothing.
//! - `"field__gte"`, `"field__gt"`, `"field__lte"`, `"field__lt"`: comparison, the view's field
//!   taken as a number is `>=`, `>`, `<=`, `<` the value, which is a JSON number or a numeric
//!   string (edX stores `"first_enrollable_paid_seat_price__lte": "100"`).
//! - `"key": ["k1", ...]`: must be a list of strings (as edX's validator requires). It holds
//!   when the item's `key` is listed or, for a course run, its `course_key` is listed: a course
//!   key admits every run of that course.
//!
//! Equality is case-sensitive for strings and numeric for numbers (`149` equals `149.0`). A
//! number and a string are equal when the string parses as that number, and a boolean equals
//! the string `"true"` or `"false"`, because query parameters arrive as strings. When the view's
//! field is a list, the entry holds if any element satisfies it. A field missing from the view,
//! or null there, fails the entry; a comparison also fails on a value that is neither a number
//! nor a numeric string (a string that parses as a finite number: `"100"`, `"99.5"`, `"1e3"`).
//!
//! A filter that is not a JSON object is refused as `Invalid` on the field `content_filter`.
//! So is a filter with an entry that has an empty field name, an operator suffix other than
//! `__lte`, `__gte`, `__lt`, `__gt`, a `key` that is not a list of strings, a comparison value
//! that is not a number or numeric string, or a value that is null, an object, or a list
//! holding anything but strings, numbers and booleans; the reason then names the entry.

use crate::error::Invalid;
use serde_json::Value;

const FIELD: &str = "content_filter";

/// A parsed, validated catalog content filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentFilter {
    source: Value,
    entries: Vec<Entry>,
}

/// One constraint of a filter.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// Equality (one value) or any-of (several) on a field.
    AnyOf { field: String, values: Vec<Value> },
    /// The `key` list: the item's key, or a run's course key.
    Keys(Vec<String>),
    /// A numeric comparison of a field with a bound.
    Compare { field: String, op: Op, bound: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lte,
    Gte,
    Lt,
    Gt,
}

impl Op {
    fn from_suffix(suffix: &str) -> Option<Self> {
        match suffix {
            "lte" => Some(Self::Lte),
            "gte" => Some(Self::Gte),
            "lt" => Some(Self::Lt),
            "gt" => Some(Self::Gt),
            _ => None,
        }
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Self::Lte => value <= bound,
            Self::Gte => value >= bound,
            Self::Lt => value < bound,
            Self::Gt => value > bound,
        }
    }
}

/// Parses and validates a catalog's `content_filter` (see the module doc for the language).
pub fn parse(value: &Value) -> Result<ContentFilter, Invalid> {
    let object = value
        .as_object()
        .ok_or_else(|| Invalid::new(FIELD, "must be a JSON object"))?;
    let entries = object
        .iter()
        .map(|(name, value)| parse_entry(name, value))
        .collect::<Result<_, _>>()?;
    Ok(ContentFilter {
        source: value.clone(),
        entries,
    })
}

fn parse_entry(name: &str, value: &Value) -> Result<Entry, Invalid> {
    let refuse = |reason: &str| Invalid::new(FIELD, format!("`{name}`: {reason}"));
    let (field, op) = match name.rsplit_once("__") {
        Some((field, suffix)) => {
            let op = Op::from_suffix(suffix).ok_or_else(|| {
                refuse(&format!(
                    "unsupported operator `__{suffix}` (use __lte, __gte, __lt or __gt)"
                ))
            })?;
            (field, Some(op))
        }
        None => (name, None),
    };
    if field.is_empty() {
        return Err(refuse("the field name is empty"));
    }
    if let Some(op) = op {
        let bound = numeric(value).ok_or_else(|| refuse("must be a number or numeric string"))?;
        return Ok(Entry::Compare {
            field: field.to_string(),
            op,
            bound,
        });
    }
    if field == "key" {
        let keys = value
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|k| k.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| refuse("must be a list of strings"))?;
        return Ok(Entry::Keys(keys));
    }
    let values = match value {
        Value::Array(items) => items.clone(),
        scalar => vec![scalar.clone()],
    };
    if !values.iter().all(is_scalar) {
        return Err(refuse(
            "must be a string, number or boolean, or a list of them",
        ));
    }
    Ok(Entry::AnyOf {
        field: field.to_string(),
        values,
    })
}

impl ContentFilter {
    /// Whether a content item, given as its filter view, is in the catalog.
    pub fn matches(&self, view: &Value) -> bool {
        self.entries.iter().all(|entry| entry.holds(view))
    }

    /// The empty filter `{}`: the catalog holds everything.
    pub fn matches_everything(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fields of the filter view that [`matches`](Self::matches) reads: a view cut down to
    /// them gets the same answer, so a large view need not be read whole.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields = Vec::new();
        for entry in &self.entries {
            match entry {
                Entry::AnyOf { field, .. } | Entry::Compare { field, .. } => {
                    fields.push(field.as_str())
                }
                Entry::Keys(_) => fields.extend(["key", "course_key", "content_type"]),
            }
        }
        fields.sort_unstable();
        fields.dedup();
        fields
    }

    /// The filter as it was given, for storing it back unchanged.
    pub fn as_json(&self) -> &Value {
        &self.source
    }
}

impl Entry {
    fn holds(&self, view: &Value) -> bool {
        match self {
            Self::AnyOf { field, values } => any_element(view.get(field), |v| {
                values.iter().any(|wanted| equal(wanted, v))
            }),
            Self::Keys(keys) => {
                let listed = |field: &str| {
                    any_element(view.get(field), |v| {
                        v.as_str().is_some_and(|v| keys.iter().any(|k| k == v))
                    })
                };
                let is_run = view.get("content_type").and_then(Value::as_str) == Some("courserun");
                listed("key") || (is_run && listed("course_key"))
            }
            Self::Compare { field, op, bound } => any_element(view.get(field), |v| {
                numeric(v).is_some_and(|n| op.holds(n, *bound))
            }),
        }
    }
}

/// Applies `test` to a view value, or to each element when it is a list; a missing or null
/// field fails.
fn any_element(value: Option<&Value>, test: impl Fn(&Value) -> bool) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => items.iter().any(test),
        Some(value) => test(value),
    }
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A JSON number, or a string that parses as a finite decimal number.
fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// Equality of a filter value and a view value (see the module doc).
fn equal(wanted: &Value, found: &Value) -> bool {
    match (wanted, found) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
            s == if *b { "true" } else { "false" }
        }
        (Value::Number(_), Value::Number(_) | Value::String(_))
        | (Value::String(_), Value::Number(_)) => {
            matches!((numeric(wanted), numeric(found)), (Some(a), Some(b)) if a == b)
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "catalog_filter_tests.rs"]
mod tests;
