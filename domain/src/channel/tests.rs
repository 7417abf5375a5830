use super::*;
use crate::error::{DomainError, ErrorKind, Invalid};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

type Given = TestFramework<ChannelConfiguration>;

fn config_id() -> ChannelConfigId {
    ChannelConfigId(Uuid::from_u128(7))
}

fn acme() -> CustomerId {
    CustomerId(Uuid::from_u128(1))
}

fn catalog(n: u128) -> CatalogId {
    CatalogId(Uuid::from_u128(100 + n))
}

fn secret(n: u128) -> SecretRef {
    SecretRef(Uuid::from_u128(200 + n))
}

fn sap() -> ChannelSettings {
    ChannelSettings::Sap {
        base_url: "https://acme.successfactors.com/".into(),
        company_id: "ACME01".into(),
        user_id: "edx_api".into(),
        user_type: SapUserType::User,
        provider_id: default_sap_provider_id(),
        additional_locales: vec!["German".into()],
        transmit_total_hours: true,
        prevent_self_submit_grades: false,
    }
}

fn xapi() -> ChannelSettings {
    ChannelSettings::Xapi {
        endpoint: "https://lrs.example.com/xapi/".into(),
        version: "1.0.3".into(),
    }
}

fn sap_secrets() -> BTreeMap<String, SecretRef> {
    BTreeMap::from([
        ("client_id".into(), secret(1)),
        ("client_secret".into(), secret(2)),
    ])
}

fn create(settings: ChannelSettings) -> ChannelCommand {
    ChannelCommand::CreateChannelConfiguration {
        config_id: config_id(),
        customer_id: acme(),
        display_name: "SAP production".into(),
        active: true,
        dry_run: false,
        catalogs_to_transmit: vec![catalog(1)],
        transmission_chunk_size: 1,
        disable_learner_data: false,
        idp_id: Some("acme-sso".into()),
        settings,
        secrets: BTreeMap::new(),
    }
}

fn created() -> ChannelEvent {
    ChannelEvent::ChannelConfigurationCreated {
        config_id: config_id(),
        customer_id: acme(),
        display_name: "SAP production".into(),
        active: true,
        dry_run: false,
        catalogs_to_transmit: vec![catalog(1)],
        transmission_chunk_size: 1,
        disable_learner_data: false,
        idp_id: Some("acme-sso".into()),
        settings: sap(),
        secrets: sap_secrets(),
    }
}

fn create_sap() -> ChannelCommand {
    let mut command = create(sap());
    if let ChannelCommand::CreateChannelConfiguration { secrets, .. } = &mut command {
        *secrets = sap_secrets();
    }
    command
}

/// A create command with one field changed by `edit`.
fn create_with(edit: impl FnOnce(&mut ChannelCommand)) -> ChannelCommand {
    let mut command = create_sap();
    edit(&mut command);
    command
}

fn update() -> ChannelCommand {
    ChannelCommand::UpdateChannelConfiguration {
        config_id: config_id(),
        display_name: None,
        dry_run: None,
        catalogs_to_transmit: None,
        transmission_chunk_size: None,
        disable_learner_data: None,
        idp_id: None,
        settings: None,
    }
}

fn updated() -> ChannelEvent {
    ChannelEvent::ChannelConfigurationUpdated {
        config_id: config_id(),
        customer_id: acme(),
        display_name: None,
        dry_run: None,
        catalogs_to_transmit: None,
        transmission_chunk_size: None,
        disable_learner_data: None,
        idp_id: None,
        settings: None,
    }
}

fn deactivated() -> ChannelEvent {
    ChannelEvent::ChannelConfigurationDeactivated {
        config_id: config_id(),
        customer_id: acme(),
    }
}

fn state(events: Vec<ChannelEvent>) -> ChannelConfiguration {
    let mut config = ChannelConfiguration::default();
    events.into_iter().for_each(|event| config.apply(event));
    config
}

async fn expect_invalid(given: Vec<ChannelEvent>, command: ChannelCommand, field: &str) {
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

mod lifecycle;
mod settings;

#[test]
fn the_stream_of_a_configuration_is_its_uuid() {
    assert_eq!(
        channel_stream_id(config_id()),
        "00000000-0000-0000-0000-000000000007"
    );
}
