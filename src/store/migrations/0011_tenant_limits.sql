-- Issue 13: each tenant's limits on the attachments its users send (see
-- src/channels/text/attachments.hpp). No row is the defaults. schemes and
-- content_types are space-separated lists (a scheme or a content type pattern never
-- holds a space); the admin API validates each entry before it lands here.
CREATE TABLE tenant_limits (
  tenant_id       text        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  max_attachments integer     NOT NULL CHECK (max_attachments BETWEEN 0 AND 100),
  max_url_bytes   integer     NOT NULL CHECK (max_url_bytes BETWEEN 1 AND 65536),
  schemes         text        NOT NULL,
  content_types   text        NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
