//! `export` then `import` into an empty database, and the refusals of `import`.

mod support;

use sqlx::PgPool;
use support::*;
use uuid::Uuid;

fn scratch_name() -> String {
    format!("replay_import_{}", Uuid::new_v4().simple())
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn export_then_import_gives_the_same_log_and_the_same_read_models(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    assert_exit(&replay(&url, &["rebuild", "--all"]), 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.jsonl");
    let file = file.to_str().unwrap();
    assert_exit(&replay(&url, &["export", "--output", file]), 0);
    let source_log = log_rows(&pool).await;
    assert_eq!(
        std::fs::read_to_string(file).unwrap().lines().count(),
        source_log.len()
    );

    let name = scratch_name();
    let target_url = create_database(&pool, &name).await;
    let outcome = async {
        let out = replay(&target_url, &["import", file]);
        assert_exit(&out, 0);
        assert!(stderr(&out).contains("positions kept"), "{}", stderr(&out));
        let target = store::db::connect(&target_url, 2).await.unwrap();
        assert_eq!(log_rows(&target).await, source_log);

        assert_exit(&replay(&target_url, &["rebuild", "--all"]), 0);
        let (source_models, target_models) = (read_models(&pool).await, read_models(&target).await);
        assert!(source_models.iter().any(|(_, rows)| !rows.is_empty()));
        assert_eq!(target_models, source_models);
        assert_exit(&replay(&target_url, &["verify", "--read-models", "all"]), 0);

        // A second import is refused: the store is no longer empty.
        let out = replay(&target_url, &["import", file]);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("already holds events"),
            "{}",
            stderr(&out)
        );
        assert_eq!(log_rows(&target).await, source_log);

        // New events continue after the imported positions.
        let store = store::EventStore::new(target.clone());
        let position = consent(
            &store,
            domain::ids::CustomerId(Uuid::new_v4()),
            domain::ids::LearnerId(Uuid::new_v4()),
            course("edX+New"),
            domain::consent::ConsentSource::Api,
            domain::consent::Action::Grant,
            "x",
        )
        .await;
        assert!(position > source_log.last().unwrap().0);
        target.close().await;
    };
    outcome.await;
    drop_database(&pool, &name).await;
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_altered_file_is_refused_and_nothing_is_imported(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let file = path.to_str().unwrap();
    assert_exit(&replay(&url, &["export", "-o", file]), 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let number = text
        .lines()
        .position(|l| l.contains("\"ConsentRevoked\""))
        .expect("the export holds the revocation");
    let altered: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == number {
                l.replace("\"admin\"", "\"consent_page\"")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_ne!(altered.join("\n"), text.trim_end());
    std::fs::write(&path, altered.join("\n")).unwrap();

    let name = scratch_name();
    let target_url = create_database(&pool, &name).await;
    let out = replay(&target_url, &["import", file]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(&format!("line {}", number + 1)),
        "{}",
        stderr(&out)
    );
    let target = store::db::connect(&target_url, 1).await.unwrap();
    assert!(log_rows(&target).await.is_empty());

    // A line that is not an event is refused before anything is written.
    std::fs::write(&path, "{\"not\": \"an event\"}\n").unwrap();
    let out = replay(&target_url, &["import", file]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    let out = replay(&target_url, &["import", "/no/such/file.jsonl"]);
    assert_exit(&out, 2);
    target.close().await;
    drop_database(&pool, &name).await;
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn export_selects_a_position_range_a_stream_or_a_customer(pool: PgPool) {
    let world = rich_log(&pool).await;
    let url = url_of(&pool);
    let log = log_rows(&pool).await;
    let lines = |args: &[&str]| {
        let mut all = vec!["export"];
        all.extend_from_slice(args);
        let out = replay(&url, &all);
        assert_exit(&out, 0);
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let everything = lines(&[]);
    assert_eq!(everything.len(), log.len());
    let positions: Vec<i64> = everything
        .iter()
        .map(|e| e["global_position"].as_i64().unwrap())
        .collect();
    let (from, to) = (positions[2], positions[5]);
    let ranged = lines(&[
        "--from-position",
        &from.to_string(),
        "--to-position",
        &to.to_string(),
    ]);
    assert_eq!(ranged.len(), 4);

    let stream = domain::customer::customer_stream_id(world.customer);
    let own = lines(&["--stream", &stream]);
    assert!(own.len() >= 2);
    assert!(own.iter().all(|e| e["aggregate_id"] == stream.as_str()));

    let customer = world.customer.0.to_string();
    let of_customer = lines(&["--customer", &customer]);
    let expected = log.iter().filter(|row| row.5.contains(&customer)).count();
    assert_eq!(of_customer.len(), expected);
    assert!(of_customer.iter().any(|e| e["aggregate_type"] == "consent"));
    assert!(of_customer.len() < everything.len());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_file_whose_positions_do_not_increase_is_imported_in_its_own_order(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let file = path.to_str().unwrap();
    assert_exit(&replay(&url, &["export", "-o", file]), 0);
    // Two neighbouring events of different streams change places, as when two writers'
    // transactions commit in the opposite order of their positions.
    let mut lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let i = (0..lines.len() - 1)
        .find(|&i| lines[i]["aggregate_id"] != lines[i + 1]["aggregate_id"])
        .unwrap();
    lines.swap(i, i + 1);
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&path, text.join("\n")).unwrap();

    let name = scratch_name();
    let target_url = create_database(&pool, &name).await;
    let out = replay(&target_url, &["import", file]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("numbered anew"), "{}", stderr(&out));
    let target = store::db::connect(&target_url, 2).await.unwrap();
    let log = e2e_tests::read_log(&target, lines.len()).await;
    let read: Vec<(String, i64)> = log
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    let written: Vec<(String, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["aggregate_id"].as_str().unwrap().to_string(),
                l["sequence"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(read, written);
    assert_exit(
        &replay(&target_url, &["verify", "--read-models", "none"]),
        0,
    );
    target.close().await;
    drop_database(&pool, &name).await;
}
