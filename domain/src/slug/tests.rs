use super::*;
use crate::error::{DomainError, ErrorKind, Invalid};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type Given = TestFramework<SlugClaim>;

fn acme() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}

fn globex() -> CustomerId {
    CustomerId(Uuid::from_u128(2))
}

fn claim(customer_id: CustomerId) -> SlugCommand {
    SlugCommand::ClaimSlug {
        slug: "acme".into(),
        customer_id,
    }
}

fn release(customer_id: CustomerId) -> SlugCommand {
    SlugCommand::ReleaseSlug {
        slug: "acme".into(),
        customer_id,
    }
}

fn claimed(customer_id: CustomerId) -> SlugEvent {
    SlugEvent::SlugClaimed {
        slug: "acme".into(),
        customer_id,
    }
}

fn released(customer_id: CustomerId) -> SlugEvent {
    SlugEvent::SlugReleased {
        slug: "acme".into(),
        customer_id,
    }
}

#[tokio::test]
async fn a_free_slug_is_claimed() {
    Given::with(())
        .given_no_previous_events()
        .when_async(claim(acme()))
        .await
        .then_expect_events(vec![claimed(acme())]);
}

#[tokio::test]
async fn claiming_a_slug_one_already_holds_appends_nothing() {
    Given::with(())
        .given(vec![claimed(acme())])
        .when_async(claim(acme()))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_slug_held_by_another_customer_is_taken() {
    Given::with(())
        .given(vec![claimed(acme())])
        .when_async(claim(globex()))
        .await
        .then_expect_error(SlugError::SlugTaken);
    assert_eq!(SlugError::SlugTaken.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn after_release_anyone_may_claim_the_slug() {
    Given::with(())
        .given(vec![claimed(acme()), released(acme())])
        .when_async(claim(globex()))
        .await
        .then_expect_events(vec![claimed(globex())]);
}

#[tokio::test]
async fn the_holder_releases_its_slug() {
    Given::with(())
        .given(vec![claimed(acme())])
        .when_async(release(acme()))
        .await
        .then_expect_events(vec![released(acme())]);
}

#[tokio::test]
async fn releasing_another_customers_slug_is_refused() {
    Given::with(())
        .given(vec![claimed(acme())])
        .when_async(release(globex()))
        .await
        .then_expect_error(SlugError::NotHolder);
    assert_eq!(SlugError::NotHolder.kind(), ErrorKind::ForbiddenTransition);
}

#[tokio::test]
async fn releasing_a_free_slug_appends_nothing() {
    Given::with(())
        .given_no_previous_events()
        .when_async(release(acme()))
        .await
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![claimed(acme()), released(acme())])
        .when_async(release(globex()))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_malformed_slug_is_invalid() {
    let error = Invalid::new("slug", "may contain only a-z, 0-9 and '-'");
    Given::with(())
        .given_no_previous_events()
        .when_async(SlugCommand::ClaimSlug {
            slug: "Acme Corp".into(),
            customer_id: acme(),
        })
        .await
        .then_expect_error(SlugError::Invalid(error.clone()));
    assert_eq!(SlugError::Invalid(error).field(), Some("slug"));
    Given::with(())
        .given_no_previous_events()
        .when_async(SlugCommand::ClaimSlug {
            slug: "a".repeat(SLUG_MAX + 1),
            customer_id: acme(),
        })
        .await
        .then_expect_error(SlugError::Invalid(Invalid::new(
            "slug",
            "must be 1 to 30 characters",
        )));
}

#[tokio::test]
async fn a_command_for_another_slug_is_refused() {
    Given::with(())
        .given(vec![claimed(acme())])
        .when_async(SlugCommand::ReleaseSlug {
            slug: "globex".into(),
            customer_id: acme(),
        })
        .await
        .then_expect_error(SlugError::SlugMismatch);
}

#[test]
fn the_holder_is_read_from_the_events() {
    let mut claim = SlugClaim::default();
    assert_eq!(claim.holder(), None);
    claim.apply(claimed(acme()));
    assert_eq!(claim.holder(), Some(acme()));
    claim.apply(released(acme()));
    assert_eq!(claim.holder(), None);
}

#[test]
fn each_slug_has_its_own_stream() {
    assert_eq!(slug_stream_id("acme"), slug_stream_id("acme"));
    assert_ne!(slug_stream_id("acme"), slug_stream_id("globex"));
    assert_eq!(
        slug_stream_id("acme"),
        crate::ids::stream_id("customer_slug", &["acme"])
    );
}
