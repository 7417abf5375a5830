//! LearnerMemberships: every membership of one learner (edX's `EnterpriseCustomerUser` rows and
//! `PendingEnterpriseCustomerUser` invitations), one entry per customer.
//!
//! A membership is pending (the learner was invited before registering), linked (active or not)
//! or unlinked (a soft delete that remembers whether a later link is allowed). The rules:
//! - one membership per customer x learner: it is a map key, so a duplicate cannot be expressed;
//! - a learner has at most one active customer: activating one first deactivates the other;
//! - an unlink with `is_relinkable = false` forbids linking again;
//! - when the learner registers, every pending link is completed and the most recently
//!   requested one becomes active (edX links them one by one, each save activating its row).
//!
//! Why one stream per learner, and not one per customer x learner: the "at most one active"
//! rule spans all of a learner's memberships. With a stream per membership, two concurrent
//! activations for two customers would each read its own stream, each see the rule hold, and
//! both commit: two active customers (edX has exactly this race, hence its fixer command
//! `ensure_singular_active_enterprise_customer_user`). With every membership of the learner in
//! one stream, both commands write at the same stream version: the loser gets an
//! optimistic-concurrency conflict and retries against state that includes the winner's
//! activation. The cost is small: a learner belongs to a handful of customers, and only writes
//! for the same learner contend. "Which learners does a customer have" is a projection.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::MembershipCommand;
pub use error::MembershipError;
pub use event::MembershipEvent;

use crate::ids::{stream_id, CustomerId, LearnerId};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The stream of all of one learner's memberships (see the module doc for why per learner).
pub fn membership_stream_id(learner: LearnerId) -> String {
    stream_id("learner_membership", &[&learner.to_string()])
}

/// Where one customer x learner membership stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipState {
    /// Invited before the learner registered; completed on registration.
    Pending,
    /// A member; `active` marks the learner's currently selected customer.
    Linked { active: bool },
    /// Unlinked (never deleted); `is_relinkable` tells whether a later link is allowed.
    Unlinked { is_relinkable: bool },
}

/// One entry of the map: the state, and when it was requested if it is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Membership {
    state: MembershipState,
    /// Rank of the latest pending request for this customer among the learner's requests.
    requested: u64,
}

/// All memberships of one learner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnerMemberships {
    learner: Option<LearnerId>,
    memberships: BTreeMap<CustomerId, Membership>,
    /// How many pending links were ever requested: ranks the requests, so that registration can
    /// activate the most recent one.
    requests: u64,
}

impl LearnerMemberships {
    /// The learner's active customer, if any (at most one, by the rules above).
    pub fn active_customer(&self) -> Option<CustomerId> {
        self.memberships
            .iter()
            .find(|(_, m)| m.state == MembershipState::Linked { active: true })
            .map(|(customer, _)| *customer)
    }

    /// The state of the learner's membership of `customer`; `None` if never linked or invited
    /// (or if the invitation was cancelled).
    pub fn membership(&self, customer: CustomerId) -> Option<MembershipState> {
        self.memberships.get(&customer).map(|m| m.state)
    }

    /// Every membership of the learner, by customer.
    pub fn memberships(&self) -> impl Iterator<Item = (CustomerId, MembershipState)> + '_ {
        self.memberships.iter().map(|(c, m)| (*c, m.state))
    }

    /// The learner this stream belongs to, once it has an event.
    pub fn learner(&self) -> Option<LearnerId> {
        self.learner
    }

    /// A command must address the learner this stream holds: guards against a caller that
    /// derived the stream id from one learner and sent another.
    fn check_learner(&self, learner: LearnerId) -> Result<(), MembershipError> {
        match self.learner {
            Some(l) if l != learner => Err(MembershipError::KeyMismatch),
            _ => Ok(()),
        }
    }

    /// Decides the events of a command against the current state, before any is applied.
    fn decide(&self, command: MembershipCommand) -> Result<Vec<MembershipEvent>, MembershipError> {
        use MembershipCommand as C;
        use MembershipEvent as E;
        use MembershipState as S;
        self.check_learner(command.learner_id())?;
        let events = match command {
            C::RequestPendingLink {
                learner_id,
                customer_id,
            } => match self.membership(customer_id) {
                None
                | Some(S::Unlinked {
                    is_relinkable: true,
                }) => vec![E::PendingLinkRequested {
                    learner_id,
                    customer_id,
                }],
                Some(S::Pending | S::Linked { .. }) => vec![],
                Some(S::Unlinked { .. }) => return Err(MembershipError::RelinkRefused),
            },
            C::CompletePendingLinks { learner_id } => self.complete_pending(learner_id),
            C::LinkLearner {
                learner_id,
                customer_id,
                activate,
            } => match self.membership(customer_id) {
                Some(S::Unlinked {
                    is_relinkable: false,
                }) => return Err(MembershipError::RelinkRefused),
                Some(S::Linked { active }) if activate && !active => {
                    self.activate(learner_id, customer_id)
                }
                Some(S::Linked { .. }) => vec![],
                None | Some(S::Pending | S::Unlinked { .. }) => {
                    let mut events = if activate {
                        self.deactivate_active(learner_id)
                    } else {
                        vec![]
                    };
                    events.push(E::LearnerLinked {
                        learner_id,
                        customer_id,
                        active: activate,
                    });
                    events
                }
            },
            C::ActivateMembership {
                learner_id,
                customer_id,
            } => match self.membership(customer_id) {
                Some(S::Linked { active: true }) => vec![],
                Some(S::Linked { active: false }) => self.activate(learner_id, customer_id),
                _ => return Err(MembershipError::NotLinked),
            },
            C::DeactivateMembership {
                learner_id,
                customer_id,
            } => match self.membership(customer_id) {
                Some(S::Linked { active: true }) => vec![E::MembershipDeactivated {
                    learner_id,
                    customer_id,
                }],
                Some(S::Linked { active: false }) => vec![],
                _ => return Err(MembershipError::NotLinked),
            },
            C::UnlinkLearner {
                learner_id,
                customer_id,
                is_relinkable,
            } => match self.membership(customer_id) {
                None => return Err(MembershipError::NotLinked),
                Some(S::Pending) => vec![E::PendingLinkCancelled {
                    learner_id,
                    customer_id,
                }],
                Some(S::Unlinked { is_relinkable: now }) if now == is_relinkable => vec![],
                Some(S::Linked { .. } | S::Unlinked { .. }) => vec![E::LearnerUnlinked {
                    learner_id,
                    customer_id,
                    is_relinkable,
                }],
            },
        };
        Ok(events)
    }

    /// Deactivates whichever customer is active (none, or one other than the one to activate).
    fn deactivate_active(&self, learner_id: LearnerId) -> Vec<MembershipEvent> {
        self.active_customer()
            .map(|customer_id| MembershipEvent::MembershipDeactivated {
                learner_id,
                customer_id,
            })
            .into_iter()
            .collect()
    }

    /// Makes a linked, inactive membership the active one.
    fn activate(&self, learner_id: LearnerId, customer_id: CustomerId) -> Vec<MembershipEvent> {
        let mut events = self.deactivate_active(learner_id);
        events.push(MembershipEvent::MembershipActivated {
            learner_id,
            customer_id,
        });
        events
    }

    /// Links every pending membership, oldest request first; the newest becomes active.
    fn complete_pending(&self, learner_id: LearnerId) -> Vec<MembershipEvent> {
        let mut pending: Vec<(u64, CustomerId)> = self
            .memberships
            .iter()
            .filter(|(_, m)| m.state == MembershipState::Pending)
            .map(|(customer, m)| (m.requested, *customer))
            .collect();
        pending.sort_unstable();
        let Some((_, newest)) = pending.pop() else {
            return vec![];
        };
        let mut events: Vec<_> = pending
            .into_iter()
            .map(|(_, customer_id)| MembershipEvent::LearnerLinked {
                learner_id,
                customer_id,
                active: false,
            })
            .collect();
        events.extend(self.deactivate_active(learner_id));
        events.push(MembershipEvent::LearnerLinked {
            learner_id,
            customer_id: newest,
            active: true,
        });
        events
    }

    fn set(&mut self, customer: CustomerId, state: MembershipState) {
        self.memberships
            .entry(customer)
            .and_modify(|m| m.state = state)
            .or_insert(Membership {
                state,
                requested: 0,
            });
    }
}

impl Aggregate for LearnerMemberships {
    const TYPE: &'static str = "learner_membership";
    type Command = MembershipCommand;
    type Event = MembershipEvent;
    type Error = MembershipError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        // All events are decided first, so a refused command writes none of them.
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use MembershipEvent as E;
        use MembershipState as S;
        self.learner = Some(event.learner_id());
        let customer = event.customer_id();
        match event {
            E::PendingLinkRequested { .. } => {
                self.requests += 1;
                self.memberships.insert(
                    customer,
                    Membership {
                        state: S::Pending,
                        requested: self.requests,
                    },
                );
            }
            E::PendingLinkCancelled { .. } => {
                self.memberships.remove(&customer);
            }
            E::LearnerLinked { active, .. } => self.set(customer, S::Linked { active }),
            E::MembershipActivated { .. } => self.set(customer, S::Linked { active: true }),
            E::MembershipDeactivated { .. } => self.set(customer, S::Linked { active: false }),
            E::LearnerUnlinked { is_relinkable, .. } => {
                self.set(customer, S::Unlinked { is_relinkable })
            }
        }
    }
}
