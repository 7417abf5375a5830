-- The learner directory: the only place personal data lives. Events name learners by the
-- pseudonymous learner_id; erasing a learner blanks this row and leaves the log untouched.
--
-- A row without lms_user_id is a learner known only by email (invited before registering):
-- registration with that email claims the row, and with it the learner_id the invitations use.
CREATE TABLE learners (
    learner_id  uuid        PRIMARY KEY,
    lms_user_id bigint      CONSTRAINT learners_lms_user_id_key UNIQUE,
    username    text        CONSTRAINT learners_username_key UNIQUE,
    email       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);

CREATE UNIQUE INDEX learners_email_key ON learners (lower(email));

-- SSO ids per identity provider (the learner's id in the customer's own identity system).
CREATE TABLE learner_sso_ids (
    learner_id        uuid NOT NULL REFERENCES learners (learner_id) ON DELETE CASCADE,
    identity_provider text NOT NULL,
    remote_id         text NOT NULL,
    PRIMARY KEY (learner_id, identity_provider),
    CONSTRAINT learner_sso_ids_remote_id_key UNIQUE (identity_provider, remote_id)
);
