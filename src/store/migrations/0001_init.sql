-- 0001_init: the first schema of Parley.
--
-- Migrations run in order at start-up (src/store/migrations.cpp), each in its
-- own transaction with search_path set to the target schema, so names here are
-- unqualified. The runner itself creates the bookkeeping table before it can
-- look for this file's row; it is repeated here (IF NOT EXISTS, same
-- definition) so the schema's full shape reads from the migrations alone.
-- Never edit a migration once it is merged: add the next number instead (an
-- applied migration whose text changed stops start-up).

CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
  id         text        PRIMARY KEY,
  name       text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
