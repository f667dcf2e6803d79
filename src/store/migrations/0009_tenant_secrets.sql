-- Issue 13: each tenant's secrets (channel credentials, the values its bot actions
-- use as {{secret.NAME}}), sealed with AES-256-GCM under the node's master key
-- (src/secrets): the value never lies here in the clear. key_id names the master key
-- a row is sealed under (the first 8 bytes of SHA-256 of the key, hex), so a rotation
-- knows what to re-seal and a node can tell at start which keys it needs. The tenant
-- id and name are the cipher's associated data: a ciphertext copied to another row
-- does not open.
CREATE TABLE tenant_secrets (
  tenant_id  text        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name       text        NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
  key_id     text        NOT NULL,
  nonce      bytea       NOT NULL,
  ciphertext bytea       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);
CREATE INDEX tenant_secrets_key_id ON tenant_secrets (key_id);
