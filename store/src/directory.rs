//! The learner directory: LMS user id, username, email and SSO ids of each pseudonymous
//! `LearnerId`. Events never hold these; erasing a learner blanks the row, and the log, which
//! names only the learner id, replays unchanged and pseudonymous.

use crate::error::Failure;
use domain::error::Invalid;
use domain::ids::LearnerId;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// What the directory holds of one learner.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LearnerRecord {
    pub learner_id: Uuid,
    pub lms_user_id: Option<i64>,
    pub username: Option<String>,
    pub email: Option<String>,
}

impl LearnerRecord {
    pub fn id(&self) -> LearnerId {
        LearnerId(self.learner_id)
    }

    /// Known to the LMS (registered), not only invited by email.
    pub fn is_registered(&self) -> bool {
        self.lms_user_id.is_some()
    }
}

/// A learner as the LMS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmsUser {
    pub lms_user_id: i64,
    pub username: String,
    pub email: String,
    /// (identity provider slug, the learner's id there).
    pub sso_ids: Vec<(String, String)>,
}

/// The outcome of [`register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub learner_id: LearnerId,
    /// The learner had been invited by email before registering: the invitation's learner id
    /// is now theirs, and pending memberships can be completed.
    pub claimed_invitation: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("username '{0}' belongs to another learner")]
    UsernameTaken(String),
    #[error("email belongs to another registered learner")]
    EmailTaken,
    #[error("SSO id for provider '{0}' belongs to another learner")]
    SsoIdTaken(String),
    #[error("another request registered the same LMS user at the same moment")]
    ConcurrentRegistration,
    #[error(transparent)]
    Store(#[from] Failure),
}

impl DirectoryError {
    pub fn kind(&self) -> crate::error::FailureKind {
        use crate::error::FailureKind;
        match self {
            Self::Invalid(_) => FailureKind::Validation,
            Self::UsernameTaken(_)
            | Self::EmailTaken
            | Self::SsoIdTaken(_)
            | Self::ConcurrentRegistration => FailureKind::Conflict,
            Self::Store(f) => f.kind(),
        }
    }
}

impl From<sqlx::Error> for DirectoryError {
    fn from(err: sqlx::Error) -> Self {
        if let Some(db) = err.as_database_error() {
            match db.constraint() {
                Some("learners_username_key") => return Self::UsernameTaken(String::new()),
                Some("learners_email_key") => return Self::EmailTaken,
                Some("learner_sso_ids_remote_id_key") => return Self::SsoIdTaken(String::new()),
                Some("learners_lms_user_id_key") => return Self::ConcurrentRegistration,
                _ => {}
            }
        }
        Self::Store(Failure::from_sqlx(err))
    }
}

/// Whether `email` can be an address: a local part and a dotted domain, no spaces.
pub fn check_email(email: &str) -> Result<(), Invalid> {
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(())
    } else {
        Err(Invalid::new("email", "must be an email address"))
    }
}

/// The domain part of an email, lower-cased (for coupons restricted to email domains).
pub fn email_domain(email: &str) -> Option<String> {
    email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

/// Records a learner the LMS reports (created or changed), keyed by LMS user id. A learner
/// invited earlier by the same email keeps the learner id the invitation allocated. The LMS
/// reports on registration and on login, so two reports of one new user can race: the loser
/// finds the winner's row and updates it.
pub async fn register(pool: &PgPool, user: &LmsUser) -> Result<Registered, DirectoryError> {
    match register_once(pool, user).await {
        Err(DirectoryError::ConcurrentRegistration) => register_once(pool, user).await,
        outcome => outcome,
    }
}

async fn register_once(pool: &PgPool, user: &LmsUser) -> Result<Registered, DirectoryError> {
    check_email(&user.email)?;
    domain::validate::text("username", &user.username, 150)?;
    let mut tx = pool.begin().await.map_err(Failure::from_sqlx)?;
    let known: Option<Uuid> =
        sqlx::query_scalar("SELECT learner_id FROM learners WHERE lms_user_id = $1 FOR UPDATE")
            .bind(user.lms_user_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (learner_id, claimed_invitation) = match known {
        Some(id) => {
            sqlx::query(
                "UPDATE learners SET username = $2, email = $3, updated_at = now()
                  WHERE learner_id = $1",
            )
            .bind(id)
            .bind(&user.username)
            .bind(&user.email)
            .execute(&mut *tx)
            .await
            .map_err(|e| named(e, &user.username))?;
            (id, false)
        }
        None => {
            let invited: Option<Uuid> = sqlx::query_scalar(
                "UPDATE learners SET lms_user_id = $1, username = $2, email = $3, updated_at = now()
                  WHERE lower(email) = lower($3) AND lms_user_id IS NULL
              RETURNING learner_id",
            )
            .bind(user.lms_user_id)
            .bind(&user.username)
            .bind(&user.email)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| named(e, &user.username))?;
            match invited {
                Some(id) => (id, true),
                None => {
                    let id = Uuid::new_v4();
                    sqlx::query(
                        "INSERT INTO learners (learner_id, lms_user_id, username, email)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(user.lms_user_id)
                    .bind(&user.username)
                    .bind(&user.email)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| named(e, &user.username))?;
                    (id, false)
                }
            }
        }
    };
    replace_sso_ids(&mut tx, learner_id, &user.sso_ids).await?;
    tx.commit().await.map_err(Failure::from_sqlx)?;
    Ok(Registered {
        learner_id: LearnerId(learner_id),
        claimed_invitation,
    })
}

fn named(err: sqlx::Error, username: &str) -> DirectoryError {
    match DirectoryError::from(err) {
        DirectoryError::UsernameTaken(_) => DirectoryError::UsernameTaken(username.to_string()),
        other => other,
    }
}

async fn replace_sso_ids(
    tx: &mut Transaction<'_, Postgres>,
    learner_id: Uuid,
    sso_ids: &[(String, String)],
) -> Result<(), DirectoryError> {
    sqlx::query("DELETE FROM learner_sso_ids WHERE learner_id = $1")
        .bind(learner_id)
        .execute(&mut **tx)
        .await?;
    for (provider, remote_id) in sso_ids {
        domain::validate::slug("sso_ids.identity_provider", provider, 50)?;
        domain::validate::text("sso_ids.remote_id", remote_id, 255)?;
        sqlx::query(
            "INSERT INTO learner_sso_ids (learner_id, identity_provider, remote_id)
             VALUES ($1, $2, $3)",
        )
        .bind(learner_id)
        .bind(provider)
        .bind(remote_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| match DirectoryError::from(e) {
            DirectoryError::SsoIdTaken(_) => DirectoryError::SsoIdTaken(provider.clone()),
            other => other,
        })?;
    }
    Ok(())
}

/// The learner with this email, registered or only invited; an unknown email gets a new,
/// unregistered learner id (for an invitation or a code assignment to that email).
pub async fn learner_for_email(
    pool: &PgPool,
    email: &str,
) -> Result<LearnerRecord, DirectoryError> {
    check_email(email)?;
    sqlx::query(
        "INSERT INTO learners (learner_id, email) VALUES ($1, $2)
         ON CONFLICT ((lower(email))) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(email)
    .execute(pool)
    .await?;
    let record = find_by_email(pool, email).await?;
    record.ok_or_else(|| {
        DirectoryError::Store(Failure::Unexpected(
            "learner row vanished right after it was written".into(),
        ))
    })
}

const COLUMNS: &str = "learner_id, lms_user_id, username, email";

pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<LearnerRecord>, Failure> {
    let sql = format!("SELECT {COLUMNS} FROM learners WHERE lower(email) = lower($1)");
    Ok(sqlx::query_as(&sql)
        .bind(email)
        .fetch_optional(pool)
        .await?)
}

pub async fn find_by_username(
    pool: &PgPool,
    username: &str,
) -> Result<Option<LearnerRecord>, Failure> {
    let sql = format!("SELECT {COLUMNS} FROM learners WHERE username = $1");
    Ok(sqlx::query_as(&sql)
        .bind(username)
        .fetch_optional(pool)
        .await?)
}

pub async fn find_by_lms_user_id(
    pool: &PgPool,
    lms_user_id: i64,
) -> Result<Option<LearnerRecord>, Failure> {
    let sql = format!("SELECT {COLUMNS} FROM learners WHERE lms_user_id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(lms_user_id)
        .fetch_optional(pool)
        .await?)
}

pub async fn find(pool: &PgPool, learner: LearnerId) -> Result<Option<LearnerRecord>, Failure> {
    let sql = format!("SELECT {COLUMNS} FROM learners WHERE learner_id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(learner.0)
        .fetch_optional(pool)
        .await?)
}

/// The learner's id at an identity provider (SAP and Degreed identify learners by it).
pub async fn sso_id(
    pool: &PgPool,
    learner: LearnerId,
    identity_provider: &str,
) -> Result<Option<String>, Failure> {
    Ok(sqlx::query_scalar(
        "SELECT remote_id FROM learner_sso_ids WHERE learner_id = $1 AND identity_provider = $2",
    )
    .bind(learner.0)
    .bind(identity_provider)
    .fetch_optional(pool)
    .await?)
}

/// Erases a learner's personal data (retirement): LMS user id, username, email, SSO ids and
/// Cornerstone launches. The learner id stays, so the log still replays; it no longer leads to
/// a person. Returns false for an unknown learner.
pub async fn erase(pool: &PgPool, learner: LearnerId) -> Result<bool, Failure> {
    let mut tx = pool.begin().await?;
    for table in ["learner_sso_ids", "cornerstone_launches"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE learner_id = $1"))
            .bind(learner.0)
            .execute(&mut *tx)
            .await?;
    }
    let erased = sqlx::query(
        "UPDATE learners
            SET lms_user_id = NULL, username = NULL, email = NULL, erased_at = now(), updated_at = now()
          WHERE learner_id = $1",
    )
    .bind(learner.0)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(erased == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(check_email("ada@example.com").is_ok());
        for bad in [
            "ada",
            "@example.com",
            "ada@example",
            "ada@.com",
            "a da@example.com",
        ] {
            assert_eq!(check_email(bad).unwrap_err().field, "email", "{bad}");
        }
    }

    #[test]
    fn the_email_domain_is_lower_cased() {
        assert_eq!(
            email_domain("Ada@Example.COM").as_deref(),
            Some("example.com")
        );
        assert_eq!(email_domain("nodomain"), None);
    }
}
