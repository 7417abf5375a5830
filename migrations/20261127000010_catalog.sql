-- The catalog read model (projection "catalog"): content metadata, the customers' catalogs, and
-- which content each catalog's content_filter admits. Written only by the projection
-- (projections/src/read_models/catalog.rs); no serial columns and no foreign keys, so that a
-- rebuild can copy the tables with CREATE TABLE ... (LIKE ... INCLUDING ALL).

-- Every course, course run and program ever published; a retired one stays with
-- published = false and its last metadata.
CREATE TABLE catalog_content (
    content_type text    NOT NULL,
    content_key  text    NOT NULL,
    -- A run's course key; a course's own key; NULL for programs.
    course_key   text,
    -- The domain's ContentMetadata, as JSON.
    metadata     jsonb   NOT NULL,
    -- ContentMetadata::filter_view(): what content filters are matched against.
    filter_view  jsonb   NOT NULL,
    published    boolean NOT NULL,
    PRIMARY KEY (content_type, content_key)
);

-- The runs of a course (a run counts as in a catalog when its course is a member).
CREATE INDEX catalog_content_course_key ON catalog_content (course_key);

-- The customers' catalogs (edX's EnterpriseCustomerCatalog).
CREATE TABLE catalog_catalogs (
    catalog_id                    uuid        PRIMARY KEY,
    customer_id                   uuid        NOT NULL,
    title                         text        NOT NULL,
    content_filter                jsonb       NOT NULL,
    enabled_course_modes          jsonb       NOT NULL,
    publish_audit_enrollment_urls boolean     NOT NULL,
    -- When the catalog was added (the event's recorded_at): lists follow it, like edX's
    -- ordering by creation.
    added_at                      timestamptz NOT NULL
);

CREATE INDEX catalog_catalogs_customer ON catalog_catalogs (customer_id, added_at);

-- Published content a catalog's filter admits. A course run whose course is a member also
-- belongs to the catalog; the queries add those runs, they are not rows here.
CREATE TABLE catalog_membership (
    catalog_id   uuid NOT NULL,
    content_type text NOT NULL,
    content_key  text NOT NULL,
    PRIMARY KEY (catalog_id, content_type, content_key)
);

CREATE INDEX catalog_membership_content ON catalog_membership (content_type, content_key);
