-- What a runner reports besides its position: the error that stopped it.
ALTER TABLE projection_checkpoints
    ADD COLUMN last_error    text,
    ADD COLUMN last_error_at timestamptz;
