//! Catalogs: unique ids, at least one course mode each once, a content filter that parses.

use super::*;

fn catalog_updated() -> CustomerEvent {
    CustomerEvent::CatalogUpdated {
        customer_id: acme(),
        catalog_id: catalog_id(),
        title: Some("Leadership".into()),
        content_filter: Some(json!({"key": ["edX+DemoX"]})),
        enabled_course_modes: None,
        publish_audit_enrollment_urls: None,
    }
}

#[tokio::test]
async fn adding_a_catalog_records_it() {
    Given::with(())
        .given(vec![created()])
        .when_async(add_catalog())
        .await
        .then_expect_events(vec![catalog_added()]);
    let customer = state(vec![created(), catalog_added()]);
    let catalog = customer.catalog(catalog_id()).expect("the catalog");
    assert_eq!(catalog.title, "All Content");
    assert_eq!(customer.catalogs().len(), 1);
}

#[tokio::test]
async fn adding_a_catalog_id_twice_is_a_conflict() {
    let error = CustomerError::CatalogAlreadyExists(catalog_id());
    Given::with(())
        .given(vec![created(), catalog_added()])
        .when_async(add_catalog())
        .await
        .then_expect_error(error.clone());
    assert_eq!(error.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn a_catalog_needs_a_title() {
    let mut command = add_catalog();
    if let CustomerCommand::AddCatalog { title, .. } = &mut command {
        *title = " ".into();
    }
    expect_invalid(vec![created()], command, "title").await;
}

#[tokio::test]
async fn a_catalog_enables_at_least_one_course_mode_each_once() {
    let modes = |modes: Vec<CourseMode>| {
        let mut command = add_catalog();
        if let CustomerCommand::AddCatalog {
            enabled_course_modes,
            ..
        } = &mut command
        {
            *enabled_course_modes = modes;
        }
        command
    };
    Given::with(())
        .given(vec![created()])
        .when_async(modes(vec![]))
        .await
        .then_expect_error(CustomerError::Invalid(Invalid::new(
            "enabled_course_modes",
            "must enable at least one course mode",
        )));
    let twice = vec![CourseMode::Audit, CourseMode::Verified, CourseMode::Audit];
    Given::with(())
        .given(vec![created()])
        .when_async(modes(twice))
        .await
        .then_expect_error(CustomerError::Invalid(Invalid::new(
            "enabled_course_modes",
            "lists 'audit' twice",
        )));
}

#[tokio::test]
async fn a_content_filter_that_does_not_parse_is_invalid() {
    let mut command = add_catalog();
    if let CustomerCommand::AddCatalog { content_filter, .. } = &mut command {
        *content_filter = json!(["not", "an", "object"]);
    }
    expect_invalid(vec![created()], command, "content_filter").await;
}

#[tokio::test]
async fn a_catalog_update_records_only_what_changed() {
    let command = CustomerCommand::UpdateCatalog {
        catalog_id: catalog_id(),
        title: Some("Leadership".into()),
        content_filter: Some(json!({"key": ["edX+DemoX"]})),
        enabled_course_modes: Some(vec![CourseMode::Verified, CourseMode::Audit]),
        publish_audit_enrollment_urls: Some(false),
    };
    Given::with(())
        .given(vec![created(), catalog_added()])
        .when_async(command)
        .await
        .then_expect_events(vec![catalog_updated()]);
    let customer = state(vec![created(), catalog_added(), catalog_updated()]);
    let catalog = customer.catalog(catalog_id()).expect("the catalog");
    assert_eq!(catalog.title, "Leadership");
    assert_eq!(catalog.content_filter, json!({"key": ["edX+DemoX"]}));
    assert_eq!(catalog.enabled_course_modes.len(), 2);
}

#[tokio::test]
async fn a_catalog_update_that_changes_nothing_appends_nothing() {
    let mut same = update_catalog();
    if let CustomerCommand::UpdateCatalog { title, .. } = &mut same {
        *title = Some("All Content".into());
    }
    for command in [update_catalog(), same] {
        Given::with(())
            .given(vec![created(), catalog_added()])
            .when_async(command)
            .await
            .then_expect_events(vec![]);
    }
}

#[tokio::test]
async fn a_catalog_update_is_validated_like_a_new_catalog() {
    let mut command = update_catalog();
    if let CustomerCommand::UpdateCatalog {
        enabled_course_modes,
        ..
    } = &mut command
    {
        *enabled_course_modes = Some(vec![]);
    }
    expect_invalid(
        vec![created(), catalog_added()],
        command,
        "enabled_course_modes",
    )
    .await;
    let mut command = update_catalog();
    if let CustomerCommand::UpdateCatalog { content_filter, .. } = &mut command {
        *content_filter = Some(json!("everything"));
    }
    expect_invalid(vec![created(), catalog_added()], command, "content_filter").await;
}

#[tokio::test]
async fn removing_a_catalog_records_it() {
    let removed = CustomerEvent::CatalogRemoved {
        customer_id: acme(),
        catalog_id: catalog_id(),
    };
    Given::with(())
        .given(vec![created(), catalog_added()])
        .when_async(CustomerCommand::RemoveCatalog {
            catalog_id: catalog_id(),
        })
        .await
        .then_expect_events(vec![removed.clone()]);
    let customer = state(vec![created(), catalog_added(), removed]);
    assert_eq!(customer.catalog(catalog_id()), None);
}

#[tokio::test]
async fn updating_or_removing_an_unknown_catalog_is_not_found() {
    let error = CustomerError::CatalogNotFound(catalog_id());
    for command in [
        update_catalog(),
        CustomerCommand::RemoveCatalog {
            catalog_id: catalog_id(),
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
