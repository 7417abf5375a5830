use super::*;
use crate::error::{DomainError, ErrorKind, Invalid};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

mod catalogs;
mod identity_providers;

type Given = TestFramework<Customer>;

fn acme() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}

fn catalog_id() -> CatalogId {
    CatalogId(Uuid::from_u128(10))
}

fn create() -> CustomerCommand {
    CustomerCommand::CreateCustomer {
        customer_id: acme(),
        name: "Acme Corp".into(),
        slug: "acme".into(),
        consent: ConsentPolicy::default(),
        enable_audit_enrollment: false,
        enable_audit_data_reporting: false,
    }
}

fn created() -> CustomerEvent {
    CustomerEvent::CustomerCreated {
        customer_id: acme(),
        name: "Acme Corp".into(),
        slug: "acme".into(),
        consent: ConsentPolicy::default(),
        enable_audit_enrollment: false,
        enable_audit_data_reporting: false,
    }
}

fn update() -> CustomerCommand {
    CustomerCommand::UpdateCustomer {
        name: None,
        slug: None,
        consent: None,
        enable_audit_enrollment: None,
        enable_audit_data_reporting: None,
    }
}

fn branding() -> CustomerCommand {
    CustomerCommand::SetBranding {
        logo_url: Some("https://cdn.example.com/acme.png".into()),
        primary_color: Some("#112233".into()),
        secondary_color: None,
        tertiary_color: Some("#ABCDEF".into()),
    }
}

fn branding_set() -> CustomerEvent {
    CustomerEvent::BrandingSet {
        customer_id: acme(),
        logo_url: Some("https://cdn.example.com/acme.png".into()),
        primary_color: Some("#112233".into()),
        secondary_color: None,
        tertiary_color: Some("#ABCDEF".into()),
    }
}

fn add_idp(provider_id: &str, default: bool) -> CustomerCommand {
    CustomerCommand::AddIdentityProvider {
        provider_id: provider_id.into(),
        default,
    }
}

fn idp_added(provider_id: &str, default: bool, previous: Option<&str>) -> CustomerEvent {
    CustomerEvent::IdentityProviderAdded {
        customer_id: acme(),
        provider_id: provider_id.into(),
        default,
        previous_default: previous.map(Into::into),
    }
}

fn add_catalog() -> CustomerCommand {
    CustomerCommand::AddCatalog {
        catalog_id: catalog_id(),
        title: "All Content".into(),
        content_filter: json!({}),
        enabled_course_modes: vec![CourseMode::Verified, CourseMode::Audit],
        publish_audit_enrollment_urls: false,
    }
}

fn catalog_added() -> CustomerEvent {
    CustomerEvent::CatalogAdded {
        customer_id: acme(),
        catalog_id: catalog_id(),
        title: "All Content".into(),
        content_filter: json!({}),
        enabled_course_modes: vec![CourseMode::Verified, CourseMode::Audit],
        publish_audit_enrollment_urls: false,
    }
}

fn update_catalog() -> CustomerCommand {
    CustomerCommand::UpdateCatalog {
        catalog_id: catalog_id(),
        title: None,
        content_filter: None,
        enabled_course_modes: None,
        publish_audit_enrollment_urls: None,
    }
}

fn state(events: Vec<CustomerEvent>) -> Customer {
    let mut customer = Customer::default();
    events.into_iter().for_each(|event| customer.apply(event));
    customer
}

async fn expect_invalid(given: Vec<CustomerEvent>, command: CustomerCommand, field: &str) {
    match Given::with(())
        .given(given)
        .when_async(command)
        .await
        .inspect_result()
    {
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::Validation, "{error}");
            assert_eq!(error.field(), Some(field), "{error}");
        }
        Ok(events) => panic!("expected {field} to be invalid, got {events:?}"),
    }
}

#[tokio::test]
async fn creating_a_customer_records_its_settings() {
    Given::with(())
        .given_no_previous_events()
        .when_async(create())
        .await
        .then_expect_events(vec![created()]);
    let customer = state(vec![created()]);
    assert!(customer.is_created() && customer.is_active());
    assert_eq!(customer.slug(), "acme");
}

#[tokio::test]
async fn creating_an_existing_customer_is_refused() {
    Given::with(())
        .given(vec![created()])
        .when_async(create())
        .await
        .then_expect_error(CustomerError::CustomerAlreadyExists);
    assert_eq!(
        CustomerError::CustomerAlreadyExists.kind(),
        ErrorKind::Conflict
    );
}

#[tokio::test]
async fn a_blank_or_overlong_name_is_invalid() {
    for name in ["  ".to_string(), "x".repeat(256)] {
        let mut command = create();
        if let CustomerCommand::CreateCustomer { name: n, .. } = &mut command {
            *n = name;
        }
        expect_invalid(vec![], command, "name").await;
    }
}

#[tokio::test]
async fn a_malformed_slug_is_invalid() {
    for slug in ["Acme", "a".repeat(31).as_str(), ""] {
        let mut command = create();
        if let CustomerCommand::CreateCustomer { slug: s, .. } = &mut command {
            *s = slug.into();
        }
        expect_invalid(vec![], command, "slug").await;
    }
}

#[tokio::test]
async fn every_command_on_a_never_created_customer_is_not_found() {
    let commands = vec![
        update(),
        CustomerCommand::DeactivateCustomer,
        CustomerCommand::ReactivateCustomer,
        branding(),
        add_idp("okta", true),
        CustomerCommand::RemoveIdentityProvider {
            provider_id: "okta".into(),
        },
        CustomerCommand::SetDefaultIdentityProvider {
            provider_id: "okta".into(),
        },
        add_catalog(),
        update_catalog(),
        CustomerCommand::RemoveCatalog {
            catalog_id: catalog_id(),
        },
    ];
    for command in commands {
        Given::with(())
            .given_no_previous_events()
            .when_async(command)
            .await
            .then_expect_error(CustomerError::CustomerNotFound);
    }
    assert_eq!(CustomerError::CustomerNotFound.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn an_update_records_only_what_changed() {
    let policy = ConsentPolicy {
        enable_data_sharing_consent: true,
        enforce_data_sharing_consent: ConsentEnforcement::ExternallyManaged,
    };
    let command = CustomerCommand::UpdateCustomer {
        name: Some("Acme Corp".into()),
        slug: Some("acme-corp".into()),
        consent: Some(policy),
        enable_audit_enrollment: Some(true),
        enable_audit_data_reporting: Some(false),
    };
    let updated = CustomerEvent::CustomerUpdated {
        customer_id: acme(),
        name: None,
        slug: Some("acme-corp".into()),
        consent: Some(policy),
        enable_audit_enrollment: Some(true),
        enable_audit_data_reporting: None,
    };
    Given::with(())
        .given(vec![created()])
        .when_async(command)
        .await
        .then_expect_events(vec![updated.clone()]);
    let customer = state(vec![created(), updated.clone()]);
    assert_eq!(
        (customer.slug(), customer.name()),
        ("acme-corp", "Acme Corp")
    );
    assert_eq!(customer.consent_policy(), policy);
    let json = serde_json::to_value(&updated).unwrap();
    assert_eq!(json["CustomerUpdated"].get("name"), None);
}

#[tokio::test]
async fn an_update_that_changes_nothing_appends_nothing() {
    let same = CustomerCommand::UpdateCustomer {
        name: Some("Acme Corp".into()),
        slug: Some("acme".into()),
        consent: Some(ConsentPolicy::default()),
        enable_audit_enrollment: Some(false),
        enable_audit_data_reporting: None,
    };
    for command in [update(), same] {
        Given::with(())
            .given(vec![created()])
            .when_async(command)
            .await
            .then_expect_events(vec![]);
    }
}

#[tokio::test]
async fn an_update_with_a_malformed_name_or_slug_is_invalid() {
    let mut command = update();
    if let CustomerCommand::UpdateCustomer { slug, .. } = &mut command {
        *slug = Some("no spaces".into());
    }
    expect_invalid(vec![created()], command, "slug").await;
    let mut command = update();
    if let CustomerCommand::UpdateCustomer { name, .. } = &mut command {
        *name = Some(String::new());
    }
    expect_invalid(vec![created()], command, "name").await;
}

#[tokio::test]
async fn deactivation_and_reactivation_are_recorded() {
    let deactivated = CustomerEvent::CustomerDeactivated {
        customer_id: acme(),
    };
    Given::with(())
        .given(vec![created()])
        .when_async(CustomerCommand::DeactivateCustomer)
        .await
        .then_expect_events(vec![deactivated.clone()]);
    assert!(!state(vec![created(), deactivated.clone()]).is_active());
    Given::with(())
        .given(vec![created(), deactivated])
        .when_async(CustomerCommand::ReactivateCustomer)
        .await
        .then_expect_events(vec![CustomerEvent::CustomerReactivated {
            customer_id: acme(),
        }]);
}

#[tokio::test]
async fn repeating_the_current_activation_state_appends_nothing() {
    let deactivated = CustomerEvent::CustomerDeactivated {
        customer_id: acme(),
    };
    Given::with(())
        .given(vec![created()])
        .when_async(CustomerCommand::ReactivateCustomer)
        .await
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![created(), deactivated])
        .when_async(CustomerCommand::DeactivateCustomer)
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn setting_branding_records_the_whole_branding() {
    Given::with(())
        .given(vec![created()])
        .when_async(branding())
        .await
        .then_expect_events(vec![branding_set()]);
    let customer = state(vec![created(), branding_set()]);
    assert_eq!(
        customer.branding().primary_color.as_deref(),
        Some("#112233")
    );
}

#[tokio::test]
async fn setting_the_same_branding_again_appends_nothing() {
    Given::with(())
        .given(vec![created(), branding_set()])
        .when_async(branding())
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_malformed_logo_url_or_colour_is_invalid() {
    let bad = |field: &str| {
        let mut command = branding();
        if let CustomerCommand::SetBranding {
            logo_url,
            secondary_color,
            ..
        } = &mut command
        {
            match field {
                "logo_url" => *logo_url = Some("ftp://cdn.example.com/acme.png".into()),
                _ => *secondary_color = Some("red".into()),
            }
        }
        command
    };
    expect_invalid(vec![created()], bad("logo_url"), "logo_url").await;
    expect_invalid(vec![created()], bad("secondary_color"), "secondary_color").await;
}

#[test]
fn consent_is_requested_and_enforced_as_edx_decides() {
    let policy = |enable, enforce| ConsentPolicy {
        enable_data_sharing_consent: enable,
        enforce_data_sharing_consent: enforce,
    };
    let at_enrollment = policy(true, ConsentEnforcement::AtEnrollment);
    assert!(at_enrollment.requests_consent() && at_enrollment.enforces_at_enrollment());
    let external = policy(true, ConsentEnforcement::ExternallyManaged);
    assert!(!external.requests_consent() && !external.enforces_at_enrollment());
    let disabled = policy(false, ConsentEnforcement::AtEnrollment);
    assert!(!disabled.requests_consent() && !disabled.enforces_at_enrollment());
    assert_eq!(ConsentPolicy::default(), at_enrollment);
}

#[test]
fn consent_enforcement_is_spelled_as_edx_spells_it() {
    let json = serde_json::to_value(ConsentEnforcement::ExternallyManaged).unwrap();
    assert_eq!(json, "externally_managed");
    let json = serde_json::to_value(ConsentEnforcement::AtEnrollment).unwrap();
    assert_eq!(json, "at_enrollment");
}

#[test]
fn audit_data_is_reported_only_when_audit_enrollment_is_enabled_too() {
    let with = |audit, reporting| {
        let mut customer = state(vec![created()]);
        customer.apply(CustomerEvent::CustomerUpdated {
            customer_id: acme(),
            name: None,
            slug: None,
            consent: None,
            enable_audit_enrollment: Some(audit),
            enable_audit_data_reporting: Some(reporting),
        });
        customer.enables_audit_data_reporting()
    };
    assert!(with(true, true));
    assert!(!with(false, true));
    assert!(!with(true, false));
}

#[test]
fn the_stream_of_a_customer_is_its_uuid() {
    assert_eq!(
        customer_stream_id(acme()),
        "00000000-0000-0000-0000-000000000001"
    );
}
