/**
 * Versioned schema migrations, applied in order, each once, each in its own transaction.
 * Never edit a migration that has shipped: add a new one. The checksum recorded with each
 * version makes an edited migration fail loudly instead of being silently skipped.
 */
export interface Migration {
  readonly version: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: '0001_postgis_and_ledger',
    sql: `
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS etl;

-- One row per object version seen by the stage step: the ledger.
CREATE TABLE etl.loads (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project          text NOT NULL,
  dataset          text,                      -- NULL when the key routes to no dataset
  bucket           text NOT NULL,
  object_key       text NOT NULL,
  object_version   text NOT NULL,             -- S3 version id, or 'etag:<etag>' when unversioned
  etag             text,
  size_bytes       bigint,
  status           text NOT NULL DEFAULT 'received'
                   CHECK (status IN ('received', 'staged', 'loaded', 'failed', 'skipped')),
  rows_read        bigint,
  rows_loaded      bigint,
  rows_quarantined bigint,
  header           jsonb,                     -- the file's header as read
  detected         jsonb,                     -- delimiter, encoding, line ending…
  staging_table    text,
  error            text,
  error_line       bigint,
  error_column     text,
  attempts         integer NOT NULL DEFAULT 1,
  received_at      timestamptz NOT NULL DEFAULT now(),
  staged_at        timestamptz,
  finished_at      timestamptz,
  stage_ms         integer,
  clean_ms         integer,
  CONSTRAINT loads_object_once UNIQUE (bucket, object_key, object_version)
);
CREATE INDEX loads_dataset_idx ON etl.loads (project, dataset, received_at DESC);

-- etl.is_valid_as(value, type): can this text be cast to that type? Set-based casts use it
-- to send failing values to quarantine instead of failing the whole statement.
DO $do$
BEGIN
  IF current_setting('server_version_num')::int >= 160000 THEN
    EXECUTE $f$
      CREATE FUNCTION etl.is_valid_as(value text, type_name text) RETURNS boolean
      LANGUAGE sql STABLE PARALLEL SAFE AS 'SELECT pg_input_is_valid(value, type_name)'
    $f$;
  ELSE
    EXECUTE $f$
      CREATE FUNCTION etl.is_valid_as(value text, type_name text) RETURNS boolean
      LANGUAGE plpgsql STABLE AS $body$
      BEGIN
        EXECUTE format('SELECT %L::%s', value, type_name);
        RETURN true;
      EXCEPTION WHEN data_exception THEN
        RETURN false;
      END
      $body$
    $f$;
  END IF;
END
$do$;
`,
  },
  {
    version: '0002_view_registry',
    sql: `
-- The views the combine step created, with a hash of their SQL: an unchanged view is left
-- alone, so a clean never needs an exclusive lock on a view that dashboards are reading.
CREATE TABLE etl.views (
  project    text NOT NULL,
  name       text NOT NULL,
  sql_sha256 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project, name)
);
`,
  },
  {
    version: '0003_catalog',
    sql: `
-- The catalog: what the stage step detected and profiled in each object version, searchable.
CREATE TABLE etl.catalog (
  load_id        bigint PRIMARY KEY REFERENCES etl.loads (id) ON DELETE CASCADE,
  project        text NOT NULL,
  dataset        text NOT NULL,
  title          text,
  object_key     text NOT NULL,
  object_version text NOT NULL,
  structure      jsonb,        -- encoding, delimiter, quote, header row, header, decimal comma…
  columns        jsonb,        -- [{name, type, format, score, profile}, …]
  row_count      bigint,       -- records staged (exact)
  profiled_rows  bigint,       -- records profiled (a sample when smaller than row_count)
  duplicate_rows bigint,       -- among the profiled records
  ragged_lines   bigint,
  column_names   text,
  error          text,         -- why the object could not be profiled
  profiled_at    timestamptz NOT NULL DEFAULT now(),
  search         tsvector GENERATED ALWAYS AS (
                   to_tsvector('simple', coalesce(title, '') || ' ' || replace(dataset, '_', ' ') || ' ' || coalesce(column_names, ''))
                 ) STORED
);
CREATE INDEX catalog_dataset_idx ON etl.catalog (project, dataset, profiled_at DESC);
CREATE INDEX catalog_columns_idx ON etl.catalog USING gin (columns jsonb_path_ops);
CREATE INDEX catalog_search_idx ON etl.catalog USING gin (search);
`,
  },
];

/** SQL that makes a project's schemas exist: clean tables and views in `<project>`, staging in `<project>_staging`. */
export function projectSchemaSql(project: string): string {
  if (!/^[a-z][a-z0-9_]{0,54}$/.test(project)) throw new Error(`invalid project name "${project}"`);
  return `CREATE SCHEMA IF NOT EXISTS "${project}"; CREATE SCHEMA IF NOT EXISTS "${project}_staging";`;
}
