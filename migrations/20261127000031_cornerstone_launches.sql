-- Cornerstone launch parameters: when Cornerstone launches a course for a learner it hands
-- over where and how to report that learner's progress (userGuid, callbackUrl, sessionToken,
-- subdomain). Completions for Cornerstone can only be pushed once a launch is recorded.
--
-- Operational data beside the learner directory, not events: the user guid is the learner's
-- id at Cornerstone (personal data) and the session token a credential, kept encrypted with
-- the service's secrets key. Erasing a learner deletes their launches.
CREATE TABLE cornerstone_launches (
    customer_id      uuid        NOT NULL,
    learner_id       uuid        NOT NULL REFERENCES learners (learner_id) ON DELETE CASCADE,
    -- The course key the launch was for (a learner row's consent key).
    course_key       text        NOT NULL,
    -- The Cornerstone configuration whose base URL the subdomain matched.
    config_id        uuid        NOT NULL,
    user_guid        text        NOT NULL,
    callback_url     text        NOT NULL,
    subdomain        text        NOT NULL,
    token_nonce      bytea       NOT NULL,
    token_ciphertext bytea       NOT NULL,
    launched_at      timestamptz NOT NULL,
    PRIMARY KEY (customer_id, learner_id, course_key)
);

-- The configuration's latest session token (edX keeps the latest launch's token on the
-- configuration and reports with it).
CREATE INDEX cornerstone_launches_latest ON cornerstone_launches (config_id, launched_at DESC);
