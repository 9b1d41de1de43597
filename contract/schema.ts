/**
 * The schemas of a pipeline definition (zod): what `cdk synth`, `civic-etl validate` and the local
 * runner check a definition against, so that a bad definition fails each with the same message
 * (contract/validate.ts applies them). Apart from contract/definition.ts, which holds the types
 * they infer and the constants and helpers the runtime uses: building these schemas takes longer
 * than the rest of a function's definition code (about 13 ms of every cold start, `npm run bench
 * -- coldstart`), and a Lambda whose bundled definition `cdk synth` validated does not build them.
 */
import * as z from 'zod';
import { COLUMN_TYPES, type ColumnType } from './definition.ts';
import { mapConflicts } from './value-maps.ts';
import { datasetRuleProblems, referenceProblems } from './rules.ts';

/** A PostgreSQL identifier we create ourselves: lower-case, unquoted-safe, at most 63 bytes. */
const identifier = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lower-case letters, digits and _, starting with a letter (max 63)');

/** Names that also appear in S3 keys and AWS resource names: no underscores trouble there. */
const slug = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'must be lower-case letters, digits, - and _, starting with a letter');

export const columnSchema = z.strictObject({
  /** Name of the column in the clean table. */
  name: identifier,
  /** Header of the source column; defaults to `name`. Matched ignoring case, spaces and punctuation. */
  source: z.string().min(1).optional(),
  type: z.enum(Object.keys(COLUMN_TYPES) as [ColumnType, ...ColumnType[]]).default('text'),
  /** A row with an empty value here goes to quarantine. */
  required: z.boolean().default(false),
  description: z.string().optional(),
  /** A value map (`valueMaps[].name`): the column holds the map's constant for each source value. */
  map: identifier.optional(),
  /**
   * With `map`, a non-empty value the map lacks is kept as it is (`keep`, the default), becomes
   * NULL (`null`), or sends its row to quarantine with the rule `map` (`quarantine`). Whatever
   * the choice, the load's unmapped values are counted in `etl.loads.unmapped`.
   */
  unmapped: z.enum(['keep', 'null', 'quarantine']).optional(),
  /**
   * With a descriptor map (Ed-Fi layout), the descriptor a bare code value in this column belongs
   * to (`AddressTypeDescriptor`). Default: the longest descriptor of the map that ends the source
   * column's name (`entryGradeLevelDescriptor` → `GradeLevelDescriptor`, an `…Id` suffix dropped).
   * Descriptor URIs name their own descriptor.
   */
  descriptor: z.string().min(1).optional(),
  // Cleaning rules (contract/rules.ts checks them, functions/clean/rules.ts compiles them to SQL).
  // A value is normalised (trim → null tokens → case), cast (with `format`), then checked
  // (pattern, values, min/max, references, unique); a row whose value fails goes to quarantine.
  /** Whitespace: `true` trims both ends (also no-break spaces), `collapse` also turns inner runs into one space. Default: the dataset's `clean.trim`; numbers and dates are always trimmed. */
  trim: z.union([z.boolean(), z.literal('collapse')]).optional(),
  /** Values that mean "empty" (compared trimmed, ignoring case); `true`: `""`, `NA`, `N/A`, `-`, `NULL`; `false`/`[]`: none. Default: the dataset's `clean.nullTokens`. */
  nullTokens: z.union([z.boolean(), z.array(z.string())]).optional(),
  /** Text case, after trimming: `lower`, `upper` or `title` (Unicode-aware). */
  case: z.enum(['lower', 'upper', 'title']).optional(),
  /**
   * How the file writes the values: for a date or timestamp column a pattern (`dd-mm-yyyy`,
   * `mm/dd/yyyy`, `yyyymmdd`, `dd.mm.yyyy hh:mi:ss`; letters yyyy mm dd hh mi ss ff, `m`/`d`/`h`
   * for one or two digits); for a number column its separators (`{ decimal: ',', thousands: '.' }`
   * reads `1.234,5`). A value not in that form is quarantined (rule `type`) — never guessed.
   */
  format: z.union([z.string().min(1), z.strictObject({ decimal: z.enum(['.', ',']).optional(), thousands: z.enum(['.', ',', ' ', "'", '']).optional() })]).optional(),
  /** Date or timestamp column: a plain number is also read as an Excel serial date (1 = 1900-01-01; 45292 = 2024-01-01). */
  excelDates: z.boolean().optional(),
  /** Smallest and largest accepted value (rule `range`): numbers, or `yyyy-mm-dd[ hh:mi[:ss]]` for dates and timestamps. */
  min: z.union([z.number(), z.string()]).optional(),
  max: z.union([z.number(), z.string()]).optional(),
  /** A regular expression the whole (normalised) value must match (rule `pattern`), e.g. `[0-9]{4} ?[A-Z]{2}`. */
  pattern: z.string().min(1).optional(),
  /** The accepted values (rule `enum`), compared after normalisation. */
  values: z
    .array(z.union([z.string(), z.number()]))
    .min(1)
    .optional(),
  /** No two rows of a load share a value (rule `unique`; the first line keeps it). Append mode also checks the table's rows. */
  unique: z.boolean().optional(),
  /** A foreign key: each value must be in that column of the dataset's clean table (rule `reference`). */
  references: z.strictObject({ dataset: identifier, column: identifier }).optional(),
});

/**
 * An http(s) URL a pipeline declares. A user name or password written in it (`https://bob:pw@host/`)
 * is refused: the definition is not a secret (it is in git, in CloudFormation, in logs), so
 * credentials go in the Secrets Manager secret `secretField` names.
 */
function httpUrl(secretField: string) {
  return z.url({ protocol: /^https?$/ }).refine(
    (value) => {
      try {
        const u = new URL(value);
        return u.username === '' && u.password === '';
      } catch {
        return true; // not a URL: z.url says so
      }
    },
    { message: `a user name or password in the URL is refused: put the credentials in a secret (${secretField}), never in the definition` },
  );
}

/** A file a supplier uploads to `incoming/<supplier>/<dataset>/…`. */
export const uploadSourceSchema = z.strictObject({
  type: z.literal('upload'),
  supplier: slug,
});

/** A file fetched over HTTP(S) into `raw/<dataset>/<run>/…`. */
export const httpSourceSchema = z.strictObject({
  type: z.literal('http'),
  url: httpUrl('headersSecret: a JSON object of request headers, such as Authorization'),
  /**
   * Name of a Secrets Manager secret whose value is a JSON object of request headers
   * (e.g. `{"Authorization": "Bearer …"}`). The secret is never written to logs or manifests.
   */
  headersSecret: z.string().min(1).optional(),
  /** File name to store the download under; defaults to the last segment of the URL path. */
  fileName: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional() /** Check the server's TLS certificate (default). `false` is for test servers with self-signed certificates only: every run logs a loud warning. */,
  verifyTls: z.boolean().default(true),
});

/**
 * Records fetched from a JSON REST API, page by page, into `raw/<dataset>/<run>/records.ndjson.gz`
 * (functions/get/fetch-rest.ts). With `incremental`, each run asks only for records changed since
 * the last one; pair it with `clean.mode: upsert`.
 */
export const restSourceSchema = z
  .strictObject({
    type: z.literal('rest'),
    url: httpUrl('auth: { type: basic, secret } holding {"username", "password"}'),
    /** Dotted path to the array of records in each page (`data`, `result.items`); default the body itself. */
    records: z.string().min(1).optional(),
    /**
     * Credentials: a Secrets Manager secret holding JSON — `{"token"}` (bearer), `{"key"}` (apiKey),
     * `{"username","password"}` (basic), `{"client_id","client_secret"}` (oauth2 client credentials,
     * token from `tokenUrl`). Never written to logs, errors or manifests.
     */
    auth: z
      .strictObject({
        type: z.enum(['bearer', 'apiKey', 'basic', 'oauth2']),
        secret: z.string().min(1),
        /** apiKey: sent as a header (default) or a query parameter. */
        in: z.enum(['header', 'query']).optional(),
        /** apiKey: the header or parameter name (default `x-api-key` / `api_key`). */
        name: z.string().min(1).optional(),
        tokenUrl: httpUrl('auth.secret: {"client_id", "client_secret"}').optional(),
      })
      .refine((a) => a.type !== 'oauth2' || a.tokenUrl, { message: 'oauth2 needs a tokenUrl', path: ['tokenUrl'] })
      .optional(),
    pagination: z
      .discriminatedUnion('type', [
        z.strictObject({ type: z.literal('offset'), limitParam: z.string().min(1), offsetParam: z.string().min(1), pageSize: z.number().int().positive() }),
        z.strictObject({
          type: z.literal('page'),
          pageParam: z.string().min(1),
          sizeParam: z.string().min(1).optional(),
          pageSize: z.number().int().positive().optional(),
          firstPage: z.number().int().min(0).optional(),
        }),
        /** The next cursor is at `cursorPath` in the body (dotted); sent back as `cursorParam`. */
        z.strictObject({ type: z.literal('cursor'), cursorParam: z.string().min(1), cursorPath: z.string().min(1) }),
        /** RFC 8288 `Link: <…>; rel="next"` header. */
        z.strictObject({ type: z.literal('link') }),
        /** The next page's URL is at `path` in the body (dotted). */
        z.strictObject({ type: z.literal('nextUrl'), path: z.string().min(1) }),
      ])
      .optional(),
    /**
     * Ask only for records changed since the last run: `?<param>=<watermark>`, the watermark being
     * the max of `field`, moved back `overlapSeconds` to catch late writers. With `idField`, records
     * of that overlap already fetched unchanged (same id, same `field`) are skipped.
     */
    incremental: z
      .strictObject({
        param: z.string().min(1),
        field: z.string().min(1),
        /** `timestamp` (ISO 8601 or epoch milliseconds; sent as ISO 8601) or `number` (an increasing id or sequence; sent as it is). */
        type: z.enum(['timestamp', 'number']).default('timestamp'),
        overlapSeconds: z.number().int().min(0).default(0),
        idField: z.string().min(1).optional(),
      })
      .refine((i) => i.type === 'timestamp' || (i.overlapSeconds === 0 && !i.idField), {
        message: 'overlapSeconds and idField are for timestamp watermarks; a number watermark asks for what comes after the largest value seen',
      })
      .optional(),
    /** A run that needs more pages fails rather than paging forever. */
    maxPages: z.number().int().positive().default(10_000),
    /**
     * Requests in flight at once (offset and page pagination only: the next pages' addresses are
     * known in advance). Pages are still written in order; default 1.
     */
    concurrency: z.number().int().min(1).max(32).default(1),
    /** Check the server's TLS certificate (default). `false` is for test servers with self-signed certificates only: every run logs a loud warning. */
    verifyTls: z.boolean().default(true),
  })
  .refine((s) => s.concurrency === 1 || s.pagination?.type === 'offset' || s.pagination?.type === 'page', {
    message: 'concurrency above 1 needs offset or page pagination (cursor, link and nextUrl pages are only known one after the other)',
    path: ['concurrency'],
  });

/**
 * One resource of an Ed-Fi ODS API declared under `edfi` (the preset): `resource` is
 * `students`, `studentSchoolAssociations` (namespace `ed-fi`) or `tpdm/candidates`. Usually
 * generated from the API's `resources` list; declare the dataset yourself to give it columns,
 * maps or rules (then list it as `{resource, dataset}` or give it this source).
 */
export const edfiSourceSchema = z.strictObject({
  type: z.literal('edfi'),
  /** `edfi[].name` of the API. */
  api: slug,
  resource: z.string().regex(/^([a-z][A-Za-z0-9-]*\/)?[a-z][A-Za-z0-9]*$/, 'must be a resource name such as students or tpdm/candidates'),
});

/**
 * The files (resources) of open-data catalogue datasets — udata (data.gouv.fr) or CKAN — each
 * fetched into `raw/<dataset>/<run>/<file>` (functions/get/fetch-catalog.ts). A run lists the
 * catalogue datasets modified since the last one, keeps the resources of the wanted formats and
 * downloads those that changed (conditional GET, then SHA-256), with a manifest of every resource.
 */
export const catalogSourceSchema = z
  .strictObject({
    type: z.literal('catalog'),
    api: z.enum(['udata', 'ckan']),
    /** The portal (`https://www.data.gouv.fr`) or its API base (`…/api/1`, `…/api/3/action`). */
    url: httpUrl('headersSecret: a JSON object of request headers'),
    /** One catalogue dataset, by id or slug (CKAN: name). */
    dataset: z.string().min(1).optional(),
    /** Datasets of this organization (udata: its id; CKAN: its name). */
    organization: z.string().min(1).optional(),
    /** Datasets with this tag, or with all of these tags. */
    tag: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** Full-text search of the catalogue (`q`). */
    query: z.string().min(1).optional(),
    /** Resource formats to fetch (`csv`, `geojson`; case-insensitive); default every format. */
    format: z.array(z.string().min(1)).min(1).optional(),
    /** A run that finds more matching resources fails rather than downloading half a catalogue. */
    maxResources: z.number().int().positive().default(200),
    /** Downloads at once. */
    concurrency: z.number().int().min(1).max(16).default(4),
    /** Catalogue datasets per page of the listing. */
    pageSize: z.number().int().min(1).max(1000).default(100),
    /**
     * List only the catalogue datasets modified since the last run (default). `false`: list every
     * matching dataset each run and send each resource a conditional GET — for files that change
     * at their URL without the catalogue knowing.
     */
    incremental: z.boolean().default(true),
    /** A Secrets Manager secret holding a JSON object of request headers (an API key), sent to the catalogue's own host only. */
    headersSecret: z.string().min(1).optional(),
    /** Check TLS certificates (default); `false` for test servers only, with a loud warning every run. */
    verifyTls: z.boolean().default(true),
    /**
     * Read options per resource: the first rule whose `match` fits a resource (every field given
     * must: `id` exactly, `format` case-insensitively, `title` as a case-insensitive part of the
     * resource's title) adds its `read` options to the dataset's when that resource is staged —
     * a workbook told which sheet to read, a CSV its delimiter, a file its format.
     */
    resources: z
      .array(
        z.strictObject({
          match: z
            .strictObject({ id: z.string().min(1).optional(), format: z.string().min(1).optional(), title: z.string().min(1).optional() })
            .refine((m) => m.id !== undefined || m.format !== undefined || m.title !== undefined, { message: 'match a resource by id, format or title' }),
          read: z.lazy(() => readHintsSchema.pick({ format: true, encoding: true, delimiter: true, sheet: true, layer: true, member: true, srid: true })),
        }),
      )
      .optional(),
  })
  .superRefine((s, ctx) => {
    const filters = (['organization', 'tag', 'query'] as const).filter((k) => s[k] !== undefined);
    if (s.dataset === undefined && filters.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['dataset'], message: 'name a catalogue dataset, or filter by organization, tag or query (without one, every dataset of the catalogue would be fetched)' });
    }
    if (s.dataset !== undefined && filters.length) {
      ctx.addIssue({ code: 'custom', path: [filters[0]!], message: 'dataset names one catalogue dataset; organization, tag and query filter a search: use one or the other' });
    }
    if (s.api === 'udata' && s.organization !== undefined && !/^[0-9a-f]{24}$/.test(s.organization)) {
      ctx.addIssue({ code: 'custom', path: ['organization'], message: 'udata filters by organization id (24 hexadecimal characters, the "id" of its API record), not by its slug' });
    }
  });

/**
 * Rows of one SQL query against a PostgreSQL or MySQL/MariaDB database (a datamart), streamed with
 * a server-side cursor into `raw/<dataset>/<run>/rows.ndjson.gz` (functions/get/fetch-sql.ts).
 * With `incremental`, the query says where the last run's newest `column` value goes —
 * `WHERE updated_at > :watermark` — and it is bound as a parameter; pair it with `clean.mode: upsert`.
 */
export const sqlSourceSchema = z
  .strictObject({
    type: z.literal('sql'),
    engine: z.enum(['postgres', 'mysql']),
    /**
     * Secrets Manager secret holding JSON `{host, port, database (or dbname), username, password[, ssl]}`
     * (an RDS-managed secret fits). Never written to logs, errors or manifests.
     */
    secret: z.string().min(1),
    /** One SELECT (or WITH … SELECT) statement, run in a read-only transaction. */
    query: z
      .string()
      .min(1)
      .refine((q) => /^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/|\()*(select|with)\b/i.test(q), 'must be a SELECT (or WITH … SELECT) statement'),
    incremental: z
      .strictObject({
        /** The query's column (a timestamp, date or number) whose newest value is the next run's `:watermark`. */
        column: z.string().min(1),
        /** Bind the watermark this much earlier, for rows committed late (date and time columns). @default 0 */
        overlapSeconds: z.number().int().min(0).default(0),
        /** `:watermark` on the first run. @default '1970-01-01T00:00:00Z' (give 0 for a numeric column) */
        initial: z.union([z.string().min(1), z.number()]).default('1970-01-01T00:00:00Z'),
      })
      .optional(),
    /** Rows fetched from the server at a time. @default 5000 */
    batchRows: z.number().int().min(1).max(100_000).default(5000),
    /** @default 15 */
    connectTimeoutSeconds: z.number().int().min(1).max(300).default(15),
    /** Longest one statement may run in the database. @default the run's own time limit */
    statementTimeoutSeconds: z.number().int().min(1).optional(),
    /**
     * Where the database is reached from: `internet` (default: the fetch function, outside the VPC)
     * or `vpc` (a second fetch function in the stack's VPC — the project's RDS, or a database in a
     * VPC peered with it; no internet there).
     */
    network: z.enum(['internet', 'vpc']).default('internet'),
  })
  .superRefine((s, ctx) => {
    const uses = /(?<![:\w]):watermark\b/.test(s.query);
    if (s.incremental && !uses) ctx.addIssue({ code: 'custom', path: ['query'], message: 'an incremental query needs :watermark where the last value goes (e.g. WHERE updated_at > :watermark)' });
    if (!s.incremental && uses) ctx.addIssue({ code: 'custom', path: ['incremental'], message: 'the query uses :watermark: declare incremental: { column: … }' });
  });

export const sourceSchema = z.discriminatedUnion('type', [uploadSourceSchema, httpSourceSchema, restSourceSchema, edfiSourceSchema, catalogSourceSchema, sqlSourceSchema]);

export const readHintsSchema = z.strictObject({
  /** The file's format, when detection (content first, extension second) should not decide. */
  format: z.enum(['csv', 'xlsx', 'xls', 'ods', 'json', 'ndjson', 'geojson', 'shapefile', 'gpkg', 'parquet', 'zip']).optional(),
  /** CSV text: the encoding to read it in, instead of the guess (a byte-order mark still wins, with a note). */
  encoding: z.enum(['utf-8', 'windows-1252', 'iso-8859-1', 'iso-8859-15', 'macintosh', 'cp850', 'utf-16le', 'utf-16be']).optional(),
  delimiter: z.enum([',', ';', '\t', '|']).optional(),
  /** Spreadsheets: the sheet, by name or 0-based index (a string of digits names a sheet so named, else is an index); default the sheet that holds the table (the first visible one holding a table). */
  sheet: z.union([z.string().min(1), z.number().int().min(0)]).optional(),
  /** GeoPackage: the layer (default every layer, one load each). */
  layer: z.string().min(1).optional(),
  /** Archives: which members to read, a glob on the member's path (`*.shp`, `data/*.csv`); default every data file. */
  member: z.string().min(1).optional(),
  /** JSON: nested objects become dotted columns (`address.city`) down to this depth; deeper ones stay JSON text. */
  flattenDepth: z.number().int().min(0).max(10).default(3),
  /** JSON: arrays kept as JSON text, or exploded into a child table (one row per element). */
  arrays: z.enum(['json', 'explode']).default('json'),
  /** SRID of the source coordinates when the file does not say (no .prj, no GeoJSON crs). */
  srid: z.number().int().positive().optional(),
  /**
   * What the readers take from one file before refusing it (functions/common/limits.ts): each
   * unset one keeps its default; the caps keep a dataset within what the stage function holds
   * (1 GiB of memory, 8 GiB of /tmp).
   */
  limits: z
    .strictObject({
      maxColumns: z.number().int().min(1).max(16_384).optional(),
      maxRows: z.number().int().min(1).max(1_048_576).optional(),
      maxRepeatedCells: z.number().int().min(1).max(100_000_000).optional(),
      maxCellChars: z
        .number()
        .int()
        .min(1)
        .max(32 * 1024 * 1024)
        .optional(),
      maxRecords: z.number().int().min(1).max(1_000_000_000).optional(),
      maxGroupCells: z.number().int().min(1).max(100_000_000).optional(),
      maxExpandedBytes: z
        .number()
        .int()
        .min(1)
        .max(6 * 1024 ** 3)
        .optional(),
      maxRatio: z.number().int().min(1).max(100_000).optional(),
      maxMembers: z.number().int().min(1).max(100_000).optional(),
      maxTables: z.number().int().min(1).max(10_000).optional(),
      maxDepth: z.number().int().min(0).max(3).optional(),
      maxSeconds: z.number().int().min(1).max(840).optional(),
    })
    .optional(),
});

/** EventBridge Scheduler expression: `rate(…)` or `cron(…)`. */
const scheduleSchema = z.string().regex(/^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\))$/, 'must be rate(N unit) or cron(6 fields)');

/**
 * Where a dataset's geometry comes from and what it becomes. Without it, a file with geometry of
 * its own (GeoJSON, shapefile, GeoPackage) or with latitude/longitude columns (lat/latitude,
 * lon/lng/longitude) still gets a `geom` column in EPSG:4326.
 */
export const geometrySchema = z.strictObject({
  /** Name of the geometry column in the clean table. */
  column: identifier.default('geom'),
  /** SRID of the clean geometry: 4326 (WGS 84), 28992 (Amsterdam RD New), 2154 (Lambert-93)… */
  srid: z.number().int().positive().default(4326),
  /**
   * Source columns, when the file has no geometry of its own: `{lat, lon}` (numbers), `{x, y}`
   * (projected coordinates in `read.srid`), `wkt`
   * (WKT or EWKT text) or `geojson` (a GeoJSON geometry object as text). Headers as in the file.
   */
  from: z
    .union([
      z.strictObject({ lat: z.string().min(1), lon: z.string().min(1) }),
      /** Projected coordinates (easting, northing) in `read.srid`, e.g. RD New x/y. */
      z.strictObject({ x: z.string().min(1), y: z.string().min(1) }),
      z.strictObject({ wkt: z.string().min(1) }),
      z.strictObject({ geojson: z.string().min(1) }),
    ])
    .optional(),
  /** An invalid geometry (self-intersecting ring…): repaired with ST_MakeValid, or its row quarantined. */
  invalid: z.enum(['repair', 'quarantine']).default('repair'),
  /** `false`: no geometry column, even if the file has geometry. */
  enabled: z.boolean().default(true),
});

export const datasetSchema = z
  .strictObject({
    /** ≤ 52 characters so that `<name>_quarantine` is still a PostgreSQL identifier. */
    name: identifier
      .max(52, 'must be at most 52 characters (the quarantine table adds _quarantine)')
      .refine((n) => !n.endsWith('_quarantine'), 'must not end in _quarantine (that name is taken by quarantine tables)'),
    title: z.string().optional(),
    /**
     * Reference data — neighbourhoods, community areas, address registers — that other datasets
     * are combined with. Labels the clean table (its comment) and the analyst role may read it
     * directly: it holds no one's personal data.
     */
    reference: z.boolean().optional(),
    source: sourceSchema,
    schedule: scheduleSchema.optional(),
    read: readHintsSchema.default({ flattenDepth: 3, arrays: 'json' }),
    geometry: geometrySchema.default({ column: 'geom', srid: 4326, invalid: 'repair', enabled: true }),
    /**
     * What a load whose columns differ from the clean table's does (schema drift: a column added,
     * missing, renamed or holding values of another type). `evolve` (default): the clean table
     * follows — new columns are added, a column whose values no longer fit is widened
     * (integer → bigint → numeric → text), missing columns stay and are empty for this load, and
     * views keep working. `freeze`: the load is rejected with the list of changes; the clean table
     * and views stay as they were. `quarantine`: the load goes on with the clean table as it is,
     * and each row with a value the table has no place for (in a new column, or not of the
     * column's type) goes to quarantine with the rule `schema`. Every change is recorded in the
     * ledger (`etl.loads.schema_changes`). With declared `clean.columns` the definition fixes the
     * clean table: changes of the file's columns are recorded, and only `freeze` acts on them.
     * (Optional rather than defaulted so that hand-built definitions stay valid: absent = evolve.)
     */
    drift: z.enum(['evolve', 'freeze', 'quarantine']).optional(),
    /**
     * The clean table. Without `columns`, the columns and types detected by the stage step's
     * profile are used (names laundered: `Cost (USD)` → `cost_usd`).
     */
    clean: z
      .strictObject({
        columns: z.array(columnSchema).min(1).optional(),
        /** Columns that identify a row; a row whose key repeats an earlier row goes to quarantine. */
        key: z.array(identifier).default([]),
        /**
         * How a load meets the rows already there: `replace` (default: the load is the table),
         * `append` (added; a key already in the table is quarantined), `upsert` (the rows of the
         * keys it brings are replaced, others kept), `history` (type 2: every version kept with
         * `valid_from`/`valid_to`, each load a full snapshot; `<dataset>_current` shows the
         * current rows). `upsert` and `history` need a `key`.
         */
        mode: z.enum(['replace', 'append', 'upsert', 'history']).optional(),
        /**
         * A file with no data rows may empty the table (mode `replace` or `history`). Without it
         * such a load is refused, and the table kept: an empty or one-byte file is far more often
         * a broken export than a dataset that has ended.
         */
        allowEmpty: z.boolean().optional(),
        /** Default `trim` of every column (a column's own `trim` wins). */
        trim: z.union([z.boolean(), z.literal('collapse')]).optional(),
        /** Default `nullTokens` of every column (a column's own `nullTokens` wins). */
        nullTokens: z.union([z.boolean(), z.array(z.string())]).optional(),
        /**
         * Rows sharing a key are duplicates: keep the `first` or `last` in the order of `orderBy`
         * (declared columns, empty values last; ties and the default: the line in the file), the
         * others go to quarantine with the rule `dedupe`. Without it, the first line wins (rule `unique`).
         */
        dedupe: z.strictObject({ orderBy: z.array(identifier).default([]), keep: z.enum(['first', 'last']).default('first') }).optional(),
        /**
         * Value maps for columns that are detected rather than declared, nested tables included:
         * `column` is the source field (`sexDescriptor`), or for a nested table (`read.arrays:
         * explode`) its array path and field (`addresses.addressTypeDescriptor`). The column then
         * holds the map's constants; `unmapped` and `descriptor` as for a declared column.
         */
        maps: z
          .array(
            z.strictObject({
              column: z.string().min(1),
              map: identifier,
              unmapped: z.enum(['keep', 'null', 'quarantine']).optional(),
              descriptor: z.string().min(1).optional(),
            }),
          )
          .optional(),
      })
      .default({ key: [] }),
  })
  .superRefine((d, ctx) => {
    if (d.schedule && d.source.type === 'upload') {
      ctx.addIssue({ code: 'custom', path: ['schedule'], message: 'only fetched sources can have a schedule: suppliers upload this one' });
    }
    const names = (d.clean.columns ?? []).map((c) => c.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['clean', 'columns', i, 'name'], message: `duplicate column "${n}"` });
    });
    if (d.geometry.from && 'x' in d.geometry.from && d.read.srid === undefined) {
      ctx.addIssue({ code: 'custom', path: ['geometry', 'from'], message: 'x/y coordinates need their SRID in read.srid (e.g. 28992 for RD New)' });
    }
    if ((d.clean.mode === 'upsert' || d.clean.mode === 'history') && d.clean.key.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['clean', 'mode'], message: `mode ${d.clean.mode} needs a key (clean.key)` });
    }
    if (d.clean.mode === 'history' && d.read.arrays === 'explode') {
      // nested rows follow the current row of their record; they keep no versions
      ctx.addIssue({ code: 'custom', path: ['read', 'arrays'], message: 'nested tables (arrays: explode) keep no history: use mode replace or upsert, or arrays: json' });
    }
    if (d.clean.mode === 'history') {
      names.forEach((n, i) => {
        if (n === 'valid_from' || n === 'valid_to') ctx.addIssue({ code: 'custom', path: ['clean', 'columns', i, 'name'], message: `"${n}" is taken by mode history` });
      });
    }
    d.clean.key.forEach((k, i) => {
      // without declared columns the key names a detected column; the clean step checks it is there
      if (d.clean.columns && !names.includes(k)) ctx.addIssue({ code: 'custom', path: ['clean', 'key', i], message: `key column "${k}" is not a declared column` });
    });
    for (const p of datasetRuleProblems({ ...d.clean, name: d.name })) ctx.addIssue({ code: 'custom', path: ['clean', ...p.path], message: p.message });
  });

/**
 * A combine: a dataset enriched with another (often reference data: areas, registers), written
 * declaratively and compiled to SQL by functions/combine/compile.ts.
 */
export const combineSchema = z.strictObject({
  /** The dataset whose rows are enriched (one output row each, unless `per` aggregates them). */
  from: identifier,
  /** The dataset joined to it. */
  join: identifier,
  /**
   * How rows match: `attribute` (equal values, optionally normalised: case, accents, punctuation
   * and spaces ignored), `contains` (the joined geometry contains the row's: point in polygon),
   * `nearest` (the closest joined geometry within `within` metres), `overlap` (geometries that
   * intersect, with the share of the row's area inside each).
   */
  how: z.enum(['attribute', 'contains', 'nearest', 'overlap']),
  /** For `attribute`: the columns, `from`'s then `join`'s. */
  on: z.strictObject({ from: identifier, join: identifier, normalise: z.boolean().default(true) }).optional(),
  /** For `nearest`: the search radius in metres. */
  within: z.number().positive().optional(),
  /** Columns of `join` to add, prefixed `<join>_` (default: all of them but geometry and lineage). */
  columns: z.array(identifier).optional(),
  /**
   * Aggregate per row of `join` instead (every row of it, also those nothing matched): the count
   * of matching `from` rows, and with `perCapita` that count per `per` (e.g. 10,000) of a `join`
   * column (e.g. population).
   */
  per: z.literal('join').optional(),
  perCapita: z.strictObject({ column: identifier, per: z.number().positive().default(10_000) }).optional(),
});

export const viewSchema = z
  .strictObject({
    name: identifier,
    description: z.string().optional(),
    /** Datasets the view reads; it is (re)created once all of them have a clean table (derived from `combine`). */
    datasets: z.array(identifier).min(1).optional(),
    /** The SELECT statement. Refer to tables as `{{schema}}.<dataset>`. */
    sql: z
      .string()
      .min(1)
      .refine((s) => /^\s*(select|with)\b/i.test(s), 'must be a SELECT (or WITH … SELECT) statement')
      .optional(),
    /** Or a declarative combine, compiled to SQL. */
    combine: combineSchema.optional(),
    /** A materialized view, refreshed in the same transaction as every clean of a dataset it reads. */
    materialized: z.boolean().default(false),
    /**
     * Export the view after every clean of a dataset it reads ("gold" files, functions/combine/exports.ts):
     * `curated/<project>/<view>/<run>/<view>.parquet` (GeoParquet when it has geometry) and/or
     * `.csv`, with `_manifest.json` beside them and `curated/<project>/<view>/latest.json`
     * pointing at the newest complete run.
     */
    export: z
      .strictObject({
        formats: z
          .array(z.enum(['parquet', 'csv']))
          .min(1)
          .refine((f) => new Set(f).size === f.length, 'lists a format twice')
          .default(['parquet', 'csv']),
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.sql === undefined) === (v.combine === undefined)) ctx.addIssue({ code: 'custom', path: ['sql'], message: 'give either sql or combine' });
    if (v.sql !== undefined && !v.datasets) ctx.addIssue({ code: 'custom', path: ['datasets'], message: 'a view written in sql lists the datasets it reads' });
    const c = v.combine;
    if (!c) return;
    if (c.how === 'attribute' && !c.on) ctx.addIssue({ code: 'custom', path: ['combine', 'on'], message: 'how: attribute needs on: {from, join}' });
    if (c.how !== 'attribute' && c.on) ctx.addIssue({ code: 'custom', path: ['combine', 'on'], message: `how: ${c.how} matches geometries; on is for how: attribute` });
    if (c.how === 'nearest' && c.within === undefined) ctx.addIssue({ code: 'custom', path: ['combine', 'within'], message: 'how: nearest needs within (metres)' });
    if (c.perCapita && !c.per) ctx.addIssue({ code: 'custom', path: ['combine', 'perCapita'], message: 'perCapita goes with per: join' });
  })
  .transform((v) => ({ ...v, datasets: v.datasets ?? [v.combine!.from, v.combine!.join] }));

export const supplierSchema = z.strictObject({
  name: slug,
  /**
   * ARN of an AWS principal (account root, role or user) allowed to assume this supplier's
   * upload role. Without it the supplier gets an IAM user whose access key lives in Secrets Manager.
   */
  assumedBy: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:(root|role\/.+|user\/.+)$/, 'must be an IAM principal ARN')
    .optional(),
  /** Required with `assumedBy`: the external id the supplier must present. */
  externalId: z.string().min(2).optional(),
  /** The language of the HTML quality report the supplier reads (English, French or Dutch); English when not given. */
  language: z.enum(['en', 'fr', 'nl']).optional(),
});

/**
 * A value map: source codes → canonical constants (contract/value-maps.ts). `file` (CSV, YAML or
 * JSON, relative to the pipeline file) is read by the loader into `entries`; a definition that
 * already has `entries` (written inline, or the resolved definition bundled into the Lambdas) is
 * not read again. Conflicting entries — one source value, two constants — fail validation.
 */
export const valueMapSchema = z
  .strictObject({
    name: identifier,
    description: z.string().optional(),
    file: z.string().min(1).optional(),
    entries: z
      .array(
        z.strictObject({
          source: z.string().regex(/\S/, 'must not be blank'),
          constant: z.string().min(1),
          /** An Ed-Fi descriptor's bare name (`AddressTypeDescriptor`): the entry maps `source` as a code value of that descriptor. */
          descriptor: z.string().min(1).optional(),
          /** The entry's line in `file`, for messages. */
          line: z.number().int().positive().optional(),
        }),
      )
      .optional(),
  })
  .superRefine((m, ctx) => {
    if (!m.file && !m.entries) ctx.addIssue({ code: 'custom', message: 'needs a file (a CSV, YAML or JSON map) or entries' });
    for (const problem of mapConflicts(m.entries ?? [], m.file)) ctx.addIssue({ code: 'custom', message: problem });
  });

/** How the stage step profiles each object (the catalog), and which locale packs of formats it uses. */
export const profileSettingsSchema = z.strictObject({
  /** Locale packs of semantic formats: `fr`, `nl`, `us` (international formats are always on). */
  locales: z.array(z.enum(['fr', 'nl', 'us'])).default([]),
  /** Records profiled per object (a sample from the start); the row count itself is always exact. */
  sample: z.number().int().positive().default(100_000),
});

/**
 * The Ed-Fi preset: one ODS / API (`url` = the API root, under which `oauth/token`,
 * `data/v3/…` and `changeQueries/v1/…` live) and the resources to fetch from it. Each resource
 * becomes a dataset `<name>_<resource>` (`students` → `ods_students`) cleaned by `id` with mode
 * upsert, unless a dataset of that name (or listed as `{resource, dataset}`) is declared.
 * functions/get/fetch-edfi.ts fetches them all in one run, `concurrency` requests at a time.
 */
export const edfiApiSchema = z
  .strictObject({
    name: slug,
    title: z.string().optional(),
    url: httpUrl('secret: {"key", "secret"} of the API client'),
    /** Secrets Manager secret holding `{"key", "secret"}` (the API client's credentials). */
    secret: z.string().min(1),
    /** `shared` (one ODS) or `yearSpecific` (one ODS per school year, the year in every path). */
    instance: z.enum(['shared', 'yearSpecific']).default('shared'),
    /** yearSpecific: the school years to fetch (`2025` is school year 2024–2025). */
    schoolYears: z.array(z.number().int().min(1990).max(2100)).default([]),
    /** Path of the resources under `url` (`data/v3` in ODS / API 5–6; `data` in 7). */
    dataPath: z
      .string()
      .regex(/^[A-Za-z0-9._/-]*$/)
      .default('data/v3'),
    tokenPath: z
      .string()
      .regex(/^[A-Za-z0-9._/-]*$/)
      .default('oauth/token'),
    changeQueriesPath: z
      .string()
      .regex(/^[A-Za-z0-9._/-]*$/)
      .default('changeQueries/v1'),
    /** Records per page (`limit`; the ODS allows at most 500 unless configured otherwise). */
    pageSize: z.number().int().min(1).max(5000).default(500),
    /** Ask each run only for what changed since the last (`minChangeVersion`/`maxChangeVersion`). */
    changeQueries: z.boolean().default(true),
    /** With change queries: also ask `<resource>/deletes` for the ids deleted since the last run, and delete them from the clean table. */
    deletes: z.boolean().default(true),
    /**
     * With change queries: also ask `<resource>/keyChanges` (ODS / API 5.3+ and 6.1+) for the records
     * whose natural key changed since the last run; the clean step applies them before the run's
     * records (docs/connectors.md, the Ed-Fi example). An ODS without the route is warned about once per resource, not failed.
     */
    keyChanges: z.boolean().default(true),
    /** Requests in flight at once, across all resources. */
    concurrency: z.number().int().min(1).max(32).default(4),
    /** A resource's records are split into parts of at most this many records (and at each checkpoint). */
    partRecords: z.number().int().positive().default(1_000_000),
    maxPages: z.number().int().positive().default(100_000),
    resources: z.array(z.union([edfiSourceSchema.shape.resource, z.strictObject({ resource: edfiSourceSchema.shape.resource, dataset: identifier })])).default([]),
    schedule: scheduleSchema.optional(),
    /** Check the server's TLS certificate (default). `false` is for test servers with self-signed certificates only: every run logs a loud warning. */
    verifyTls: z.boolean().default(true),
  })
  .superRefine((a, ctx) => {
    if (a.instance === 'yearSpecific' && a.schoolYears.length === 0) ctx.addIssue({ code: 'custom', path: ['schoolYears'], message: 'a yearSpecific instance needs its schoolYears' });
    if (a.instance === 'shared' && a.schoolYears.length > 0) ctx.addIssue({ code: 'custom', path: ['schoolYears'], message: 'schoolYears are for instance: yearSpecific' });
  });

export const pipelineSchema = z
  .strictObject({
    /** Project name: also the PostgreSQL schema that holds its clean tables and views (≤ 55, for `<project>_staging`). */
    project: identifier.max(55, 'must be at most 55 characters (the staging schema adds _staging)'),
    title: z.string().optional(),
    profile: profileSettingsSchema.default({ locales: [], sample: 100_000 }),
    suppliers: z.array(supplierSchema).default([]),
    datasets: z.array(datasetSchema).min(1),
    views: z.array(viewSchema).default([]),
    valueMaps: z.array(valueMapSchema).default([]),
    /** Ed-Fi ODS / APIs to fetch from (the preset); their resources are datasets. */
    edfi: z.array(edfiApiSchema).default([]),
  })
  .superRefine((p, ctx) => {
    if (['etl', 'public', 'information_schema'].includes(p.project) || p.project.startsWith('pg_')) {
      ctx.addIssue({ code: 'custom', path: ['project'], message: `"${p.project}" is reserved` });
    }
    const suppliers = p.suppliers.map((s) => s.name);
    // `a-b` and `a_b` would name the same AWS resources (construct ids and outputs drop - and _)
    const folded = suppliers.map((n) => n.replace(/[-_]/g, ''));
    p.suppliers.forEach((s, i) => {
      if (suppliers.indexOf(s.name) !== i) ctx.addIssue({ code: 'custom', path: ['suppliers', i, 'name'], message: `duplicate supplier "${s.name}"` });
      else if (folded.indexOf(folded[i]!) !== i) {
        ctx.addIssue({ code: 'custom', path: ['suppliers', i, 'name'], message: `"${s.name}" differs from "${suppliers[folded.indexOf(folded[i]!)]}" only in - and _; choose a distinct name` });
      }
      if (s.assumedBy && !s.externalId) ctx.addIssue({ code: 'custom', path: ['suppliers', i, 'externalId'], message: 'required when assumedBy is set' });
    });
    const datasets = p.datasets.map((d) => d.name);
    p.datasets.forEach((d, i) => {
      if (datasets.indexOf(d.name) !== i) ctx.addIssue({ code: 'custom', path: ['datasets', i, 'name'], message: `duplicate dataset "${d.name}"` });
      if (d.source.type === 'upload' && !suppliers.includes(d.source.supplier)) {
        ctx.addIssue({ code: 'custom', path: ['datasets', i, 'source', 'supplier'], message: `unknown supplier "${d.source.supplier}" (declare it under suppliers)` });
      }
    });
    const apis = p.edfi.map((a) => a.name);
    apis.forEach((n, i) => {
      if (apis.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['edfi', i, 'name'], message: `duplicate Ed-Fi API "${n}"` });
    });
    p.datasets.forEach((d, i) => {
      if (d.source.type !== 'edfi') return;
      const api = p.edfi.find((a) => a.name === (d.source as { api: string }).api);
      if (!api) {
        ctx.addIssue({ code: 'custom', path: ['datasets', i, 'source', 'api'], message: `unknown Ed-Fi API "${d.source.api}" (declare it under edfi)` });
        return;
      }
      if (d.schedule) ctx.addIssue({ code: 'custom', path: ['datasets', i, 'schedule'], message: `schedule the Ed-Fi API (edfi "${api.name}" → schedule), which fetches all its resources in one run` });
      if (d.clean.mode === 'history') {
        ctx.addIssue({
          code: 'custom',
          path: ['datasets', i, 'clean', 'mode'],
          message: 'an Ed-Fi resource arrives in parts (and, with change queries, as changes only): clean it with mode upsert, or replace with changeQueries: false',
        });
      } else if (api.changeQueries && d.clean.mode !== 'upsert') {
        ctx.addIssue({
          code: 'custom',
          path: ['datasets', i, 'clean', 'mode'],
          message: `change queries bring only what changed: clean this resource with mode upsert (key id), or set changeQueries: false on edfi "${api.name}"`,
        });
      }
    });
    const maps = p.valueMaps.map((m) => m.name);
    maps.forEach((n, i) => {
      if (maps.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['valueMaps', i, 'name'], message: `duplicate value map "${n}"` });
    });
    p.datasets.forEach((d, i) => {
      d.clean.maps?.forEach((m, j) => {
        if (!maps.includes(m.map)) ctx.addIssue({ code: 'custom', path: ['datasets', i, 'clean', 'maps', j, 'map'], message: `unknown value map "${m.map}" (declare it under valueMaps)` });
      });
      d.clean.columns?.forEach((c, j) => {
        const at = ['datasets', i, 'clean', 'columns', j];
        if (c.map && !maps.includes(c.map)) ctx.addIssue({ code: 'custom', path: [...at, 'map'], message: `unknown value map "${c.map}" (declare it under valueMaps)` });
        if (c.unmapped && !c.map) ctx.addIssue({ code: 'custom', path: [...at, 'unmapped'], message: 'only a column with a map has unmapped values' });
        if (c.descriptor && !c.map) ctx.addIssue({ code: 'custom', path: [...at, 'descriptor'], message: 'descriptor names the descriptor of a mapped column: add map' });
      });
    });
    for (const r of referenceProblems(p.datasets.map((d) => ({ name: d.name, columns: d.clean.columns })))) ctx.addIssue({ code: 'custom', path: r.path, message: r.message });
    p.views.forEach((v, i) => {
      if (datasets.includes(v.name)) ctx.addIssue({ code: 'custom', path: ['views', i, 'name'], message: `"${v.name}" is already a dataset name` });
      if (v.combine) {
        for (const side of ['from', 'join'] as const) {
          if (!datasets.includes(v.combine[side])) ctx.addIssue({ code: 'custom', path: ['views', i, 'combine', side], message: `unknown dataset "${v.combine[side]}"` });
        }
        const declared = (name: string) => p.datasets.find((d) => d.name === name)?.clean.columns?.map((c) => c.name);
        const check = (dataset: string, column: string, path: (string | number)[]) => {
          const names = declared(dataset);
          if (names && !names.includes(column)) ctx.addIssue({ code: 'custom', path, message: `dataset "${dataset}" has no column "${column}"` });
        };
        if (v.combine.on) {
          check(v.combine.from, v.combine.on.from, ['views', i, 'combine', 'on', 'from']);
          check(v.combine.join, v.combine.on.join, ['views', i, 'combine', 'on', 'join']);
        }
        v.combine.columns?.forEach((c, j) => check(v.combine!.join, c, ['views', i, 'combine', 'columns', j]));
        if (v.combine.perCapita) check(v.combine.join, v.combine.perCapita.column, ['views', i, 'combine', 'perCapita', 'column']);
      }
      (v.datasets ?? []).forEach((d, j) => {
        if (!datasets.includes(d)) ctx.addIssue({ code: 'custom', path: ['views', i, 'datasets', j], message: `unknown dataset "${d}"` });
      });
    });
  });
