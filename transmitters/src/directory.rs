//! What the channels read besides the outbox row: the learners' directory entries (email,
//! username, the id at the configuration's identity provider) and the content metadata the
//! outbox keeps. Read in one query per chunk.

use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// A learner as the remote system knows them. Personal data: it goes into requests, never
/// into events or logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub username: Option<String>,
    pub email: Option<String>,
    /// The learner's id at the configuration's identity provider, if any.
    pub remote_id: Option<String>,
}

/// A learner id, username, email and remote id.
type PersonRow = (Uuid, Option<String>, Option<String>, Option<String>);

/// The directory entries of `learners`, with their ids at `idp` when given. Erased or unknown
/// learners are absent.
pub async fn people(
    pool: &PgPool,
    learners: &[Uuid],
    idp: Option<&str>,
) -> Result<HashMap<Uuid, Person>, sqlx::Error> {
    let rows: Vec<PersonRow> = sqlx::query_as(
        "SELECT l.learner_id, l.username, l.email,
                (SELECT s.remote_id FROM learner_sso_ids s
                  WHERE s.learner_id = l.learner_id AND s.identity_provider = $2)
           FROM learners l
          WHERE l.learner_id = ANY ($1) AND l.erased_at IS NULL",
    )
    .bind(learners)
    .bind(idp)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, username, email, remote_id)| {
            (
                id,
                Person {
                    username,
                    email,
                    remote_id,
                },
            )
        })
        .collect())
}

/// The metadata the outbox keeps for each `(content_type, key)` asked (types as discovery
/// spells them: `course`, `courserun`, `program`).
pub async fn content(
    pool: &PgPool,
    wanted: &[(String, String)],
) -> Result<HashMap<(String, String), Value>, sqlx::Error> {
    let (types, keys): (Vec<String>, Vec<String>) = wanted.iter().cloned().unzip();
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT c.content_type, c.content_key, c.metadata
           FROM outbox_content c
           JOIN UNNEST($1::text[], $2::text[]) AS w(t, k)
             ON c.content_type = w.t AND c.content_key = w.k",
    )
    .bind(&types)
    .bind(&keys)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(t, k, m)| ((t, k), m)).collect())
}
