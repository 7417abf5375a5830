//! Commands of a content item, and the metadata vocabulary they share with events: what one
//! course, course run or program looks like once read from course-discovery.

use crate::error::Invalid;
use crate::ids::course_key_of_run;
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// The kind of a content item, spelled as course-discovery spells its `content_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    Course,
    CourseRun,
    Program,
}

impl ContentType {
    /// The discovery spelling: `course`, `courserun`, `program`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Course => "course",
            Self::CourseRun => "courserun",
            Self::Program => "program",
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One purchasable (or free) seat of a course run: its mode, price and upgrade deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seat {
    /// The course mode as discovery names it (`audit`, `verified`, ...).
    pub mode: String,
    pub price: f64,
    pub currency: String,
    pub upgrade_deadline: Option<DateTime<Utc>>,
}

/// The metadata of one course, course run or program: what catalogs are matched against and
/// what channels transmit. No personal data: instructors and staff are never kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentMetadata {
    /// Course key, course-run key, or program uuid (as a string).
    pub key: String,
    pub content_type: ContentType,
    pub title: String,
    pub short_description: Option<String>,
    pub full_description: Option<String>,
    pub image_url: Option<String>,
    pub marketing_url: Option<String>,
    pub enrollment_url: Option<String>,
    /// `instructor_paced` or `self_paced` (course runs).
    pub pacing_type: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub language: Option<String>,
    pub first_enrollable_paid_seat_price: Option<f64>,
    pub estimated_hours: Option<f64>,
    pub subjects: Vec<String>,
    /// Keys of the organisations that own or author the content.
    pub partners: Vec<String>,
    pub seats: Vec<Seat>,
    /// A course run's course.
    pub course_key: Option<String>,
    /// A course's runs.
    pub course_run_keys: Vec<String>,
    /// A program's courses.
    pub program_course_keys: Vec<String>,
    /// A program's type (`Professional Certificate`, `MicroMasters`, ...).
    pub program_type: Option<String>,
    /// The discovery document's other top-level scalar (or list-of-scalar) fields, kept so that
    /// a catalog's content filter can use any discovery field.
    pub attributes: BTreeMap<String, Value>,
}

impl ContentMetadata {
    /// The course key a course run belongs to: the one discovery gave, else the one its key
    /// encodes. `None` for courses and programs.
    pub fn run_course_key(&self) -> Option<String> {
        if self.content_type != ContentType::CourseRun {
            return None;
        }
        self.course_key
            .clone()
            .or_else(|| course_key_of_run(&self.key).map(|k| k.0))
    }

    /// edX's `aggregation_key`: `course:<key>`, `courserun:<course key>`, `program:<uuid>`.
    pub fn aggregation_key(&self) -> String {
        let key = match self.content_type {
            ContentType::CourseRun => self.run_course_key().unwrap_or_else(|| self.key.clone()),
            ContentType::Course | ContentType::Program => self.key.clone(),
        };
        format!("{}:{key}", self.content_type)
    }

    /// The flat JSON object catalog content filters are matched against
    /// (see [`crate::catalog_filter`]). Every `attributes` entry is included; a typed field
    /// that has a value wins over an attribute of the same name, and typed fields without a
    /// value are left out (so a filter on them fails).
    pub fn filter_view(&self) -> Value {
        let mut view: Map<String, Value> = self
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let mut put = |name: &str, value: Value| {
            view.insert(name.to_string(), value);
        };
        put("key", Value::from(self.key.as_str()));
        put("content_type", Value::from(self.content_type.as_str()));
        put("title", Value::from(self.title.as_str()));
        put("aggregation_key", Value::from(self.aggregation_key()));
        put("partners", Value::from(self.partners.clone()));
        put("subjects", Value::from(self.subjects.clone()));
        let seat_types: Vec<&str> = self.seats.iter().map(|s| s.mode.as_str()).collect();
        put("seat_types", Value::from(seat_types));
        let optional = [
            ("language", self.language.clone().map(Value::from)),
            ("pacing_type", self.pacing_type.clone().map(Value::from)),
            (
                "first_enrollable_paid_seat_price",
                self.first_enrollable_paid_seat_price.map(Value::from),
            ),
            ("program_type", self.program_type.clone().map(Value::from)),
            ("course_key", self.run_course_key().map(Value::from)),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                put(name, value);
            }
        }
        Value::Object(view)
    }

    /// The rules every published item obeys.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        validate::content_key("key", &self.key)?;
        if self.content_type == ContentType::Program && Uuid::parse_str(&self.key).is_err() {
            return Err(Invalid::new("key", "a program's key must be its uuid"));
        }
        validate::text("title", &self.title, 255)?;
        let urls = [
            ("image_url", &self.image_url),
            ("marketing_url", &self.marketing_url),
            ("enrollment_url", &self.enrollment_url),
        ];
        for (field, url) in urls {
            if let Some(url) = url {
                validate::url(field, url)?;
            }
        }
        // A NaN would never equal itself (every republish would look like a change) and does
        // not survive JSON, so amounts must be finite and not negative.
        let amounts = [
            (
                "first_enrollable_paid_seat_price",
                self.first_enrollable_paid_seat_price,
            ),
            ("estimated_hours", self.estimated_hours),
        ];
        for (field, amount) in amounts {
            check_amount(field, amount)?;
        }
        for seat in &self.seats {
            check_amount("seats", Some(seat.price))?;
            if seat.mode.trim().is_empty() {
                return Err(Invalid::new("seats", "a seat's mode must not be blank"));
            }
        }
        Ok(())
    }
}

fn check_amount(field: &'static str, amount: Option<f64>) -> Result<(), Invalid> {
    match amount {
        Some(a) if !a.is_finite() || a < 0.0 => {
            Err(Invalid::new(field, "must be a finite number, not negative"))
        }
        _ => Ok(()),
    }
}

/// A command on one content item. Each names the item so the stream can be checked.
// Commands are built once and moved into the handler: boxing the metadata would only make
// every caller and pattern noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContentCommand {
    /// Record the item's current metadata (new, changed, or back after a retirement).
    PublishContent {
        metadata: ContentMetadata,
        /// When the metadata was read. Not part of the events: the log's `recorded_at` dates
        /// them, and equal metadata read later must stay a no-op.
        at: DateTime<Utc>,
    },
    /// The item left discovery (or is no longer offered): catalogs drop it.
    RetireContent {
        content_type: ContentType,
        key: String,
        /// When the retirement was observed (dated in the log like `PublishContent`'s).
        at: DateTime<Utc>,
    },
}
