//! Secrets are stored encrypted and only referenced from events.

use sqlx::PgPool;
use store::secrets::{SecretBox, SecretError};

fn secret_box() -> SecretBox {
    SecretBox::from_hex(&"5e".repeat(32)).unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_secret_round_trips_and_is_not_stored_in_clear(pool: PgPool) {
    let secrets = secret_box();
    let reference = secrets.put(&pool, "s3cr3t-client-secret").await.unwrap();
    assert_eq!(
        secrets.get(&pool, reference).await.unwrap(),
        "s3cr3t-client-secret"
    );
    let stored: Vec<u8> = sqlx::query_scalar("SELECT ciphertext FROM secrets WHERE secret_id = $1")
        .bind(reference.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("s3cr3t"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_edited_ciphertext_or_another_key_does_not_decrypt(pool: PgPool) {
    let secrets = secret_box();
    let reference = secrets.put(&pool, "value").await.unwrap();
    let other = SecretBox::from_hex(&"77".repeat(32)).unwrap();
    assert!(matches!(
        other.get(&pool, reference).await,
        Err(SecretError::Undecryptable(_))
    ));
    sqlx::query(
        "UPDATE secrets SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(matches!(
        secrets.get(&pool, reference).await,
        Err(SecretError::Undecryptable(_))
    ));
    let unknown = domain::ids::SecretRef(uuid::Uuid::new_v4());
    assert!(matches!(
        secrets.get(&pool, unknown).await,
        Err(SecretError::NotFound(_))
    ));
}
