-- 0002_catalog: tenants' API keys, bots and their versions, the active version
-- pointer, conversations, transcripts, quarantined messages and the audit log.
-- Read and written through src/store/catalog.hpp. Names stay unqualified: the
-- runner sets search_path to the target schema.

CREATE TABLE api_keys (
  id         bigserial   PRIMARY KEY,
  tenant_id  text        NOT NULL REFERENCES tenants (id),
  name       text        NOT NULL,
  key_hash   text        NOT NULL UNIQUE,  -- hex SHA-256 of the plaintext key
  prefix     text        NOT NULL,         -- first 8 characters, for display and lookup
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE INDEX api_keys_by_prefix ON api_keys (tenant_id, prefix);

CREATE TABLE bots (
  tenant_id  text        NOT NULL REFERENCES tenants (id),
  bot_id     text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, bot_id)
);

-- Immutable once inserted (see the trigger below): a version is the exact
-- source and compiled program a conversation ran.
CREATE TABLE bot_versions (
  tenant_id   text        NOT NULL,
  bot_id      text        NOT NULL,
  version     integer     NOT NULL CHECK (version > 0),
  program_id  text        NOT NULL,
  source      text        NOT NULL,
  program     bytea       NOT NULL,
  deployed_by text        NOT NULL,
  deployed_at timestamptz NOT NULL DEFAULT now(),
  warnings    jsonb       NOT NULL DEFAULT '[]',
  PRIMARY KEY (tenant_id, bot_id, version),
  FOREIGN KEY (tenant_id, bot_id) REFERENCES bots (tenant_id, bot_id)
);

CREATE FUNCTION bot_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'bot versions are immutable: deploy a new version instead';
END;
$$;
CREATE TRIGGER bot_versions_immutable BEFORE UPDATE OR DELETE ON bot_versions
  FOR EACH ROW EXECUTE FUNCTION bot_versions_immutable();

-- Every activate and rollback takes the next value, under a transaction-level
-- advisory lock, so values become visible in increasing order and a node that
-- polls "change_seq > N" never misses a change.
CREATE SEQUENCE bot_change_seq;

CREATE TABLE bot_active (
  tenant_id        text        NOT NULL,
  bot_id           text        NOT NULL,
  version          integer     NOT NULL,
  previous_version integer,
  changed_at       timestamptz NOT NULL DEFAULT now(),
  change_seq       bigint      NOT NULL,
  PRIMARY KEY (tenant_id, bot_id),
  FOREIGN KEY (tenant_id, bot_id, version) REFERENCES bot_versions (tenant_id, bot_id, version),
  FOREIGN KEY (tenant_id, bot_id, previous_version)
    REFERENCES bot_versions (tenant_id, bot_id, version)
);
CREATE UNIQUE INDEX bot_active_by_change_seq ON bot_active (change_seq);

CREATE TABLE conversations (
  tenant_id    text        NOT NULL REFERENCES tenants (id),
  session_id   text        NOT NULL,
  bot_id       text        NOT NULL,
  version      integer     NOT NULL,
  channel      text        NOT NULL,
  external_key text        NOT NULL DEFAULT '',
  started_at   timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz,
  end_reason   text,
  PRIMARY KEY (tenant_id, session_id)
);
CREATE INDEX conversations_by_bot ON conversations (tenant_id, bot_id, started_at);

-- Written in batches by the transcript writer; the unique key makes a repeated
-- batch (a retry after an unknown outcome) insert nothing.
CREATE TABLE transcript_messages (
  tenant_id  text        NOT NULL,
  session_id text        NOT NULL,
  sequence   bigint      NOT NULL,
  direction  text        NOT NULL CHECK (direction IN ('in', 'out')),
  idx        integer     NOT NULL DEFAULT 0,
  text       text        NOT NULL DEFAULT '',
  payload    jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (session_id, sequence, direction, idx)
);
CREATE INDEX transcript_messages_by_tenant ON transcript_messages (tenant_id, session_id);

CREATE TABLE quarantined_messages (
  id         bigserial   PRIMARY KEY,
  tenant_id  text        NOT NULL,
  session_id text        NOT NULL,
  message_id text        NOT NULL,
  payload    text        NOT NULL,
  error      text        NOT NULL,
  attempts   integer     NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantined_messages_by_session ON quarantined_messages (tenant_id, session_id);

CREATE TABLE audit_log (
  id        bigserial   PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  actor     text        NOT NULL,
  action    text        NOT NULL,
  tenant_id text,
  target    text        NOT NULL DEFAULT '',
  details   jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
