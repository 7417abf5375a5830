-- Every query of the catalog read model names the catalogs it asks about, so the primary key
-- (catalog_id, content_type, content_key) serves them all. The index by content item served
-- only the projection's own deletes when an item changes or is retired, and cost a second
-- index write for every membership row: a new catalog writes one row per item it admits, a
-- new item one row per catalog that admits it. Those deletes now probe the primary key once
-- per catalog instead.
DROP INDEX catalog_membership_content;
