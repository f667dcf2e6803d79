-- Issue 12: each tenant has a home region, set when it is created: the region whose
-- Redis and Postgres hold its conversations, transcripts and secrets, and nowhere
-- else. A node of another region forwards the tenant's requests there
-- (cluster/region). NULL for tenants created before regions existed: they belong to
-- the region of the database that holds them, as every row here does.
ALTER TABLE tenants ADD COLUMN home_region text;
