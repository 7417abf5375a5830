//! Configuration and customer rules of the outbox: which configurations are live, and what
//! going live, changing catalogs, switching learner data off or deactivating does to the queue
//! (see the parent module's doc).

use super::{content, learners, ItemKind};
use crate::projection::ApplyError;
use chrono::{DateTime, Utc};
use domain::channel::ChannelEvent;
use domain::customer::CustomerEvent;
use sqlx::PgConnection;
use uuid::Uuid;

/// `newly_configured`: the event is the first configuration of its customer (see the module
/// doc of `content`).
pub(super) async fn apply_config(
    conn: &mut PgConnection,
    event: ChannelEvent,
    newly_configured: bool,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    match event {
        ChannelEvent::ChannelConfigurationCreated {
            config_id,
            customer_id,
            active,
            catalogs_to_transmit,
            disable_learner_data,
            settings,
            ..
        } => {
            let catalogs: Vec<Uuid> = catalogs_to_transmit.iter().map(|c| c.0).collect();
            sqlx::query(
                "INSERT INTO outbox_configs (config_id, customer_id, channel, active,
                        catalogs_to_transmit, disable_learner_data)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (config_id) DO UPDATE
                    SET customer_id = EXCLUDED.customer_id, channel = EXCLUDED.channel,
                        active = EXCLUDED.active,
                        catalogs_to_transmit = EXCLUDED.catalogs_to_transmit,
                        disable_learner_data = EXCLUDED.disable_learner_data",
            )
            .bind(config_id.0)
            .bind(customer_id.0)
            .bind(settings.channel().as_str())
            .bind(active)
            .bind(&catalogs)
            .bind(disable_learner_data)
            .execute(&mut *conn)
            .await?;
            if newly_configured {
                content::evaluate_customer_catalogs(conn, customer_id.0).await?;
            }
            if is_live(conn, config_id.0).await? {
                content::sweep_config(conn, config_id.0, true, at).await?;
            }
        }
        ChannelEvent::ChannelConfigurationUpdated {
            config_id,
            catalogs_to_transmit,
            disable_learner_data,
            ..
        } => {
            let catalogs: Option<Vec<Uuid>> =
                catalogs_to_transmit.map(|list| list.iter().map(|c| c.0).collect());
            sqlx::query(
                "UPDATE outbox_configs
                    SET catalogs_to_transmit = COALESCE($2, catalogs_to_transmit),
                        disable_learner_data = COALESCE($3, disable_learner_data)
                  WHERE config_id = $1",
            )
            .bind(config_id.0)
            .bind(&catalogs)
            .bind(disable_learner_data)
            .execute(&mut *conn)
            .await?;
            if disable_learner_data == Some(true) {
                cancel_config(
                    conn,
                    config_id.0,
                    Some(ItemKind::Learner),
                    "learner data disabled",
                    at,
                )
                .await?;
            }
            if catalogs.is_some() && is_live(conn, config_id.0).await? {
                content::sweep_config(conn, config_id.0, false, at).await?;
            }
        }
        ChannelEvent::ChannelConfigurationDeactivated { config_id, .. } => {
            set_config_active(conn, config_id.0, false).await?;
            cancel_config(conn, config_id.0, None, "configuration deactivated", at).await?;
        }
        ChannelEvent::ChannelConfigurationReactivated { config_id, .. } => {
            set_config_active(conn, config_id.0, true).await?;
            if is_live(conn, config_id.0).await? {
                content::sweep_config(conn, config_id.0, true, at).await?;
            }
        }
        ChannelEvent::ChannelSecretSet { .. } => {}
    }
    Ok(())
}

async fn set_config_active(
    conn: &mut PgConnection,
    config_id: Uuid,
    active: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox_configs SET active = $2 WHERE config_id = $1")
        .bind(config_id)
        .bind(active)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the configuration and its customer are both active.
async fn is_live(conn: &mut PgConnection, config_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM outbox_configs cfg
               JOIN outbox_customers cu ON cu.customer_id = cfg.customer_id AND cu.active
              WHERE cfg.config_id = $1 AND cfg.active)",
    )
    .bind(config_id)
    .fetch_one(conn)
    .await
}

pub(super) async fn apply_customer(
    conn: &mut PgConnection,
    event: CustomerEvent,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    match event {
        CustomerEvent::CustomerCreated {
            customer_id,
            consent,
            enable_audit_enrollment,
            enable_audit_data_reporting,
            ..
        } => {
            sqlx::query(
                "INSERT INTO outbox_customers (customer_id, active, requests_consent,
                        enable_audit_enrollment, enable_audit_data_reporting)
                 VALUES ($1, true, $2, $3, $4)
                 ON CONFLICT (customer_id) DO UPDATE
                    SET active = true, requests_consent = EXCLUDED.requests_consent,
                        enable_audit_enrollment = EXCLUDED.enable_audit_enrollment,
                        enable_audit_data_reporting = EXCLUDED.enable_audit_data_reporting",
            )
            .bind(customer_id.0)
            .bind(consent.requests_consent())
            .bind(enable_audit_enrollment)
            .bind(enable_audit_data_reporting)
            .execute(&mut *conn)
            .await?;
            // Configurations are created after their customer; should one precede it, it goes
            // live now.
            sweep_customer(conn, customer_id.0, at).await?;
        }
        CustomerEvent::CustomerUpdated {
            customer_id,
            consent,
            enable_audit_enrollment,
            enable_audit_data_reporting,
            ..
        } => {
            let requests = consent.map(|policy| policy.requests_consent());
            let changed: Option<bool> = sqlx::query_scalar(
                "WITH old AS (SELECT requests_consent FROM outbox_customers WHERE customer_id = $1)
                 UPDATE outbox_customers
                    SET requests_consent = COALESCE($2, requests_consent),
                        enable_audit_enrollment = COALESCE($3, enable_audit_enrollment),
                        enable_audit_data_reporting = COALESCE($4, enable_audit_data_reporting)
                  WHERE customer_id = $1
                 RETURNING requests_consent IS DISTINCT FROM (SELECT requests_consent FROM old)",
            )
            .bind(customer_id.0)
            .bind(requests)
            .bind(enable_audit_enrollment)
            .bind(enable_audit_data_reporting)
            .fetch_optional(&mut *conn)
            .await?;
            if changed == Some(true) {
                learners::regate_customer(conn, customer_id.0, at).await?;
            }
        }
        CustomerEvent::CustomerDeactivated { customer_id } => {
            set_customer_active(conn, customer_id.0, false).await?;
            let configs = configs_of_customer(conn, customer_id.0).await?;
            for config_id in configs {
                cancel_config(conn, config_id, None, "customer deactivated", at).await?;
            }
        }
        CustomerEvent::CustomerReactivated { customer_id } => {
            set_customer_active(conn, customer_id.0, true).await?;
            sweep_customer(conn, customer_id.0, at).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn set_customer_active(
    conn: &mut PgConnection,
    customer_id: Uuid,
    active: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox_customers SET active = $2 WHERE customer_id = $1")
        .bind(customer_id)
        .bind(active)
        .execute(conn)
        .await?;
    Ok(())
}

async fn configs_of_customer(
    conn: &mut PgConnection,
    customer_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT config_id FROM outbox_configs WHERE customer_id = $1 ORDER BY config_id",
    )
    .bind(customer_id)
    .fetch_all(conn)
    .await
}

/// Queues the scope of every active configuration of a customer that went live.
async fn sweep_customer(
    conn: &mut PgConnection,
    customer_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    for config_id in configs_of_customer(conn, customer_id).await? {
        if is_live(conn, config_id).await? {
            content::sweep_config(conn, config_id, true, at).await?;
        }
    }
    Ok(())
}

/// Cancels a configuration's pending and held rows (of one kind, or all).
async fn cancel_config(
    conn: &mut PgConnection,
    config_id: Uuid,
    kind: Option<ItemKind>,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox_items SET status = 'cancelled', cancel_reason = $3, updated_at = $4
          WHERE config_id = $1 AND ($2::text IS NULL OR kind = $2)
            AND status IN ('pending', 'held')",
    )
    .bind(config_id)
    .bind(kind.map(ItemKind::as_str))
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
