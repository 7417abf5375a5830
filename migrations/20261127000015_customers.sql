-- Read model "customers": every enterprise customer as its events fold it (name, slug, consent
-- policy, branding, identity providers, catalogs), for the API's customer, branding and catalog
-- routes. `state` is the customer aggregate's own state; the columns beside it are what lists
-- filter and sort by. No serial columns and no foreign keys, so a rebuild can copy it whole.
CREATE TABLE customers (
    customer_id uuid        PRIMARY KEY,
    name        text        NOT NULL,
    slug        text        NOT NULL,
    active      boolean     NOT NULL,
    state       jsonb       NOT NULL,
    -- recorded_at of the creating event, and of the latest event.
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX customers_slug ON customers (slug);
CREATE INDEX customers_name ON customers (name, customer_id);
