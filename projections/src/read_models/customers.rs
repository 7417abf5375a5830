//! Customers: every enterprise customer as its own events fold it, for the API's customer,
//! branding and catalog routes.
//!
//! Table `customers` (migration `20261127000015_customers.sql`). The row keeps the customer
//! aggregate's state as JSON and folds each event with the aggregate's own `apply`, so the read
//! model can never disagree with the write model about what an event means. Name, slug and
//! `active` are copied into columns for filtering and sorting.

use crate::projection::{decode, ApplyError, Projection};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::{Customer, CustomerEvent};
use domain::ids::CustomerId;
use sqlx::{PgConnection, PgPool};
use store::log::LoggedEvent;
use uuid::Uuid;

/// The customers read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Customers;

#[async_trait]
impl Projection for Customers {
    fn name(&self) -> &'static str {
        "customers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["customers"]
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[<Customer as Aggregate>::TYPE])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        if event.aggregate_type != <Customer as Aggregate>::TYPE {
            return Ok(());
        }
        let customer_event: CustomerEvent = decode(event)?;
        let id = Uuid::parse_str(&event.aggregate_id)
            .map_err(|e| ApplyError::Malformed(format!("customer stream id: {e}")))?;
        let stored: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT state FROM customers WHERE customer_id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let mut customer: Customer = match stored {
            Some(state) => serde_json::from_value(state)
                .map_err(|e| ApplyError::Malformed(format!("stored customer state: {e}")))?,
            None => Customer::default(),
        };
        customer.apply(customer_event);
        let state = serde_json::to_value(&customer)
            .map_err(|e| ApplyError::Malformed(format!("customer state: {e}")))?;
        sqlx::query(
            "INSERT INTO customers (customer_id, name, slug, active, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (customer_id) DO UPDATE
                SET name = $2, slug = $3, active = $4, state = $5, updated_at = $6",
        )
        .bind(id)
        .bind(customer.name())
        .bind(customer.slug())
        .bind(customer.is_active())
        .bind(state)
        .bind(event.recorded_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// One customer as the read model holds it.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub customer: Customer,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

type Row = (serde_json::Value, DateTime<Utc>, DateTime<Utc>);

fn row((state, created_at, updated_at): Row) -> Result<CustomerRow, sqlx::Error> {
    let customer = serde_json::from_value(state)
        .map_err(|e| sqlx::Error::Decode(format!("stored customer state: {e}").into()))?;
    Ok(CustomerRow {
        customer,
        created_at,
        updated_at,
    })
}

/// One customer.
pub async fn customer(pool: &PgPool, id: CustomerId) -> Result<Option<CustomerRow>, sqlx::Error> {
    let found: Option<Row> = sqlx::query_as(
        "SELECT state, created_at, updated_at FROM customers WHERE customer_id = $1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?;
    found.map(row).transpose()
}

/// Which customers a list shows.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Only these customers (`None`: all of them).
    pub among: Option<Vec<Uuid>>,
    pub slug: Option<String>,
    pub name: Option<String>,
    pub active: Option<bool>,
}

/// A page of customers by name, and how many match in all.
pub async fn customers(
    pool: &PgPool,
    filter: &CustomerFilter,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<CustomerRow>), sqlx::Error> {
    const WHERE: &str = "($1::uuid[] IS NULL OR customer_id = ANY($1))
                     AND ($2::text IS NULL OR slug = $2)
                     AND ($3::text IS NULL OR name = $3)
                     AND ($4::bool IS NULL OR active = $4)";
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM customers WHERE {WHERE}"))
        .bind(&filter.among)
        .bind(&filter.slug)
        .bind(&filter.name)
        .bind(filter.active)
        .fetch_one(pool)
        .await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT state, created_at, updated_at FROM customers WHERE {WHERE}
          ORDER BY name, customer_id LIMIT $5 OFFSET $6"
    ))
    .bind(&filter.among)
    .bind(&filter.slug)
    .bind(&filter.name)
    .bind(filter.active)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let rows = rows.into_iter().map(row).collect::<Result<_, _>>()?;
    Ok((count, rows))
}
