//! Coupon: seats bought in bulk by one customer for one of its catalogs, as a batch of
//! unguessable codes (Open edX ecommerce's enterprise coupons and their vouchers).
//!
//! Rules:
//! - The codes come from the [`CodeGenerator`] service (a CSPRNG in production): the aggregate
//!   stays pure and only checks that it got the count asked for, all distinct and typeable.
//! - A code may be assigned (reserved) to one learner; then only that learner may redeem it.
//! - A redemption must fall in `[valid_from, valid_until)`, come from an allowed email domain,
//!   and respect the coupon's [`CouponUsage`]. Redeeming again the same code for the same run by
//!   the same learner is a no-op, so a retried request does not spend a second use.
//! - A redemption whose enrollment then fails is reversed: its use is given back (and a
//!   multi-use-per-customer code with no live redemption left is free to bind again).
//!
//! Concurrency: every code of a coupon lives in the coupon's one stream, and each command is
//! decided on the stream as loaded at a known sequence and appended at the next one. Two learners
//! racing for the last use of a code both load the same state and both try to append at the same
//! sequence; the store accepts one and refuses the other with an optimistic-concurrency
//! conflict, and the loser's retry reloads the state and sees the code used up. So no usage limit
//! can be exceeded, whatever the concurrency. (Codes of different coupons are told apart by
//! their randomness alone: 80-bit codes make a collision negligible, and nothing else enforces
//! it.)

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::{CouponBenefit, CouponCommand, CouponUsage, MAX_CODES, MAX_USES};
pub use error::CouponError;
pub use event::CouponEvent;

use crate::ids::{CatalogId, CouponId, CourseRunId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The stream of one coupon: its uuid, since the coupon id is already unique.
pub fn coupon_stream_id(id: CouponId) -> String {
    id.to_string()
}

/// Draws fresh, unguessable codes. The service layer implements it with a CSPRNG; tests use a
/// deterministic one. Kept behind a trait so the domain stays free of randomness.
pub trait CodeGenerator: Send + Sync {
    fn generate(&self, count: usize) -> Vec<String>;
}

/// What the coupon aggregate needs from the outside world.
pub struct CouponServices {
    pub codes: Box<dyn CodeGenerator>,
}

/// The terms fixed at creation that later commands are checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Terms {
    coupon_id: CouponId,
    customer_id: CustomerId,
    catalog_id: CatalogId,
    usage: CouponUsage,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    email_domains: Vec<String>,
}

/// One code: who it is reserved for, and its live (not reversed) redemptions, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct CodeState {
    assigned_to: Option<LearnerId>,
    live: Vec<Uuid>,
}

/// One redemption, live or reversed (kept so a reversal can be replayed as a no-op).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Redemption {
    code: String,
    learner_id: LearnerId,
    course_run_id: CourseRunId,
    reversed: bool,
}

/// A coupon with all its codes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coupon {
    terms: Option<Terms>,
    codes: BTreeMap<String, CodeState>,
    redemptions: BTreeMap<Uuid, Redemption>,
}

impl Coupon {
    pub fn is_created(&self) -> bool {
        self.terms.is_some()
    }

    pub fn customer_id(&self) -> Option<CustomerId> {
        self.terms.as_ref().map(|t| t.customer_id)
    }

    pub fn catalog_id(&self) -> Option<CatalogId> {
        self.terms.as_ref().map(|t| t.catalog_id)
    }

    pub fn usage(&self) -> Option<CouponUsage> {
        self.terms.as_ref().map(|t| t.usage)
    }

    /// Every code of the coupon, in code order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.keys().map(String::as_str)
    }

    /// The live uses of a code (`None` for a code the coupon does not have).
    pub fn uses_of(&self, code: &str) -> Option<u32> {
        self.codes.get(code).map(|c| c.live.len() as u32)
    }

    /// The learner a code is reserved for.
    pub fn assignment(&self, code: &str) -> Option<LearnerId> {
        self.codes.get(code).and_then(|c| c.assigned_to)
    }

    /// The live redemption of `code` by `learner` for `run`: lets the service layer answer a
    /// retried redemption with the id of the first one.
    pub fn redemption_for(
        &self,
        code: &str,
        learner: LearnerId,
        run: &CourseRunId,
    ) -> Option<Uuid> {
        self.live(code)
            .find(|(_, r)| r.learner_id == learner && r.course_run_id == *run)
            .map(|(id, _)| id)
    }

    fn live<'a>(&'a self, code: &str) -> impl Iterator<Item = (Uuid, &'a Redemption)> + 'a {
        self.codes
            .get(code)
            .into_iter()
            .flat_map(|c| c.live.iter())
            .filter_map(|id| self.redemptions.get(id).map(|r| (*id, r)))
    }

    fn terms(&self) -> Result<&Terms, CouponError> {
        self.terms.as_ref().ok_or(CouponError::CouponNotFound)
    }

    fn code(&self, code: &str) -> Result<&CodeState, CouponError> {
        self.codes.get(code).ok_or(CouponError::UnknownCode)
    }

    /// Why `learner` may not redeem `code` once more under the coupon's usage, if they may not.
    fn usage_refusal(
        &self,
        usage: CouponUsage,
        code: &str,
        learner: LearnerId,
    ) -> Option<CouponError> {
        let uses = self.uses_of(code).unwrap_or(0);
        let used_up = uses >= usage.max_uses();
        match usage {
            CouponUsage::SingleUse if used_up => Some(CouponError::CodeAlreadyRedeemed),
            CouponUsage::OncePerCustomer { .. }
                if self.live(code).any(|(_, r)| r.learner_id == learner) =>
            {
                Some(CouponError::AlreadyRedeemedByLearner)
            }
            CouponUsage::MultiUsePerCustomer { .. }
                if self.live(code).any(|(_, r)| r.learner_id != learner) =>
            {
                Some(CouponError::CodeBoundToAnotherLearner)
            }
            _ if used_up => Some(CouponError::CodeUsedUp),
            _ => None,
        }
    }

    fn assign(
        &self,
        code: String,
        learner_id: LearnerId,
        email_domain: Option<String>,
    ) -> Result<Option<CouponEvent>, CouponError> {
        let terms = self.terms()?;
        let state = self.code(&code)?;
        command::check_email_domain(&terms.email_domains, email_domain.as_deref())?;
        match state.assigned_to {
            Some(holder) if holder == learner_id => return Ok(None),
            Some(_) => return Err(CouponError::CodeAlreadyAssigned),
            None => {}
        }
        // Reserving a code the learner could not redeem would promise a seat that is not there.
        if let Some(refusal) = self.usage_refusal(terms.usage, &code, learner_id) {
            return Err(match refusal {
                CouponError::CodeAlreadyRedeemed => CouponError::CodeUsedUp,
                other => other,
            });
        }
        Ok(Some(CouponEvent::CodeAssigned {
            coupon_id: terms.coupon_id,
            customer_id: terms.customer_id,
            code,
            learner_id,
        }))
    }

    fn revoke(&self, code: String, learner_id: LearnerId) -> Result<CouponEvent, CouponError> {
        let terms = self.terms()?;
        if self.code(&code)?.assigned_to != Some(learner_id) {
            return Err(CouponError::NotAssigned);
        }
        Ok(CouponEvent::CodeAssignmentRevoked {
            coupon_id: terms.coupon_id,
            customer_id: terms.customer_id,
            code,
            learner_id,
        })
    }

    fn redeem(
        &self,
        code: String,
        learner_id: LearnerId,
        email_domain: Option<String>,
        course_run_id: CourseRunId,
        redemption_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<CouponEvent>, CouponError> {
        let terms = self.terms()?;
        crate::validate::content_key("course_run_id", &course_run_id.0)?;
        let state = self.code(&code)?;
        if at < terms.valid_from || at >= terms.valid_until {
            return Err(CouponError::CouponNotValidAt);
        }
        if state.assigned_to.is_some_and(|holder| holder != learner_id) {
            return Err(CouponError::CodeAssignedToAnother);
        }
        command::check_email_domain(&terms.email_domains, email_domain.as_deref())?;
        if self
            .redemption_for(&code, learner_id, &course_run_id)
            .is_some()
        {
            return Ok(None);
        }
        if self.redemptions.contains_key(&redemption_id) {
            return Err(CouponError::RedemptionIdReused);
        }
        if let Some(refusal) = self.usage_refusal(terms.usage, &code, learner_id) {
            return Err(refusal);
        }
        Ok(Some(CouponEvent::CodeRedeemed {
            coupon_id: terms.coupon_id,
            customer_id: terms.customer_id,
            catalog_id: terms.catalog_id,
            code,
            redemption_id,
            learner_id,
            course_run_id,
            at,
        }))
    }

    fn reverse(
        &self,
        redemption_id: Uuid,
        reason: String,
    ) -> Result<Option<CouponEvent>, CouponError> {
        let terms = self.terms()?;
        crate::validate::text("reason", &reason, command::MAX_REASON)?;
        let redemption = self
            .redemptions
            .get(&redemption_id)
            .ok_or(CouponError::UnknownRedemption)?;
        if redemption.reversed {
            return Ok(None);
        }
        Ok(Some(CouponEvent::RedemptionReversed {
            coupon_id: terms.coupon_id,
            customer_id: terms.customer_id,
            code: redemption.code.clone(),
            redemption_id,
            learner_id: redemption.learner_id,
            course_run_id: redemption.course_run_id.clone(),
            reason,
        }))
    }
}

impl Aggregate for Coupon {
    const TYPE: &'static str = "coupon";
    type Command = CouponCommand;
    type Event = CouponEvent;
    type Error = CouponError;
    type Services = CouponServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            CouponCommand::CreateCoupon {
                coupon_id,
                customer_id,
                catalog_id,
                name,
                code_count,
                usage,
                benefit,
                valid_from,
                valid_until,
                email_domains,
            } => {
                if self.is_created() {
                    return Err(CouponError::CouponAlreadyExists);
                }
                command::validate_creation(
                    &name,
                    code_count,
                    usage,
                    benefit,
                    valid_from,
                    valid_until,
                    &email_domains,
                )?;
                let codes = services.codes.generate(code_count);
                command::check_generated(&codes, code_count)?;
                Some(CouponEvent::CouponCreated {
                    coupon_id,
                    customer_id,
                    catalog_id,
                    name,
                    usage,
                    benefit,
                    valid_from,
                    valid_until,
                    email_domains,
                    codes,
                })
            }
            CouponCommand::AssignCode {
                code,
                learner_id,
                email_domain,
            } => self.assign(code, learner_id, email_domain)?,
            CouponCommand::RevokeAssignment { code, learner_id } => {
                Some(self.revoke(code, learner_id)?)
            }
            CouponCommand::RedeemCode {
                code,
                learner_id,
                email_domain,
                course_run_id,
                redemption_id,
                at,
            } => self.redeem(
                code,
                learner_id,
                email_domain,
                course_run_id,
                redemption_id,
                at,
            )?,
            CouponCommand::ReverseRedemption {
                redemption_id,
                reason,
            } => self.reverse(redemption_id, reason)?,
        };
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CouponEvent::CouponCreated {
                coupon_id,
                customer_id,
                catalog_id,
                usage,
                valid_from,
                valid_until,
                email_domains,
                codes,
                ..
            } => {
                self.terms = Some(Terms {
                    coupon_id,
                    customer_id,
                    catalog_id,
                    usage,
                    valid_from,
                    valid_until,
                    email_domains,
                });
                self.codes = codes
                    .into_iter()
                    .map(|code| (code, CodeState::default()))
                    .collect();
            }
            CouponEvent::CodeAssigned {
                code, learner_id, ..
            } => {
                if let Some(state) = self.codes.get_mut(&code) {
                    state.assigned_to = Some(learner_id);
                }
            }
            CouponEvent::CodeAssignmentRevoked { code, .. } => {
                if let Some(state) = self.codes.get_mut(&code) {
                    state.assigned_to = None;
                }
            }
            CouponEvent::CodeRedeemed {
                code,
                redemption_id,
                learner_id,
                course_run_id,
                ..
            } => {
                if let Some(state) = self.codes.get_mut(&code) {
                    state.live.push(redemption_id);
                }
                self.redemptions.insert(
                    redemption_id,
                    Redemption {
                        code,
                        learner_id,
                        course_run_id,
                        reversed: false,
                    },
                );
            }
            CouponEvent::RedemptionReversed {
                code,
                redemption_id,
                ..
            } => {
                if let Some(state) = self.codes.get_mut(&code) {
                    state.live.retain(|id| *id != redemption_id);
                }
                if let Some(redemption) = self.redemptions.get_mut(&redemption_id) {
                    redemption.reversed = true;
                }
            }
        }
    }
}
