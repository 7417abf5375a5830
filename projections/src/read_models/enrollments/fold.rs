//! The rows a batch holds (the report's and the inputs') and the rules of the read model (see
//! the module doc of [`super`]) as a fold of [`Input`]s over them, in log order.

use super::input::{Enrolled, Input};
use crate::projection::in_key_order;
use chrono::{DateTime, Utc};
use domain::ids::course_key_of_run;
use rustc_hash::{FxHashMap, FxHashSet};
use std::hash::Hash;
use uuid::Uuid;

/// Customer x learner x course run: an enrollment's key, and a completion's.
pub(super) type RunKey = (Uuid, Uuid, String);
/// Customer x learner x course key: a consent's key.
pub(super) type ConsentKey = (Uuid, Uuid, String);

/// A row of `enrollments_report`, every column.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct StoredRow {
    pub(super) enrollment_id: Uuid,
    pub(super) customer_id: Uuid,
    pub(super) learner_id: Uuid,
    pub(super) course_run_id: String,
    pub(super) consent_key: String,
    pub(super) redemption_id: Option<Uuid>,
    pub(super) enrollment_source: String,
    pub(super) saved_for_later: bool,
    pub(super) is_consent_granted: bool,
    pub(super) user_current_enrollment_mode: String,
    pub(super) enrollment_date: DateTime<Utc>,
    pub(super) unenrollment_date: Option<DateTime<Utc>>,
    pub(super) offer_type: Option<String>,
    pub(super) coupon_code: Option<String>,
    pub(super) coupon_name: Option<String>,
    pub(super) course_key: Option<String>,
    pub(super) course_title: Option<String>,
    pub(super) course_pacing_type: Option<String>,
    pub(super) course_start_date: Option<DateTime<Utc>>,
    pub(super) course_end_date: Option<DateTime<Utc>>,
    pub(super) has_passed: bool,
    pub(super) progress_status: String,
    pub(super) passed_date: Option<DateTime<Utc>>,
    pub(super) current_grade: Option<f64>,
    pub(super) letter_grade: Option<String>,
    pub(super) enterprise_name: Option<String>,
    pub(super) created: DateTime<Utc>,
}

/// A row of `enrollments_course_runs`, without its key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Run {
    pub(super) course_key: Option<String>,
    pub(super) title: String,
    pub(super) pacing_type: Option<String>,
    pub(super) start_date: Option<DateTime<Utc>>,
    pub(super) end_date: Option<DateTime<Utc>>,
}

/// A row of `enrollments_completions`, without its key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Completion {
    pub(super) has_passed: bool,
    pub(super) progress_status: String,
    pub(super) passed_date: Option<DateTime<Utc>>,
    pub(super) current_grade: Option<f64>,
    pub(super) letter_grade: String,
}

/// A row of `enrollments_coupons`, without its key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Coupon {
    pub(super) name: String,
    pub(super) offer_type: String,
}

/// A row of `enrollments_redemptions`, without its key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Redemption {
    pub(super) coupon_id: Uuid,
    pub(super) code: String,
    pub(super) reversed: bool,
}

/// An input table as the batch sees it: the rows loaded, then those the fold wrote.
pub(super) struct Table<K, V> {
    rows: FxHashMap<K, V>,
    written: FxHashSet<K>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            rows: FxHashMap::default(),
            written: FxHashSet::default(),
        }
    }
}

impl<K: Eq + Hash + Clone, V> Table<K, V> {
    pub(super) fn loaded(rows: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            rows: rows.into_iter().collect(),
            written: FxHashSet::default(),
        }
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.rows.get(key)
    }

    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn set(&mut self, key: K, value: V) {
        self.written.insert(key.clone());
        self.rows.insert(key, value);
    }

    /// The rows the fold wrote, as they end, in key order ([`in_key_order`]).
    pub(super) fn into_written(mut self) -> Vec<(K, V)>
    where
        K: Ord,
    {
        in_key_order(self.written.into_iter().map(|key| {
            let value = self.rows.remove(&key).expect("a written row is held");
            (key, value)
        }))
    }
}

/// The report rows the batch holds, found by each key an input reaches them by.
#[derive(Default)]
pub(super) struct Report {
    rows: FxHashMap<Uuid, StoredRow>,
    /// The rows the fold created (none of them is in the table yet).
    created: FxHashSet<Uuid>,
    /// The rows loaded that the fold changed.
    changed: FxHashSet<Uuid>,
    by_key: FxHashMap<RunKey, Uuid>,
    by_consent: FxHashMap<ConsentKey, Vec<Uuid>>,
    by_redemption: FxHashMap<Uuid, Vec<Uuid>>,
    by_customer: FxHashMap<Uuid, Vec<Uuid>>,
    by_run: FxHashMap<String, Vec<Uuid>>,
}

impl Report {
    /// Holds a row loaded, or one the fold `created`.
    pub(super) fn insert(&mut self, row: StoredRow, created: bool) {
        let id = row.enrollment_id;
        if self.rows.contains_key(&id) {
            return;
        }
        let key = (row.customer_id, row.learner_id, row.course_run_id.clone());
        self.by_key.insert(key, id);
        let consent = (row.customer_id, row.learner_id, row.consent_key.clone());
        self.by_consent.entry(consent).or_default().push(id);
        if let Some(redemption) = row.redemption_id {
            self.by_redemption.entry(redemption).or_default().push(id);
        }
        self.by_customer
            .entry(row.customer_id)
            .or_default()
            .push(id);
        let run = row.course_run_id.clone();
        self.by_run.entry(run).or_default().push(id);
        self.rows.insert(id, row);
        if created {
            self.created.insert(id);
        }
    }

    /// The rows created, and the rows loaded then changed, as they end.
    pub(super) fn into_written(mut self) -> (Vec<StoredRow>, Vec<StoredRow>) {
        // In key order, as `Table::into_written` gives its rows.
        let mut take = |ids: FxHashSet<Uuid>| -> Vec<StoredRow> {
            let mut rows: Vec<StoredRow> = ids
                .into_iter()
                .filter_map(|id| self.rows.remove(&id))
                .collect();
            rows.sort_unstable_by_key(|row| row.enrollment_id);
            rows
        };
        let created = take(std::mem::take(&mut self.created));
        let changed = take(std::mem::take(&mut self.changed));
        (created, changed)
    }

    /// Whether a row has this enrollment id, or this customer x learner x run.
    pub(super) fn holds(&self, id: &Uuid, key: &RunKey) -> bool {
        self.rows.contains_key(id) || self.by_key.contains_key(key)
    }

    pub(super) fn update(&mut self, id: &Uuid, change: impl Fn(&mut StoredRow)) {
        if let Some(row) = self.rows.get_mut(id) {
            change(row);
            if !self.created.contains(id) {
                self.changed.insert(*id);
            }
        }
    }

    fn update_all(&mut self, ids: Option<Vec<Uuid>>, change: impl Fn(&mut StoredRow)) {
        for id in ids.unwrap_or_default() {
            self.update(&id, &change);
        }
    }

    pub(super) fn update_key(&mut self, key: &RunKey, change: impl Fn(&mut StoredRow)) {
        if let Some(id) = self.by_key.get(key).copied() {
            self.update(&id, change);
        }
    }

    pub(super) fn update_consent(&mut self, key: &ConsentKey, change: impl Fn(&mut StoredRow)) {
        self.update_all(self.by_consent.get(key).cloned(), change);
    }

    pub(super) fn update_redemption(&mut self, id: &Uuid, change: impl Fn(&mut StoredRow)) {
        self.update_all(self.by_redemption.get(id).cloned(), change);
    }

    pub(super) fn update_customer(&mut self, id: &Uuid, change: impl Fn(&mut StoredRow)) {
        self.update_all(self.by_customer.get(id).cloned(), change);
    }

    pub(super) fn update_run(&mut self, run: &str, change: impl Fn(&mut StoredRow)) {
        self.update_all(self.by_run.get(run).cloned(), change);
    }
}

/// Every table as the batch sees it. The default holds nothing: the batch of a rebuild from
/// empty tables, which reads nothing back (see [`super::FromZero`]).
#[derive(Default)]
pub(super) struct Batch {
    pub(super) report: Report,
    pub(super) customers: Table<Uuid, String>,
    pub(super) runs: Table<String, Run>,
    /// For each run the batch published: the last course key given, if any (the report rows
    /// not held here keep theirs otherwise).
    pub(super) run_keys: FxHashMap<String, Option<String>>,
    pub(super) consents: Table<ConsentKey, bool>,
    pub(super) coupons: Table<Uuid, Coupon>,
    pub(super) redemptions: Table<Uuid, Redemption>,
    pub(super) completions: Table<RunKey, Completion>,
}

impl Batch {
    /// The rows held, of every table.
    pub(super) fn held(&self) -> usize {
        self.report.rows.len()
            + self.customers.len()
            + self.runs.len()
            + self.consents.len()
            + self.coupons.len()
            + self.redemptions.len()
            + self.completions.len()
    }

    /// Folds one input over the batch's rows, by the rules of the module doc.
    pub(super) fn apply(&mut self, input: Input) {
        match input {
            Input::Enrolled(enrolled) => self.enroll(*enrolled),
            Input::ModeChanged { id, mode } => self.report.update(&id, |row| {
                row.user_current_enrollment_mode = mode.to_string();
            }),
            Input::Unenrolled { id, at } => self.report.update(&id, |row| {
                row.unenrollment_date = Some(at);
                row.saved_for_later = true;
            }),
            Input::Reenrolled { id } => self.report.update(&id, |row| {
                row.unenrollment_date = None;
                row.saved_for_later = false;
            }),
            Input::SavedForLater { id, saved } => {
                self.report.update(&id, |row| row.saved_for_later = saved);
            }
            Input::CustomerNamed { customer, name } => {
                self.report.update_customer(&customer, |row| {
                    row.enterprise_name = Some(name.clone());
                });
                self.customers.set(customer, name);
            }
            Input::RunPublished { run, metadata } => {
                self.report.update_run(&run, |row| {
                    if metadata.course_key.is_some() {
                        row.course_key.clone_from(&metadata.course_key);
                    }
                    row.course_title = Some(metadata.title.clone());
                    row.course_pacing_type.clone_from(&metadata.pacing_type);
                    row.course_start_date = metadata.start_date;
                    row.course_end_date = metadata.end_date;
                });
                // Rows not held here take the last course key given, and the latest metadata.
                let key = self.run_keys.entry(run.clone()).or_default();
                if metadata.course_key.is_some() {
                    key.clone_from(&metadata.course_key);
                }
                self.runs.set(run, metadata);
            }
            Input::Consent { key, granted } => {
                self.report
                    .update_consent(&key, |row| row.is_consent_granted = granted);
                self.consents.set(key, granted);
            }
            Input::CouponCreated { coupon, terms } => self.coupons.set(coupon, terms),
            Input::CodeRedeemed {
                redemption,
                coupon,
                code,
            } => {
                let terms = self.coupons.get(&coupon);
                self.report.update_redemption(&redemption, |row| {
                    row.coupon_code = Some(code.clone());
                    row.coupon_name = terms.map(|t| t.name.clone());
                    row.offer_type = terms.map(|t| t.offer_type.clone());
                });
                let redeemed = Redemption {
                    coupon_id: coupon,
                    code,
                    reversed: false,
                };
                self.redemptions.set(redemption, redeemed);
            }
            Input::RedemptionReversed { redemption } => {
                self.report.update_redemption(&redemption, |row| {
                    row.coupon_code = None;
                    row.coupon_name = None;
                    row.offer_type = None;
                });
                if let Some(known) = self.redemptions.get(&redemption) {
                    let reversed = Redemption {
                        reversed: true,
                        ..known.clone()
                    };
                    self.redemptions.set(redemption, reversed);
                }
            }
            Input::Completed { key, decision } => {
                self.report.update_key(&key, |row| {
                    row.has_passed = decision.has_passed;
                    row.progress_status.clone_from(&decision.progress_status);
                    row.passed_date = decision.passed_date;
                    row.current_grade = decision.current_grade;
                    row.letter_grade = Some(decision.letter_grade.clone());
                });
                self.completions.set(key, decision);
            }
        }
    }

    /// A new row filled from the inputs as they stand; nothing if the enrollment (by id or by
    /// customer x learner x run) already has one.
    fn enroll(&mut self, e: Enrolled) {
        if self.report.holds(&e.id, &e.key) {
            return;
        }
        let (customer, learner, run) = &e.key;
        let consent_key = (*customer, *learner, e.consent_key);
        let redemption = e
            .redemption_id
            .and_then(|id| self.redemptions.get(&id))
            .filter(|r| !r.reversed);
        let terms = redemption.and_then(|r| self.coupons.get(&r.coupon_id));
        let metadata = self.runs.get(run);
        let decision = self.completions.get(&e.key);
        let row = StoredRow {
            enrollment_id: e.id,
            customer_id: *customer,
            learner_id: *learner,
            course_run_id: run.clone(),
            redemption_id: e.redemption_id,
            enrollment_source: e.source.to_string(),
            saved_for_later: false,
            is_consent_granted: self.consents.get(&consent_key).copied().unwrap_or(false),
            user_current_enrollment_mode: e.mode.to_string(),
            enrollment_date: e.at,
            unenrollment_date: None,
            offer_type: terms.map(|t| t.offer_type.clone()),
            coupon_code: redemption.map(|r| r.code.clone()),
            coupon_name: terms.map(|t| t.name.clone()),
            course_key: metadata
                .and_then(|m| m.course_key.clone())
                .or_else(|| course_key_of_run(run).map(|k| k.0)),
            course_title: metadata.map(|m| m.title.clone()),
            course_pacing_type: metadata.and_then(|m| m.pacing_type.clone()),
            course_start_date: metadata.and_then(|m| m.start_date),
            course_end_date: metadata.and_then(|m| m.end_date),
            has_passed: decision.is_some_and(|d| d.has_passed),
            progress_status: decision
                .map_or("In Progress", |d| d.progress_status.as_str())
                .to_string(),
            passed_date: decision.and_then(|d| d.passed_date),
            current_grade: decision.and_then(|d| d.current_grade),
            letter_grade: decision.map(|d| d.letter_grade.clone()),
            enterprise_name: self.customers.get(customer).cloned(),
            created: e.recorded_at,
            consent_key: consent_key.2,
        };
        self.report.insert(row, true);
    }
}
