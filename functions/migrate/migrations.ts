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
  {
    version: '0004_members_and_geometry',
    sql: `
-- An archive (or a GeoPackage with several layers) is one object but several loads: one per
-- member. The object's own load is 'expanded'; each member's load points to it.
ALTER TABLE etl.loads ADD COLUMN parent_id bigint REFERENCES etl.loads (id);
ALTER TABLE etl.loads DROP CONSTRAINT loads_status_check;
ALTER TABLE etl.loads ADD CONSTRAINT loads_status_check
  CHECK (status IN ('received', 'staged', 'loaded', 'failed', 'skipped', 'expanded'));
CREATE INDEX loads_parent_idx ON etl.loads (parent_id) WHERE parent_id IS NOT NULL;

-- etl.try_geometry(text, encoding): the geometry, or NULL when PostGIS cannot read it. Used only
-- to find the rows to quarantine once a set-based cast has failed; good files never pay for it.
CREATE FUNCTION etl.try_geometry(value text, encoding text) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
BEGIN
  IF value IS NULL OR btrim(value) = '' THEN RETURN NULL; END IF;
  IF encoding = 'geojson' THEN RETURN ST_GeomFromGeoJSON(value); END IF;
  RETURN value::geometry;
EXCEPTION WHEN OTHERS THEN
  RETURN NULL;
END
$body$;

-- Small steps of the geometry cast, as functions so that the parsed value is computed once.
CREATE FUNCTION etl.repaired(g geometry) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN g IS NULL OR ST_IsValid(g) THEN g ELSE ST_MakeValid(g) END $$;
CREATE FUNCTION etl.promoted(g geometry) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE GeometryType(g) WHEN 'POLYGON' THEN ST_Multi(g) WHEN 'LINESTRING' THEN ST_Multi(g) ELSE g END $$;
CREATE FUNCTION etl.fail_geometry(message text) RETURNS geometry
LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = message; END $$;
CREATE FUNCTION etl.with_srid(g geometry, srid integer) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN ST_SRID(g) = 0 THEN ST_SetSRID(g, srid) ELSE g END $$;

-- Before PostgreSQL 16 there is no pg_input_is_valid: answer the common numeric cases with a
-- pattern (no exception block, no dynamic SQL), and only the rest the slow way.
DO $do$
BEGIN
  IF current_setting('server_version_num')::int < 160000 THEN
    ALTER FUNCTION etl.is_valid_as(text, text) RENAME TO is_valid_as_slow;
    -- YYYY-MM-DD names a real day (no exception needed to find out)
    EXECUTE $f$
      CREATE FUNCTION etl.iso_date_ok(v text) RETURNS boolean
      LANGUAGE sql IMMUTABLE AS $sql$
        SELECT substr(v, 1, 4)::int > 0 AND substr(v, 6, 2)::int BETWEEN 1 AND 12
           AND substr(v, 9, 2)::int BETWEEN 1
               AND extract(day FROM make_date(substr(v, 1, 4)::int, substr(v, 6, 2)::int, 1) + interval '1 month - 1 day')::int
      $sql$
    $f$;
    EXECUTE $f$
      CREATE FUNCTION etl.is_valid_as(value text, type_name text) RETURNS boolean
      LANGUAGE sql STABLE AS $sql$
        SELECT CASE
          WHEN type_name = 'integer' AND value ~ '^\\s*[+-]?[0-9]{1,9}\\s*$' THEN true
          WHEN type_name = 'bigint' AND value ~ '^\\s*[+-]?[0-9]{1,18}\\s*$' THEN true
          WHEN type_name IN ('numeric', 'double precision')
               AND value ~ '^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,2})?\\s*$' THEN true
          WHEN type_name IN ('integer', 'bigint', 'numeric', 'double precision') AND value !~ '[0-9]' AND value !~* 'inf|nan' THEN false
          WHEN type_name = 'date' AND value ~ '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\\s*$' THEN etl.iso_date_ok(btrim(value))
          WHEN type_name IN ('timestamp', 'timestamptz')
               AND value ~ '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?\\s*$'
               THEN etl.iso_date_ok(left(btrim(value), 10))
          WHEN type_name = 'boolean' AND lower(btrim(value)) IN ('t', 'true', 'f', 'false', 'y', 'yes', 'n', 'no', 'on', 'off', '1', '0') THEN true
          ELSE etl.is_valid_as_slow(value, type_name)
        END
      $sql$
    $f$;
  END IF;
END
$do$;
`,
  },
  {
    version: '0005_schema_drift',
    sql: `
-- Schema drift: the columns a load added, lost, renamed or re-typed relative to the clean table
-- (or, for declared columns, to the previous load's header), each with the dataset's policy and
-- what was done: [{change, column, from, to, policy, action, type?, rows?}, …]. NULL: no change.
ALTER TABLE etl.loads ADD COLUMN schema_changes jsonb;
CREATE INDEX loads_schema_changes_idx ON etl.loads (project, dataset, id DESC) WHERE schema_changes IS NOT NULL;
`,
  },
  {
    version: '0006_replay',
    sql: `
-- civic-etl replay stages an object version again, as a new load. A delivery keeps
-- replay_number 0, so the ledger still holds at most one delivery per object version (the
-- stage step's exactly-once claim); the n-th replay of a version is replay_number n, and
-- replay_of names the delivery it replays (NULL if that version was never delivered).
ALTER TABLE etl.loads ADD COLUMN replay_number integer NOT NULL DEFAULT 0 CHECK (replay_number >= 0);
ALTER TABLE etl.loads ADD COLUMN replay_of bigint REFERENCES etl.loads (id);
ALTER TABLE etl.loads DROP CONSTRAINT loads_object_once;
ALTER TABLE etl.loads ADD CONSTRAINT loads_object_once UNIQUE (bucket, object_key, object_version, replay_number);
CREATE INDEX loads_replay_of_idx ON etl.loads (replay_of) WHERE replay_of IS NOT NULL;
`,
  },
  {
    version: '0007_load_parts',
    sql: `
-- A file too big for one invocation is staged in parts (functions/stage/parts.ts): byte ranges
-- that end at record boundaries, each staged once, the load complete when all are.
CREATE TABLE etl.load_parts (
  load_id    bigint NOT NULL REFERENCES etl.loads (id) ON DELETE CASCADE,
  part       integer NOT NULL,
  start_byte bigint NOT NULL,
  end_byte   bigint NOT NULL,               -- exclusive
  first_line bigint NOT NULL,               -- physical line of the part's first record
  status     text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'staged')),
  rows       bigint,
  staged_at  timestamptz,
  PRIMARY KEY (load_id, part)
);
`,
  },
  {
    version: '0008_value_maps',
    sql: `
-- Value maps (functions/clean/value-maps.ts): the source values of mapped columns that the map
-- lacked in this load, per column: [{column, map, policy, rows, distinct, values: [{value, rows}]}]
-- (values: the most frequent ones). NULL: every value was mapped.
ALTER TABLE etl.loads ADD COLUMN unmapped jsonb;
`,
  },
  {
    version: '0009_quality_report',
    sql: `
-- Quality report of each finished load (functions/clean/report.ts): counts read, loaded and
-- quarantined, per rule with a few example lines, unmapped values, schema changes, and for a
-- failed load the error with its line and column. Shown by civic-etl status <dataset>; a
-- supplier's copy is written to reports/<supplier>/<dataset>/ beside its upload.
ALTER TABLE etl.loads ADD COLUMN report jsonb;
`,
  },
  {
    version: '0010_exports',
    sql: `
-- Exports of views to curated/<project>/<view>/<run>/ (functions/combine/exports.ts): one row per
-- export of a view, after the clean of load_id (NULL: asked for by hand). A failed export never
-- fails its load: it is recorded here with its error, and the next clean exports again.
CREATE TABLE etl.exports (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project      text NOT NULL,
  view         text NOT NULL,
  load_id      bigint REFERENCES etl.loads (id) ON DELETE CASCADE,
  run          text NOT NULL,
  formats      text[] NOT NULL,
  status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'exported', 'failed')),
  attempts     integer NOT NULL DEFAULT 0,
  row_count    bigint,
  manifest_key text,
  error        text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);
CREATE INDEX exports_view_idx ON etl.exports (project, view, id DESC);
CREATE INDEX exports_load_idx ON etl.exports (load_id);
`,
  },
  {
    version: '0011_combine',
    sql: `
-- etl.normalised(text): names compared ignoring case, accents, punctuation and spaces
-- ("Logan  Square", "LOGAN SQUARE", "logan-square"), for attribute joins of combines.
CREATE FUNCTION etl.normalised(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regexp_replace(lower(translate(value,
    'ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿ',
    'AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyy')), '[^a-z0-9]+', '', 'g')
$$;
`,
  },
  {
    version: '0012_connector_contract',
    sql: `
-- The connector contract (contract/objects.ts): what each object replaces and holds, the run and
-- resource it belongs to, and its place in its dataset's order — recorded by the stage step from
-- the object's declaration (fetched objects) or S3's version order (uploads). The clean step
-- applies one rule per (holds, replaces), and "newer" is (order_at, order_seq), never the ledger id.
ALTER TABLE etl.loads ADD COLUMN replaces text CHECK (replaces IN ('dataset', 'run', 'resource', 'nothing'));
ALTER TABLE etl.loads ADD COLUMN holds text CHECK (holds IN ('rows', 'deletions', 'keyChanges'));
ALTER TABLE etl.loads ADD COLUMN run text;
ALTER TABLE etl.loads ADD COLUMN resource text;
ALTER TABLE etl.loads ADD COLUMN identified_by jsonb;
ALTER TABLE etl.loads ADD COLUMN order_at timestamptz;
ALTER TABLE etl.loads ADD COLUMN order_seq bigint;
-- a child table's load (exploded JSON arrays): the load of the table its rows hang from
ALTER TABLE etl.loads ADD COLUMN owner_id bigint REFERENCES etl.loads (id);
-- Finished loads recorded before the contract: in the order they arrived; a fetched object's run
-- (raw/<dataset>/<run>/…) and a catalogue resource's folder (raw/<dataset>/<run>/<resource>/<file>),
-- so that newer runs and resources replace their rows. (Loads still in flight keep no contract:
-- the stage step records an upload's when its event comes again; the clean step refuses to guess,
-- and says how to load them again: README, Upgrading.)
UPDATE etl.loads SET replaces = 'dataset', holds = 'rows', order_at = received_at, order_seq = id,
       run = CASE WHEN object_key LIKE 'raw/%' THEN split_part(object_key, '/', 3) END,
       resource = CASE WHEN split_part(object_key, '!', 1) LIKE 'raw/%/%/%/%' THEN split_part(object_key, '/', 4) END
 WHERE order_at IS NULL AND status IN ('loaded', 'skipped', 'failed', 'expanded');
UPDATE etl.loads SET replaces = 'resource' WHERE resource IS NOT NULL AND replaces = 'dataset';
-- an archive's members, a file's tables: their object's place
UPDATE etl.loads m SET order_at = p.order_at, order_seq = p.order_seq FROM etl.loads p WHERE m.parent_id = p.id AND p.order_at IS NOT NULL;
CREATE INDEX loads_order_idx ON etl.loads (project, dataset, order_at, order_seq) WHERE status = 'loaded';
-- the sets of columns that name the records in a dataset's tombstone table (<dataset>_deleted)
CREATE TABLE etl.tombstone_columns (
  project text NOT NULL,
  dataset text NOT NULL,
  columns text[] NOT NULL,
  PRIMARY KEY (project, dataset, columns)
);
CREATE INDEX loads_owner_idx ON etl.loads (owner_id) WHERE owner_id IS NOT NULL;
`,
  },
  {
    version: '0013_repair_keeps_dimension',
    sql: `
-- ST_MakeValid keeps every dimension it finds: a polygon with a spike or a sliver comes back as a
-- GEOMETRYCOLLECTION of polygons and lines or points, and a polygon layer is no longer one. A
-- repaired shape keeps the dimension it had: the polygons of a repaired polygon (a MultiPolygon
-- when it was one), the lines of a repaired line; what collapsed to a lower dimension is dropped
-- (the load counts and reports it: clean/geometry.ts repairSummary). A single Polygon (or
-- LineString) whose repair leaves one part stays a single one, so a Polygon layer keeps its
-- geometry(Polygon) column; one that splits in several parts becomes a Multi. A shape with nothing
-- left of its dimension becomes NULL. Collections and points are repaired as before.
CREATE OR REPLACE FUNCTION etl.kept_dimension(r geometry, g geometry) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN GeometryType(g) NOT IN ('POLYGON', 'MULTIPOLYGON', 'LINESTRING', 'MULTILINESTRING') THEN r
    WHEN GeometryType(g) LIKE 'MULTI%' THEN x
    WHEN GeometryType(x) LIKE 'MULTI%' AND ST_NumGeometries(x) = 1 THEN ST_GeometryN(x, 1)
    ELSE x
  END
  FROM (SELECT CASE
    WHEN ST_Dimension(r) = ST_Dimension(g) AND GeometryType(r) <> 'GEOMETRYCOLLECTION' THEN r
    WHEN GeometryType(g) LIKE 'MULTI%' THEN ST_Multi(ST_CollectionExtract(r, ST_Dimension(g) + 1))
    ELSE ST_CollectionExtract(r, ST_Dimension(g) + 1)
  END AS x) kept
$$;
-- etl.try_geometry catches PostGIS's parse errors in an exception block, which is a
-- subtransaction: in a parallel plan it fails ("cannot start subtransactions during a parallel
-- operation") as soon as a scan is large enough to be split among workers.
ALTER FUNCTION etl.try_geometry(text, text) PARALLEL UNSAFE;
-- A repair says so (a notice the load listens for, then counts and reports what changed: a pass
-- over the staged shapes that valid layers never pay for).
CREATE OR REPLACE FUNCTION etl.repaired(g geometry) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
DECLARE
  r geometry;
BEGIN
  IF g IS NULL OR ST_IsValid(g) THEN RETURN g; END IF;
  RAISE NOTICE 'civic-etl: geometry repaired';
  r := etl.kept_dimension(ST_MakeValid(g), g);
  RETURN CASE WHEN ST_IsEmpty(r) THEN NULL ELSE r END;
END
$body$;
`,
  },
  {
    version: '0014_catalog_portal',
    sql: `
-- A catalogue resource's portal metadata (functions/get/fetch-catalog.ts, contract/objects.ts
-- PortalMetadata: dataset title, slug, organisation, description, licence, tags; resource title,
-- format, URL), kept with what the stage step profiled, and searchable.
ALTER TABLE etl.catalog ADD COLUMN portal jsonb;
-- the full-text search covers the portal's words too (titles, organisation, description, tags)
DROP INDEX etl.catalog_search_idx;
ALTER TABLE etl.catalog DROP COLUMN search;
ALTER TABLE etl.catalog ADD COLUMN search tsvector GENERATED ALWAYS AS (
  to_tsvector('simple', coalesce(title, '') || ' ' || replace(dataset, '_', ' ') || ' ' || coalesce(column_names, ''))
  || to_tsvector('simple', coalesce(portal - 'url', '{}'::jsonb))
) STORED;
CREATE INDEX catalog_search_idx ON etl.catalog USING gin (search);
CREATE INDEX catalog_portal_idx ON etl.catalog USING gin (portal jsonb_path_ops);
-- One row per staged catalogue resource, the portal's fields as columns:
--   SELECT * FROM etl.catalog_resources WHERE organization = 'Ville de Paris';
--   SELECT * FROM etl.catalog_resources WHERE 'parcs' = ANY (tags);
--   SELECT * FROM etl.catalog_resources WHERE search @@ websearch_to_tsquery('simple', 'espaces verts');
CREATE VIEW etl.catalog_resources AS
SELECT c.load_id, c.project, c.dataset, c.object_key, c.row_count, c.column_names, c.error, c.profiled_at,
       c.portal ->> 'datasetSlug' AS portal_dataset,
       c.portal ->> 'datasetTitle' AS dataset_title,
       c.portal ->> 'organization' AS organization,
       c.portal ->> 'organizationId' AS organization_id,
       c.portal ->> 'description' AS description,
       c.portal ->> 'license' AS license,
       ARRAY(SELECT jsonb_array_elements_text(coalesce(c.portal -> 'tags', '[]'::jsonb))) AS tags,
       c.portal ->> 'resourceId' AS resource_id,
       c.portal ->> 'resourceTitle' AS resource_title,
       c.portal ->> 'format' AS format,
       c.portal ->> 'url' AS url,
       c.search
FROM etl.catalog c
WHERE c.portal IS NOT NULL;
`,
  },
  {
    version: '0015_value_map_match',
    sql: `
-- A value as a view matches it against a value map kept as a table (<project>._value_maps,
-- functions/combine/value-map-tables.ts), the way the clean step matches it (functions/clean/value-maps.ts):
--   etl.map_descriptor(value, descriptor): the lower-cased name of a descriptor URI's descriptor
--     (uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence → attendanceeventcategorydescriptor),
--     else that of the descriptor given for bare codes (a name or a namespace), else '' (a plain map's entries);
--   etl.map_code(value): the URI's code value, or the bare value, trimmed (spaces, tabs, line breaks,
--     no-break spaces) and lower-cased by Unicode's rules.
--   JOIN <project>._value_maps m ON m.map = 'amt' AND m.descriptor_key = etl.map_descriptor(e.category, 'AttendanceEventCategoryDescriptor')
--                              AND m.code_key = etl.map_code(e.category) AND m.constant = 'AttendanceEvent.Absence'
CREATE FUNCTION etl.map_code(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT lower(btrim(coalesce((regexp_match(btrim(value, E' \\t\\r\\n' || chr(160)), '^[A-Za-z][A-Za-z0-9+.-]*://[^#]*/([^/#]+)#(.*)$'))[2], value),
                     E' \\t\\r\\n' || chr(160)) COLLATE "und-x-icu")
$$;
CREATE FUNCTION etl.map_descriptor(value text, descriptor text DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT lower(coalesce((regexp_match(btrim(value, E' \\t\\r\\n' || chr(160)), '^[A-Za-z][A-Za-z0-9+.-]*://[^#]*/([^/#]+)#(.*)$'))[1],
                        regexp_replace(regexp_replace(btrim(descriptor), '#.*$', ''), '^.*/', ''), '') COLLATE "und-x-icu")
$$;
`,
  },
  {
    version: '0016_dlq_redrives',
    sql: `
-- Operator actions on the dead-letter queues (civic-etl dlq redrive): one row per redrive, so that
-- the ledger's history says when messages went back to their queue, how many and by whose hand.
CREATE TABLE etl.redrives (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project      text NOT NULL,
  queue        text NOT NULL CHECK (queue IN ('stage', 'clean', 'fetch')),
  dlq          text NOT NULL,                -- the dead-letter queue's URL or ARN
  target       text NOT NULL,                -- the queue (or fetch function) the messages went back to
  method       text NOT NULL CHECK (method IN ('moved', 'move-task', 'invoked')),
  messages     integer NOT NULL,             -- moved (or, for a move task, to be moved)
  task_handle  text,                         -- SQS's handle of a start-message-move-task
  operator     text,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL DEFAULT now(),
  error        text                          -- why the redrive stopped early, if it did
);
CREATE INDEX redrives_project_idx ON etl.redrives (project, started_at DESC);
`,
  },
  {
    version: '0017_load_failures',
    sql: `
-- One error model (functions/common/errors.ts): each failed attempt of a step on a load records
-- its kind, the step, the error and when; attempts is the highest attempt number seen (the queue's receive
-- count of the step that failed). error_kind:
--   permanent  bad input: the load is failed, the message acknowledged
--   retryable  infrastructure: the message is retried (attempt n of maxReceiveCount)
--   exhausted  retryable, and its last attempt failed: the message goes to the DLQ (redrive it)
--   blocked    the definition must change; the load waits (staged) and is retried
ALTER TABLE etl.loads ADD COLUMN error_kind text CHECK (error_kind IN ('permanent', 'retryable', 'exhausted', 'blocked'));
ALTER TABLE etl.loads ADD COLUMN last_attempt_at timestamptz;
ALTER TABLE etl.loads ADD COLUMN error_step text;
-- a failure already recorded is permanent
UPDATE etl.loads SET error_kind = 'permanent' WHERE status = 'failed';
CREATE INDEX loads_waiting_idx ON etl.loads (project, last_attempt_at) WHERE error_kind IN ('retryable', 'exhausted', 'blocked');
`,
  },
  {
    version: '0018_rejected_messages',
    sql: `
-- Queue messages a step could not read (not JSON, not an S3 event notification, not a clean
-- message): bad input, acknowledged without retries. They name no object version, so they have
-- no row in etl.loads; each is kept here, body and reason, for civic-etl status and dlq list.
-- A repeat delivery of the same message counts in receives.
CREATE TABLE etl.rejected_messages (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project      text NOT NULL,
  step         text NOT NULL CHECK (step IN ('stage', 'clean')),
  queue        text,                          -- the queue's ARN (the event's eventSourceARN)
  message_id   text NOT NULL,
  body         text NOT NULL,
  reason       text NOT NULL,
  receives     integer NOT NULL DEFAULT 1,
  received_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT rejected_messages_once UNIQUE (project, step, message_id)
);
CREATE INDEX rejected_messages_project_idx ON etl.rejected_messages (project, received_at DESC);
`,
  },
];

/** SQL that makes a project's schemas exist: clean tables and views in `<project>`, staging in `<project>_staging`. */
export function projectSchemaSql(project: string): string {
  if (!/^[a-z][a-z0-9_]{0,54}$/.test(project)) throw new Error(`invalid project name "${project}"`);
  // <project>_analyst: a role for analysts and dashboards, granted SELECT on the views only
  // (functions/combine/views.ts); grant it to a login role to use it. Views read the tables with
  // their owner's rights, so analysts never need the tables, the quarantine or the staging schema.
  const role = analystRole(project);
  return `CREATE SCHEMA IF NOT EXISTS "${project}"; CREATE SCHEMA IF NOT EXISTS "${project}_staging";
    DO $do$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE "${role}" NOLOGIN; END IF;
    END $do$;
    GRANT USAGE ON SCHEMA "${project}" TO "${role}";`;
}

/** The read-only role of a project's analysts. */
export function analystRole(project: string): string {
  return `${project}_analyst`;
}
