//! Create, update, activation and secrets.

use super::*;

#[tokio::test]
async fn creating_a_configuration_records_every_field() {
    Given::with(())
        .given_no_previous_events()
        .when_async(create_sap())
        .await
        .then_expect_events(vec![created()]);
    let config = state(vec![created()]);
    assert!(config.is_created() && config.is_active());
    assert_eq!(config.customer_id(), Some(acme()));
    assert_eq!(config.channel(), Some(Channel::Sap));
    assert_eq!(config.settings(), Some(&sap()));
    assert_eq!(config.secret("client_secret"), Some(secret(2)));
    assert_eq!(config.catalogs_to_transmit(), &[catalog(1)]);
    assert_eq!(config.transmission_chunk_size(), 1);
    assert!(!config.dry_run() && !config.disable_learner_data());
}

#[tokio::test]
async fn creating_an_existing_configuration_is_refused() {
    Given::with(())
        .given(vec![created()])
        .when_async(create_sap())
        .await
        .then_expect_error(ChannelError::ConfigurationAlreadyExists);
    assert_eq!(
        ChannelError::ConfigurationAlreadyExists.kind(),
        ErrorKind::Conflict
    );
}

#[tokio::test]
async fn every_command_on_a_never_created_configuration_is_not_found() {
    let commands = [
        update(),
        ChannelCommand::DeactivateChannelConfiguration,
        ChannelCommand::ReactivateChannelConfiguration,
        ChannelCommand::SetChannelSecret {
            name: "client_id".into(),
            secret: secret(3),
        },
    ];
    for command in commands {
        Given::with(())
            .given_no_previous_events()
            .when_async(command)
            .await
            .then_expect_error(ChannelError::ConfigurationNotFound);
    }
    assert_eq!(
        ChannelError::ConfigurationNotFound.kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn an_update_records_only_what_changed() {
    let command = ChannelCommand::UpdateChannelConfiguration {
        config_id: config_id(),
        display_name: Some("SAP production".into()),
        dry_run: Some(true),
        catalogs_to_transmit: Some(vec![]),
        transmission_chunk_size: Some(1),
        disable_learner_data: Some(true),
        idp_id: Some(Some("acme-sso".into())),
        settings: Some(sap()),
    };
    let event = ChannelEvent::ChannelConfigurationUpdated {
        config_id: config_id(),
        customer_id: acme(),
        display_name: None,
        dry_run: Some(true),
        catalogs_to_transmit: Some(vec![]),
        transmission_chunk_size: None,
        disable_learner_data: Some(true),
        idp_id: None,
        settings: None,
    };
    Given::with(())
        .given(vec![created()])
        .when_async(command)
        .await
        .then_expect_events(vec![event.clone()]);
    let config = state(vec![created(), event]);
    assert!(config.dry_run() && config.disable_learner_data());
    assert!(
        config.transmits_catalog(catalog(9)),
        "empty means every catalog"
    );
}

#[tokio::test]
async fn an_update_that_changes_nothing_appends_nothing() {
    Given::with(())
        .given(vec![created()])
        .when_async(update())
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn an_update_may_remove_the_identity_provider_or_change_the_settings() {
    let mut new_sap = sap();
    if let ChannelSettings::Sap { user_type, .. } = &mut new_sap {
        *user_type = SapUserType::Admin;
    }
    let mut command = update();
    if let ChannelCommand::UpdateChannelConfiguration {
        idp_id, settings, ..
    } = &mut command
    {
        *idp_id = Some(None);
        *settings = Some(new_sap.clone());
    }
    let mut event = updated();
    if let ChannelEvent::ChannelConfigurationUpdated {
        idp_id, settings, ..
    } = &mut event
    {
        *idp_id = Some(None);
        *settings = Some(new_sap.clone());
    }
    Given::with(())
        .given(vec![created()])
        .when_async(command)
        .await
        .then_expect_events(vec![event.clone()]);
    let config = state(vec![created(), event]);
    assert_eq!(config.idp_id(), None);
    assert_eq!(config.settings(), Some(&new_sap));
}

#[tokio::test]
async fn settings_of_another_channel_are_refused() {
    let mut command = update();
    if let ChannelCommand::UpdateChannelConfiguration { settings, .. } = &mut command {
        *settings = Some(xapi());
    }
    let error = ChannelError::ChannelMismatch {
        configured: Channel::Sap,
        requested: Channel::Xapi,
    };
    Given::with(())
        .given(vec![created()])
        .when_async(command)
        .await
        .then_expect_error(error.clone());
    assert_eq!(error.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn an_update_addressed_to_another_configuration_is_refused() {
    let mut command = update();
    if let ChannelCommand::UpdateChannelConfiguration { config_id, .. } = &mut command {
        *config_id = ChannelConfigId(Uuid::from_u128(8));
    }
    Given::with(())
        .given(vec![created()])
        .when_async(command)
        .await
        .then_expect_error(ChannelError::ConfigIdMismatch);
}

#[tokio::test]
async fn an_update_is_validated_against_the_configured_channel() {
    let mut command = update();
    if let ChannelCommand::UpdateChannelConfiguration { display_name, .. } = &mut command {
        *display_name = Some("x".repeat(21));
    }
    expect_invalid(vec![created()], command, "display_name").await;
    let mut command = update();
    if let ChannelCommand::UpdateChannelConfiguration {
        transmission_chunk_size,
        ..
    } = &mut command
    {
        *transmission_chunk_size = Some(0);
    }
    expect_invalid(vec![created()], command, "transmission_chunk_size").await;
    let mut command = update();
    if let ChannelCommand::UpdateChannelConfiguration { idp_id, .. } = &mut command {
        *idp_id = Some(Some("Acme SSO".into()));
    }
    expect_invalid(vec![created()], command, "idp_id").await;
}

#[tokio::test]
async fn deactivation_and_reactivation_are_recorded() {
    Given::with(())
        .given(vec![created()])
        .when_async(ChannelCommand::DeactivateChannelConfiguration)
        .await
        .then_expect_events(vec![deactivated()]);
    assert!(!state(vec![created(), deactivated()]).is_active());
    Given::with(())
        .given(vec![created(), deactivated()])
        .when_async(ChannelCommand::ReactivateChannelConfiguration)
        .await
        .then_expect_events(vec![ChannelEvent::ChannelConfigurationReactivated {
            config_id: config_id(),
            customer_id: acme(),
        }]);
}

#[tokio::test]
async fn repeating_the_current_activation_state_appends_nothing() {
    Given::with(())
        .given(vec![created()])
        .when_async(ChannelCommand::ReactivateChannelConfiguration)
        .await
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![created(), deactivated()])
        .when_async(ChannelCommand::DeactivateChannelConfiguration)
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn setting_a_secret_replaces_its_reference() {
    let set = ChannelEvent::ChannelSecretSet {
        config_id: config_id(),
        customer_id: acme(),
        name: "client_secret".into(),
        secret: secret(3),
    };
    Given::with(())
        .given(vec![created()])
        .when_async(ChannelCommand::SetChannelSecret {
            name: "client_secret".into(),
            secret: secret(3),
        })
        .await
        .then_expect_events(vec![set.clone()]);
    assert_eq!(
        state(vec![created(), set]).secret("client_secret"),
        Some(secret(3))
    );
}

#[tokio::test]
async fn setting_the_same_secret_reference_again_appends_nothing() {
    Given::with(())
        .given(vec![created()])
        .when_async(ChannelCommand::SetChannelSecret {
            name: "client_id".into(),
            secret: secret(1),
        })
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_secret_name_the_channel_does_not_use_is_invalid() {
    let command = ChannelCommand::SetChannelSecret {
        name: "key".into(),
        secret: secret(3),
    };
    expect_invalid(vec![created()], command, "secrets").await;
}
