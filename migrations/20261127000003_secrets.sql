-- Channel credentials and other secrets, encrypted (XChaCha20-Poly1305) with a key the service
-- gets from its configuration. Events hold only the secret_id.
CREATE TABLE secrets (
    secret_id  uuid        PRIMARY KEY,
    nonce      bytea       NOT NULL,
    ciphertext bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
