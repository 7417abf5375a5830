-- Consent read model: the current answer per customer x learner x course key (or program), the
-- customers' consent policies, which courses learners are enrolled in (edX's `exists` counts an
-- enterprise enrollment), and the course keys of programs.
CREATE TABLE consent_records (
    customer_id  uuid        NOT NULL,
    learner_id   uuid        NOT NULL,
    subject_type text        NOT NULL CHECK (subject_type IN ('course', 'program')),
    subject_key  text        NOT NULL,
    granted      boolean     NOT NULL,
    source       text        NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (customer_id, learner_id, subject_type, subject_key)
);

CREATE TABLE consent_customers (
    customer_id                  uuid    PRIMARY KEY,
    enable_data_sharing_consent  boolean NOT NULL,
    enforce_data_sharing_consent text    NOT NULL
);

CREATE TABLE consent_enrollments (
    customer_id uuid NOT NULL,
    learner_id  uuid NOT NULL,
    course_key  text NOT NULL,
    PRIMARY KEY (customer_id, learner_id, course_key)
);

CREATE TABLE consent_programs (
    program_uuid text  PRIMARY KEY,
    course_keys  jsonb NOT NULL
);
