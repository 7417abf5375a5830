-- Read model "enrollments": one row per enterprise enrollment with the learner progress report
-- (progress_v3) columns the events can give, and the inputs the projection keeps to fill them.
-- A projection reads only its own tables, so the inputs (customer names, course-run metadata,
-- consent, coupons and redemptions, completions) are kept here, prefixed like the rest. No
-- personal data: the learner's email and username are joined from the directory when read.
-- No serial columns and no foreign keys, so a rebuild can copy the tables whole.

CREATE TABLE enrollments_report (
    -- The enrollment stream id (UUIDv5 of customer x learner x course run); both
    -- `enrollment_id` and `enterprise_enrollment_id` of the report.
    enrollment_id                uuid             PRIMARY KEY,
    customer_id                  uuid             NOT NULL,   -- enterprise_customer_uuid
    learner_id                   uuid             NOT NULL,   -- enterprise_user_id
    course_run_id                text             NOT NULL,   -- courserun_key
    -- The course key consent is recorded under for this run (what `ConsentSubject::for_course_id`
    -- gives): kept apart from `course_key`, which discovery's metadata may set differently.
    consent_key                  text             NOT NULL,
    -- The coupon redemption that paid for the enrollment, if any.
    redemption_id                uuid,
    enrollment_source            text             NOT NULL,
    saved_for_later              boolean          NOT NULL DEFAULT false,
    is_consent_granted           boolean          NOT NULL DEFAULT false,
    user_current_enrollment_mode text             NOT NULL,
    enrollment_date              timestamptz      NOT NULL,
    unenrollment_date            timestamptz,
    offer_type                   text,
    coupon_code                  text,
    coupon_name                  text,
    course_key                   text,
    course_title                 text,
    course_pacing_type           text,
    course_start_date            timestamptz,
    course_end_date              timestamptz,
    has_passed                   boolean          NOT NULL DEFAULT false,
    progress_status              text             NOT NULL DEFAULT 'In Progress',
    passed_date                  timestamptz,
    current_grade                double precision,
    letter_grade                 text,
    enterprise_name              text,
    -- recorded_at of the Enrolled event: when the enterprise enrollment was recorded.
    created                      timestamptz      NOT NULL,
    CONSTRAINT enrollments_report_key UNIQUE (customer_id, learner_id, course_run_id)
);

-- The report of a customer, by enrollment date (also the keyset of chunked reads).
CREATE INDEX enrollments_report_customer_date
    ON enrollments_report (customer_id, enrollment_date, enrollment_id);
-- Inputs that change after the enrollment reach their rows through these.
CREATE INDEX enrollments_report_run ON enrollments_report (course_run_id);
CREATE INDEX enrollments_report_consent ON enrollments_report (customer_id, learner_id, consent_key);
CREATE INDEX enrollments_report_redemption ON enrollments_report (redemption_id)
    WHERE redemption_id IS NOT NULL;

-- Customer names (CustomerCreated, CustomerUpdated).
CREATE TABLE enrollments_customers (
    customer_id uuid PRIMARY KEY,
    name        text NOT NULL
);

-- Course-run metadata (content_item events of course runs); kept after a retirement, since
-- enrollments in a retired run still report it.
CREATE TABLE enrollments_course_runs (
    course_run_id text        PRIMARY KEY,
    course_key    text,
    title         text        NOT NULL,
    pacing_type   text,
    start_date    timestamptz,
    end_date      timestamptz
);

-- Course consent per customer x learner x course key (program consents do not count).
CREATE TABLE enrollments_consents (
    customer_id uuid    NOT NULL,
    learner_id  uuid    NOT NULL,
    course_key  text    NOT NULL,
    granted     boolean NOT NULL,
    PRIMARY KEY (customer_id, learner_id, course_key)
);

-- Coupons: name and offer type (from the benefit).
CREATE TABLE enrollments_coupons (
    coupon_id  uuid PRIMARY KEY,
    name       text NOT NULL,
    offer_type text NOT NULL
);

-- Redemptions by id: which coupon and code paid, and whether it was reversed.
CREATE TABLE enrollments_redemptions (
    redemption_id uuid    PRIMARY KEY,
    coupon_id     uuid    NOT NULL,
    code          text    NOT NULL,
    reversed      boolean NOT NULL DEFAULT false
);

-- The latest completion decision per enrollment key (CourseCompleted, CompletionGradeChanged).
CREATE TABLE enrollments_completions (
    customer_id     uuid             NOT NULL,
    learner_id      uuid             NOT NULL,
    course_run_id   text             NOT NULL,
    has_passed      boolean          NOT NULL,
    progress_status text             NOT NULL,
    passed_date     timestamptz,
    current_grade   double precision,
    letter_grade    text             NOT NULL,
    PRIMARY KEY (customer_id, learner_id, course_run_id)
);
