use super::*;
use cqrs_es::test::TestFramework;
use uuid::Uuid;
use MembershipCommand as C;
use MembershipEvent as E;
use MembershipState as S;

type Given = TestFramework<LearnerMemberships>;

fn learner() -> LearnerId {
    LearnerId(Uuid::from_u128(2))
}

fn customer(n: u128) -> CustomerId {
    CustomerId(Uuid::from_u128(100 + n))
}

fn requested(c: u128) -> E {
    E::PendingLinkRequested {
        learner_id: learner(),
        customer_id: customer(c),
    }
}

fn cancelled(c: u128) -> E {
    E::PendingLinkCancelled {
        learner_id: learner(),
        customer_id: customer(c),
    }
}

fn linked(c: u128, active: bool) -> E {
    E::LearnerLinked {
        learner_id: learner(),
        customer_id: customer(c),
        active,
    }
}

fn activated(c: u128) -> E {
    E::MembershipActivated {
        learner_id: learner(),
        customer_id: customer(c),
    }
}

fn deactivated(c: u128) -> E {
    E::MembershipDeactivated {
        learner_id: learner(),
        customer_id: customer(c),
    }
}

fn unlinked(c: u128, is_relinkable: bool) -> E {
    E::LearnerUnlinked {
        learner_id: learner(),
        customer_id: customer(c),
        is_relinkable,
    }
}

fn request(c: u128) -> C {
    C::RequestPendingLink {
        learner_id: learner(),
        customer_id: customer(c),
    }
}

fn complete() -> C {
    C::CompletePendingLinks {
        learner_id: learner(),
    }
}

fn link(c: u128, activate: bool) -> C {
    C::LinkLearner {
        learner_id: learner(),
        customer_id: customer(c),
        activate,
    }
}

fn activate(c: u128) -> C {
    C::ActivateMembership {
        learner_id: learner(),
        customer_id: customer(c),
    }
}

fn deactivate(c: u128) -> C {
    C::DeactivateMembership {
        learner_id: learner(),
        customer_id: customer(c),
    }
}

fn unlink(c: u128, is_relinkable: bool) -> C {
    C::UnlinkLearner {
        learner_id: learner(),
        customer_id: customer(c),
        is_relinkable,
    }
}

fn replay(events: &[E]) -> LearnerMemberships {
    let mut memberships = LearnerMemberships::default();
    for event in events {
        memberships.apply(event.clone());
    }
    memberships
}

async fn expect(given: Vec<E>, when: C, then: Vec<E>) {
    Given::with(())
        .given(given)
        .when_async(when)
        .await
        .then_expect_events(then);
}

async fn refuse(given: Vec<E>, when: C, error: MembershipError) {
    Given::with(())
        .given(given)
        .when_async(when)
        .await
        .then_expect_error(error);
}

#[tokio::test]
async fn a_pending_link_is_recorded_for_an_unregistered_learner() {
    expect(vec![], request(1), vec![requested(1)]).await;
    assert_eq!(
        replay(&[requested(1)]).membership(customer(1)),
        Some(S::Pending)
    );
}

#[tokio::test]
async fn requesting_a_link_that_is_pending_or_linked_appends_nothing() {
    expect(vec![requested(1)], request(1), vec![]).await;
    expect(vec![linked(1, false)], request(1), vec![]).await;
}

#[tokio::test]
async fn a_pending_link_after_a_final_unlink_is_refused() {
    let given = vec![linked(1, true), unlinked(1, false)];
    refuse(given, request(1), MembershipError::RelinkRefused).await;
}

#[tokio::test]
async fn a_pending_link_after_a_relinkable_unlink_is_recorded() {
    let given = vec![linked(1, true), unlinked(1, true)];
    expect(given, request(1), vec![requested(1)]).await;
}

#[tokio::test]
async fn registration_links_every_pending_membership_and_activates_the_latest_request() {
    // Requested 3, then 1, then 2: the map order differs from the request order.
    let given = vec![requested(3), requested(1), requested(2)];
    let then = vec![linked(3, false), linked(1, false), linked(2, true)];
    expect(given.clone(), complete(), then.clone()).await;
    let after = replay(&[given, then].concat());
    assert_eq!(after.active_customer(), Some(customer(2)));
    assert_eq!(
        after.membership(customer(3)),
        Some(S::Linked { active: false })
    );
}

#[tokio::test]
async fn registration_deactivates_the_active_customer_before_activating_the_latest_request() {
    let given = vec![linked(1, true), requested(2)];
    expect(given, complete(), vec![deactivated(1), linked(2, true)]).await;
}

#[tokio::test]
async fn a_request_made_again_after_a_cancellation_ranks_as_the_latest() {
    let given = vec![requested(1), requested(2), cancelled(1), requested(1)];
    expect(given, complete(), vec![linked(2, false), linked(1, true)]).await;
}

#[tokio::test]
async fn registration_with_nothing_pending_appends_nothing() {
    expect(vec![], complete(), vec![]).await;
    expect(vec![linked(1, true)], complete(), vec![]).await;
}

#[tokio::test]
async fn linking_a_new_customer_without_activating_leaves_the_active_one_alone() {
    expect(
        vec![linked(1, true)],
        link(2, false),
        vec![linked(2, false)],
    )
    .await;
}

#[tokio::test]
async fn linking_with_activation_deactivates_the_active_customer_first() {
    let then = vec![deactivated(1), linked(2, true)];
    expect(vec![linked(1, true)], link(2, true), then).await;
    expect(vec![], link(1, true), vec![linked(1, true)]).await;
}

#[tokio::test]
async fn linking_completes_a_pending_membership() {
    expect(vec![requested(1)], link(1, false), vec![linked(1, false)]).await;
}

#[tokio::test]
async fn a_relinkable_unlinked_learner_can_be_linked_again() {
    let given = vec![linked(1, true), unlinked(1, true)];
    expect(given, link(1, true), vec![linked(1, true)]).await;
}

#[tokio::test]
async fn linking_after_a_final_unlink_is_refused() {
    let given = vec![linked(1, true), unlinked(1, false)];
    refuse(given, link(1, true), MembershipError::RelinkRefused).await;
}

#[tokio::test]
async fn linking_an_already_linked_learner_appends_nothing() {
    expect(vec![linked(1, false)], link(1, false), vec![]).await;
    expect(vec![linked(1, true)], link(1, true), vec![]).await;
    expect(vec![linked(1, true)], link(1, false), vec![]).await;
}

#[tokio::test]
async fn linking_an_inactive_member_with_activation_activates_it() {
    let given = vec![linked(1, true), linked(2, false)];
    expect(given, link(2, true), vec![deactivated(1), activated(2)]).await;
}

#[tokio::test]
async fn activating_a_membership_deactivates_the_other_active_one() {
    let given = vec![linked(1, true), linked(2, false)];
    expect(
        given.clone(),
        activate(2),
        vec![deactivated(1), activated(2)],
    )
    .await;
    expect(vec![linked(2, false)], activate(2), vec![activated(2)]).await;
}

#[tokio::test]
async fn activating_the_active_membership_appends_nothing() {
    expect(vec![linked(1, true)], activate(1), vec![]).await;
}

#[tokio::test]
async fn activating_without_a_link_is_refused() {
    refuse(vec![], activate(1), MembershipError::NotLinked).await;
    refuse(vec![requested(1)], activate(1), MembershipError::NotLinked).await;
    let given = vec![linked(1, true), unlinked(1, true)];
    refuse(given, activate(1), MembershipError::NotLinked).await;
}

#[tokio::test]
async fn deactivating_the_active_membership_leaves_no_active_customer() {
    expect(vec![linked(1, true)], deactivate(1), vec![deactivated(1)]).await;
    assert_eq!(
        replay(&[linked(1, true), deactivated(1)]).active_customer(),
        None
    );
}

#[tokio::test]
async fn deactivating_an_inactive_membership_appends_nothing() {
    expect(vec![linked(1, false)], deactivate(1), vec![]).await;
}

#[tokio::test]
async fn deactivating_without_a_link_is_refused() {
    refuse(vec![], deactivate(1), MembershipError::NotLinked).await;
    refuse(
        vec![requested(1)],
        deactivate(1),
        MembershipError::NotLinked,
    )
    .await;
}

#[tokio::test]
async fn unlinking_a_linked_learner_records_it_and_makes_it_inactive() {
    expect(
        vec![linked(1, true)],
        unlink(1, false),
        vec![unlinked(1, false)],
    )
    .await;
    let after = replay(&[linked(1, true), unlinked(1, false)]);
    assert_eq!(after.active_customer(), None);
    let state = S::Unlinked {
        is_relinkable: false,
    };
    assert_eq!(after.membership(customer(1)), Some(state));
}

#[tokio::test]
async fn unlinking_a_pending_learner_cancels_the_invitation() {
    expect(vec![requested(1)], unlink(1, true), vec![cancelled(1)]).await;
    assert_eq!(
        replay(&[requested(1), cancelled(1)]).membership(customer(1)),
        None
    );
}

#[tokio::test]
async fn unlinking_again_with_the_same_flag_appends_nothing() {
    let given = vec![linked(1, true), unlinked(1, true)];
    expect(given, unlink(1, true), vec![]).await;
}

#[tokio::test]
async fn unlinking_again_with_another_flag_records_the_new_flag() {
    let given = vec![linked(1, true), unlinked(1, true)];
    expect(given, unlink(1, false), vec![unlinked(1, false)]).await;
}

#[tokio::test]
async fn unlinking_a_stranger_is_refused() {
    refuse(vec![], unlink(1, true), MembershipError::NotLinked).await;
}

#[tokio::test]
async fn a_command_for_another_learner_is_refused() {
    let other = C::ActivateMembership {
        learner_id: LearnerId(Uuid::from_u128(99)),
        customer_id: customer(1),
    };
    refuse(vec![linked(1, false)], other, MembershipError::KeyMismatch).await;
}

/// Runs a script through the framework, each step given every event so far, and checks the
/// invariant on the aggregate rebuilt from those events after every step.
#[tokio::test]
async fn a_scripted_history_never_has_two_active_customers() {
    let script = vec![
        request(1),
        request(2),
        link(3, true),
        complete(),
        activate(1),
        link(3, true),
        unlink(3, true),
        link(3, true),
        request(4),
        complete(),
        deactivate(4),
        activate(2),
        unlink(2, false),
        activate(1),
    ];
    let mut history: Vec<E> = vec![];
    for command in script {
        let result = Given::with(())
            .given(history.clone())
            .when_async(command)
            .await
            .inspect_result();
        history.extend(result.expect("every scripted command is accepted"));
        let after = replay(&history);
        let active = after
            .memberships()
            .filter(|(_, s)| *s == S::Linked { active: true })
            .count();
        assert!(active <= 1, "{active} active customers after {history:?}");
    }
    assert_eq!(replay(&history).active_customer(), Some(customer(1)));
}

/// A pseudo-random walk (fixed seed) over many commands: whatever is accepted, at most one
/// membership is active, and replaying the events gives the state the handler reached.
#[tokio::test]
async fn a_long_random_history_never_has_two_active_customers() {
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    };
    let mut state = LearnerMemberships::default();
    let mut history: Vec<E> = vec![];
    for _ in 0..2_000 {
        let c = u128::from(next(4));
        let command = match next(7) {
            0 => request(c),
            1 => complete(),
            2 => link(c, next(2) == 0),
            3 => activate(c),
            4 => deactivate(c),
            5 => unlink(c, next(3) != 0),
            _ => link(c, true),
        };
        let before = state.clone();
        let sink = EventSink::default();
        match state.handle(command, &(), &sink).await {
            Ok(()) => history.extend(sink.collect().await),
            Err(_) => assert_eq!(state, before, "a refused command changed the state"),
        }
        let active = state
            .memberships()
            .filter(|(_, s)| *s == S::Linked { active: true })
            .count();
        assert!(active <= 1);
    }
    assert_eq!(replay(&history), state);
    assert!(history.len() > 100, "the walk exercised too little");
}

#[test]
fn a_learner_has_one_membership_stream() {
    let a = membership_stream_id(learner());
    assert_eq!(a, membership_stream_id(learner()));
    assert_ne!(a, membership_stream_id(LearnerId(Uuid::from_u128(3))));
}

#[test]
fn errors_map_to_their_kinds() {
    use crate::error::{DomainError, ErrorKind};
    assert_eq!(MembershipError::NotLinked.kind(), ErrorKind::NotFound);
    assert_eq!(
        MembershipError::RelinkRefused.kind(),
        ErrorKind::ForbiddenTransition
    );
    assert_eq!(MembershipError::KeyMismatch.kind(), ErrorKind::Conflict);
}

#[test]
fn events_are_named_and_versioned() {
    use cqrs_es::DomainEvent;
    assert_eq!(linked(1, true).event_type(), "LearnerLinked");
    assert_eq!(unlinked(1, true).event_version(), "1.0");
}
