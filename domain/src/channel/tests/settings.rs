//! Validation of the common fields and of each channel's settings, and their wire form.

use super::*;

#[tokio::test]
async fn a_display_name_is_required_and_short_for_sap() {
    let named = |name: String, settings: ChannelSettings| {
        let mut command = create(settings);
        if let ChannelCommand::CreateChannelConfiguration { display_name, .. } = &mut command {
            *display_name = name;
        }
        command
    };
    expect_invalid(vec![], named(" ".into(), xapi()), "display_name").await;
    expect_invalid(vec![], named("x".repeat(21), sap()), "display_name").await;
    expect_invalid(vec![], named("x".repeat(256), xapi()), "display_name").await;
    let result = Given::with(())
        .given_no_previous_events()
        .when_async(named("x".repeat(21), xapi()))
        .await
        .inspect_result();
    assert!(result.is_ok(), "only SAP limits names to 20: {result:?}");
}

#[tokio::test]
async fn the_chunk_size_is_1_to_1000() {
    for (size, ok) in [(0, false), (1, true), (1000, true), (1001, false)] {
        let command = create_with(|command| {
            if let ChannelCommand::CreateChannelConfiguration {
                transmission_chunk_size,
                ..
            } = command
            {
                *transmission_chunk_size = size;
            }
        });
        let result = Given::with(())
            .given(vec![])
            .when_async(command)
            .await
            .inspect_result();
        match result {
            Err(error) if !ok => assert_eq!(error.field(), Some("transmission_chunk_size")),
            Ok(_) if ok => {}
            other => panic!("chunk size {size}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_catalog_listed_twice_is_invalid() {
    let command = create_with(|command| {
        if let ChannelCommand::CreateChannelConfiguration {
            catalogs_to_transmit,
            ..
        } = command
        {
            *catalogs_to_transmit = vec![catalog(1), catalog(2), catalog(1)];
        }
    });
    expect_invalid(vec![], command, "catalogs_to_transmit").await;
}

#[tokio::test]
async fn a_malformed_identity_provider_id_is_invalid() {
    let command = create_with(|command| {
        if let ChannelCommand::CreateChannelConfiguration { idp_id, .. } = command {
            *idp_id = Some("Acme SSO".into());
        }
    });
    expect_invalid(vec![], command, "idp_id").await;
}

#[tokio::test]
async fn secrets_must_be_named_as_the_channel_names_them() {
    let command = create_with(|command| {
        if let ChannelCommand::CreateChannelConfiguration { secrets, .. } = command {
            secrets.insert("password".into(), secret(9));
        }
    });
    expect_invalid(vec![], command, "secrets").await;
    let mut command = create(xapi());
    if let ChannelCommand::CreateChannelConfiguration { secrets, .. } = &mut command {
        *secrets = BTreeMap::from([("key".into(), secret(1)), ("secret".into(), secret(2))]);
    }
    let result = Given::with(())
        .given(vec![])
        .when_async(command)
        .await
        .inspect_result();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn each_channels_urls_are_checked_under_their_own_names() {
    let cases = [
        (
            ChannelSettings::Degreed2 {
                base_url: "https://degreed.com".into(),
                token_fetch_base_url: Some("degreed.com".into()),
            },
            "token_fetch_base_url",
        ),
        (
            ChannelSettings::Csod {
                base_url: "acme.csod.com".into(),
            },
            "base_url",
        ),
        (
            ChannelSettings::Xapi {
                endpoint: "lrs".into(),
                version: "1.0.3".into(),
            },
            "endpoint",
        ),
    ];
    for (settings, field) in cases {
        expect_invalid(vec![], create(settings), field).await;
    }
    let mut bad_sap = sap();
    if let ChannelSettings::Sap { base_url, .. } = &mut bad_sap {
        *base_url = "ftp://acme".into();
    }
    expect_invalid(vec![], create(bad_sap), "base_url").await;
}

#[tokio::test]
async fn an_xapi_version_other_than_1_0_1_or_1_0_3_is_invalid() {
    let command = create(ChannelSettings::Xapi {
        endpoint: "https://lrs.example.com/".into(),
        version: "2.0.0".into(),
    });
    Given::with(())
        .given_no_previous_events()
        .when_async(command)
        .await
        .then_expect_error(ChannelError::Invalid(Invalid::new(
            "version",
            "must be 1.0.1 or 1.0.3",
        )));
}

#[tokio::test]
async fn sap_text_settings_must_not_be_blank() {
    for field in ["company_id", "user_id", "provider_id", "additional_locales"] {
        let mut settings = sap();
        if let ChannelSettings::Sap {
            company_id,
            user_id,
            provider_id,
            additional_locales,
            ..
        } = &mut settings
        {
            match field {
                "company_id" => company_id.clear(),
                "user_id" => user_id.clear(),
                "provider_id" => *provider_id = " ".into(),
                _ => additional_locales.push(String::new()),
            }
        }
        expect_invalid(vec![], create(settings), field).await;
    }
}

#[test]
fn channel_codes_are_spelled_as_edx_spells_them() {
    let codes: Vec<_> = [
        Channel::Sap,
        Channel::Degreed2,
        Channel::Csod,
        Channel::Xapi,
    ]
    .into_iter()
    .map(|channel| {
        assert_eq!(serde_json::to_value(channel).unwrap(), channel.as_str());
        channel.to_string()
    })
    .collect();
    assert_eq!(codes, ["SAP", "DEGREED2", "CSOD", "XAPI"]);
}

#[test]
fn settings_are_tagged_with_the_channel_and_sap_defaults_its_provider_id() {
    let json = serde_json::to_value(xapi()).unwrap();
    assert_eq!(json["channel"], "XAPI");
    let parsed: ChannelSettings = serde_json::from_value(json!({
        "channel": "SAP",
        "base_url": "https://acme.successfactors.com/",
        "company_id": "ACME01",
        "user_id": "edx_api",
        "user_type": "admin",
        "additional_locales": [],
        "transmit_total_hours": false,
        "prevent_self_submit_grades": true
    }))
    .unwrap();
    match parsed {
        ChannelSettings::Sap {
            provider_id,
            user_type,
            ..
        } => assert_eq!(
            (provider_id.as_str(), user_type),
            ("EDX", SapUserType::Admin)
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_removed_identity_provider_survives_the_round_trip_through_json() {
    let mut event = updated();
    if let ChannelEvent::ChannelConfigurationUpdated { idp_id, .. } = &mut event {
        *idp_id = Some(None);
    }
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["ChannelConfigurationUpdated"]["idp_id"], json!(null));
    assert_eq!(json["ChannelConfigurationUpdated"].get("dry_run"), None);
    let back: ChannelEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, event);
    let unchanged: ChannelEvent =
        serde_json::from_value(serde_json::to_value(updated()).unwrap()).unwrap();
    assert_eq!(unchanged, updated());
}
