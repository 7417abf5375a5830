//! Consent history, replayed from the log: every grant, decline and revocation of a learner, a
//! customer or a course, in log order, and the consent in force at any instant.
//!
//! The events are read straight from `events`, not from the consent read model, so the answer
//! holds even if a read model is wrong. A learner's events are found through the expression
//! index `events_consent_learner`; a customer's or a course's walk the consent events on the
//! primary key. Only events older than every transaction still in flight are read, as the log
//! reader does, so an answer never shows an event that a later answer could precede.

use crate::cli::ConsentHistoryArgs;
use crate::error::ToolError;
use crate::output::{self, Tabular};
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::consent::{ConsentEvent, ConsentSource, ConsentSubject};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::process::ExitCode;
use uuid::Uuid;

/// Which consent events to replay; every filter that is set must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub learner_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub subject: Option<ConsentSubject>,
}

/// One grant, decline or revocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    /// `granted`, `declined` or `revoked`.
    pub event: &'static str,
    pub customer_id: Uuid,
    pub learner_id: Uuid,
    /// `course:<course key>` or `program:<uuid>`.
    pub subject: String,
    pub source: String,
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub stream: String,
    pub sequence: i64,
}

impl Tabular for Entry {
    const HEADERS: &'static [&'static str] = &[
        "position",
        "recorded_at",
        "event",
        "customer_id",
        "learner_id",
        "subject",
        "source",
        "actor",
        "correlation_id",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.position.to_string(),
            instant(self.recorded_at),
            self.event.to_string(),
            self.customer_id.to_string(),
            self.learner_id.to_string(),
            self.subject.clone(),
            self.source.clone(),
            self.actor.clone().unwrap_or_default(),
            self.correlation_id.clone().unwrap_or_default(),
        ]
    }
}

/// The consent in force for one customer x learner x subject at an instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InForce {
    pub customer_id: Uuid,
    pub learner_id: Uuid,
    pub subject: String,
    /// `granted` or `not_granted`.
    pub state: &'static str,
    /// The event that decided it.
    pub event: &'static str,
    pub since: DateTime<Utc>,
    pub position: i64,
    pub source: String,
    pub actor: Option<String>,
}

impl Tabular for InForce {
    const HEADERS: &'static [&'static str] = &[
        "customer_id",
        "learner_id",
        "subject",
        "state",
        "event",
        "since",
        "position",
        "source",
        "actor",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.customer_id.to_string(),
            self.learner_id.to_string(),
            self.subject.clone(),
            self.state.to_string(),
            self.event.to_string(),
            instant(self.since),
            self.position.to_string(),
            self.source.clone(),
            self.actor.clone().unwrap_or_default(),
        ]
    }
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub async fn run(pool: &PgPool, args: &ConsentHistoryArgs) -> Result<ExitCode, ToolError> {
    // Check every input before reading anything.
    let as_of = args.as_of.as_deref().map(parse_instant).transpose()?;
    let subject = args.course.as_deref().map(parse_subject).transpose()?;
    let learner_id = resolve_learner(pool, args).await?;
    let filter = Filter {
        learner_id,
        customer_id: args.customer,
        subject,
    };
    let entries = history(pool, &filter).await?;
    if let (Some(learner), true) = (learner_id, entries.is_empty()) {
        if args.username.is_none()
            && args.email.is_none()
            && store::directory::find(pool, domain::ids::LearnerId(learner))
                .await?
                .is_none()
        {
            return Err(ToolError::bad_input(format!(
                "unknown learner: {learner} is neither in the learner directory nor in any \
                 consent event\n  check the id, or look the learner up by --username or --email"
            )));
        }
    }
    let mut out = std::io::stdout().lock();
    match as_of {
        Some(at) => output::write(&mut out, args.format, &in_force(&entries, at))?,
        None => output::write(&mut out, args.format, &entries)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses an instant: RFC 3339 with an offset, so that no one reads it in another time zone.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, ToolError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| {
            ToolError::bad_input(format!(
                "bad instant '{text}' for --as-of: {e}\n  give RFC 3339 with an offset, e.g. \
                 2026-03-01T12:00:00Z or 2026-03-01T13:00:00+01:00"
            ))
        })
}

/// A program UUID, or a course key or run id (a run resolves to its course key, as consent is
/// kept per course).
fn parse_subject(text: &str) -> Result<ConsentSubject, ToolError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ToolError::bad_input(
            "--course is empty: give a course key (edX+DemoX), a run id or a program UUID",
        ));
    }
    Ok(match Uuid::parse_str(text) {
        Ok(program) => ConsentSubject::Program(program),
        Err(_) => ConsentSubject::for_course_id(text),
    })
}

async fn resolve_learner(
    pool: &PgPool,
    args: &ConsentHistoryArgs,
) -> Result<Option<Uuid>, ToolError> {
    if let Some(username) = &args.username {
        let record = store::directory::find_by_username(pool, username).await?;
        return record.map(|r| Some(r.learner_id)).ok_or_else(|| {
            ToolError::bad_input(format!(
                "unknown learner: no learner has username '{username}'\n  an erased learner \
                 is found by --learner-id only"
            ))
        });
    }
    if let Some(email) = &args.email {
        let record = store::directory::find_by_email(pool, email).await?;
        return record.map(|r| Some(r.learner_id)).ok_or_else(|| {
            ToolError::bad_input(format!(
                "unknown learner: no learner has email '{email}'\n  an erased learner is \
                 found by --learner-id only"
            ))
        });
    }
    Ok(args.learner_id)
}

/// The consent events matching `filter`, in log order.
pub async fn history(pool: &PgPool, filter: &Filter) -> Result<Vec<Entry>, ToolError> {
    // Only the filters that are set go into the statement, so the planner sees plain
    // equalities (and the learner index) rather than `$1 IS NULL OR ...`.
    let mut sql = String::from(
        "SELECT e.global_position, e.recorded_at, e.aggregate_id, e.sequence, e.event_type,
                e.event_version, e.payload, e.metadata
           FROM events e
          WHERE e.aggregate_type = 'consent'
            AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
    );
    let mut binds: Vec<String> = Vec::new();
    if let Some(learner) = filter.learner_id {
        binds.push(learner.to_string());
        sql += &format!(
            " AND (e.payload -> e.event_type ->> 'learner_id') = ${}",
            binds.len()
        );
    }
    if let Some(customer) = filter.customer_id {
        binds.push(customer.to_string());
        sql += &format!(
            " AND (e.payload -> e.event_type ->> 'customer_id') = ${}",
            binds.len()
        );
    }
    if let Some(subject) = &filter.subject {
        let json = serde_json::to_string(subject).expect("a subject serializes");
        binds.push(json);
        sql += &format!(
            " AND (e.payload -> e.event_type -> 'subject') = ${}::jsonb",
            binds.len()
        );
    }
    sql += " ORDER BY e.transaction_id, e.global_position";
    let mut query = sqlx::query_as::<_, Row>(&sql);
    for bind in binds {
        query = query.bind(bind);
    }
    let rows = query.fetch_all(pool).await?;
    let upcasters = domain::upcast::upcasters();
    rows.into_iter().map(|row| entry(row, &upcasters)).collect()
}

type Row = (
    i64,
    DateTime<Utc>,
    String,
    i64,
    String,
    String,
    Value,
    Value,
);

fn entry(
    row: Row,
    upcasters: &[Box<dyn cqrs_es::persist::EventUpcaster>],
) -> Result<Entry, ToolError> {
    let (position, recorded_at, stream, sequence, event_type, event_version, payload, metadata) =
        row;
    let mut event = SerializedEvent::new(
        stream.clone(),
        sequence as usize,
        "consent".to_string(),
        event_type,
        event_version,
        payload,
        metadata,
    );
    for upcaster in upcasters {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    let decoded: ConsentEvent = serde_json::from_value(event.payload).map_err(|e| {
        ToolError::Failed(format!(
            "consent event {stream}#{sequence} at position {position} does not decode: {e}\n  \
             run `replay-tools verify` to list every such event"
        ))
    })?;
    let (name, customer_id, learner_id, subject, source) = match decoded {
        ConsentEvent::ConsentGranted {
            customer_id,
            learner_id,
            subject,
            source,
        } => ("granted", customer_id, learner_id, subject, source),
        ConsentEvent::ConsentDeclined {
            customer_id,
            learner_id,
            subject,
            source,
        } => ("declined", customer_id, learner_id, subject, source),
        ConsentEvent::ConsentRevoked {
            customer_id,
            learner_id,
            subject,
            source,
        } => ("revoked", customer_id, learner_id, subject, source),
    };
    let text = |key: &str| {
        event
            .metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(Entry {
        position,
        recorded_at,
        event: name,
        customer_id: customer_id.0,
        learner_id: learner_id.0,
        subject: subject_text(&subject),
        source: source_text(source),
        actor: text("actor"),
        correlation_id: text("correlation_id"),
        stream,
        sequence,
    })
}

fn subject_text(subject: &ConsentSubject) -> String {
    match subject {
        ConsentSubject::Course(key) => format!("course:{}", key.0),
        ConsentSubject::Program(uuid) => format!("program:{uuid}"),
    }
}

fn source_text(source: ConsentSource) -> String {
    match serde_json::to_value(source) {
        Ok(Value::String(text)) => text,
        _ => format!("{source:?}"),
    }
}

/// Per consent record (stream), the last event recorded at or before `at`. Within a stream the
/// log order is the sequence order, so the last such entry decides.
pub fn in_force(entries: &[Entry], at: DateTime<Utc>) -> Vec<InForce> {
    let mut last: BTreeMap<&str, &Entry> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.recorded_at <= at) {
        last.insert(entry.stream.as_str(), entry);
    }
    let mut records: Vec<InForce> = last
        .into_values()
        .map(|e| InForce {
            customer_id: e.customer_id,
            learner_id: e.learner_id,
            subject: e.subject.clone(),
            state: if e.event == "granted" {
                "granted"
            } else {
                "not_granted"
            },
            event: e.event,
            since: e.recorded_at,
            position: e.position,
            source: e.source.clone(),
            actor: e.actor.clone(),
        })
        .collect();
    records.sort_by(|a, b| {
        (a.customer_id, a.learner_id, &a.subject).cmp(&(b.customer_id, b.learner_id, &b.subject))
    });
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_need_an_offset() {
        assert!(parse_instant("2026-03-01T12:00:00Z").is_ok());
        assert_eq!(
            parse_instant("2026-03-01T13:00:00+01:00").unwrap(),
            parse_instant("2026-03-01T12:00:00Z").unwrap()
        );
        for bad in ["2026-03-01", "2026-03-01T12:00:00", "yesterday", ""] {
            assert!(
                matches!(parse_instant(bad), Err(ToolError::BadInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_run_id_names_its_course_and_a_uuid_a_program() {
        assert_eq!(
            parse_subject("course-v1:edX+DemoX+Demo_Course").unwrap(),
            ConsentSubject::Course(domain::ids::CourseKey("edX+DemoX".into()))
        );
        let program = Uuid::new_v4();
        assert_eq!(
            parse_subject(&program.to_string()).unwrap(),
            ConsentSubject::Program(program)
        );
    }
}
