//! Identity providers: unique per customer, at most one default.

use super::*;

#[tokio::test]
async fn adding_an_identity_provider_records_it() {
    Given::with(())
        .given(vec![created()])
        .when_async(add_idp("okta", false))
        .await
        .then_expect_events(vec![idp_added("okta", false, None)]);
}

#[tokio::test]
async fn a_new_default_provider_takes_the_flag_from_the_previous_default() {
    Given::with(())
        .given(vec![created(), idp_added("okta", true, None)])
        .when_async(add_idp("azure-ad", true))
        .await
        .then_expect_events(vec![idp_added("azure-ad", true, Some("okta"))]);
    let customer = state(vec![
        created(),
        idp_added("okta", true, None),
        idp_added("azure-ad", true, Some("okta")),
    ]);
    assert_eq!(customer.default_identity_provider(), Some("azure-ad"));
    assert_eq!(
        customer
            .identity_providers()
            .iter()
            .filter(|p| p.default)
            .count(),
        1
    );
}

#[tokio::test]
async fn adding_a_provider_twice_is_a_conflict() {
    let error = CustomerError::IdentityProviderAlreadyAdded("okta".into());
    Given::with(())
        .given(vec![created(), idp_added("okta", false, None)])
        .when_async(add_idp("okta", true))
        .await
        .then_expect_error(error.clone());
    assert_eq!(error.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn a_malformed_provider_id_is_invalid() {
    expect_invalid(
        vec![created()],
        add_idp(&"a".repeat(51), false),
        "provider_id",
    )
    .await;
    expect_invalid(vec![created()], add_idp("Okta SSO", false), "provider_id").await;
}

#[tokio::test]
async fn removing_a_provider_records_it() {
    let removed = CustomerEvent::IdentityProviderRemoved {
        customer_id: acme(),
        provider_id: "okta".into(),
    };
    Given::with(())
        .given(vec![created(), idp_added("okta", true, None)])
        .when_async(CustomerCommand::RemoveIdentityProvider {
            provider_id: "okta".into(),
        })
        .await
        .then_expect_events(vec![removed.clone()]);
    let customer = state(vec![created(), idp_added("okta", true, None), removed]);
    assert!(customer.identity_providers().is_empty());
}

#[tokio::test]
async fn removing_or_defaulting_an_unknown_provider_is_not_found() {
    let error = CustomerError::IdentityProviderNotFound("okta".into());
    for command in [
        CustomerCommand::RemoveIdentityProvider {
            provider_id: "okta".into(),
        },
        CustomerCommand::SetDefaultIdentityProvider {
            provider_id: "okta".into(),
        },
    ] {
        Given::with(())
            .given(vec![created()])
            .when_async(command)
            .await
            .then_expect_error(error.clone());
    }
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn making_a_provider_the_default_names_the_previous_default() {
    let given = vec![
        created(),
        idp_added("okta", true, None),
        idp_added("azure-ad", false, None),
    ];
    let set = CustomerEvent::DefaultIdentityProviderSet {
        customer_id: acme(),
        provider_id: "azure-ad".into(),
        previous_default: Some("okta".into()),
    };
    Given::with(())
        .given(given.clone())
        .when_async(CustomerCommand::SetDefaultIdentityProvider {
            provider_id: "azure-ad".into(),
        })
        .await
        .then_expect_events(vec![set.clone()]);
    let customer = state([given, vec![set]].concat());
    let defaults: Vec<_> = customer
        .identity_providers()
        .iter()
        .map(|p| p.default)
        .collect();
    assert_eq!(defaults, vec![false, true]);
}

#[tokio::test]
async fn making_the_default_provider_the_default_again_appends_nothing() {
    Given::with(())
        .given(vec![created(), idp_added("okta", true, None)])
        .when_async(CustomerCommand::SetDefaultIdentityProvider {
            provider_id: "okta".into(),
        })
        .await
        .then_expect_events(vec![]);
}
