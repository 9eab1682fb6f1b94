/**
 * The rules the BigQuery stand-in (bigquery-standin.ts) enforces beyond plain CRUD, as small pure
 * functions, each with the documentation page or GitHub issue it follows. The stand-in calls them;
 * other routes (query results, jobs.list) can apply the same rules by importing them.
 */

/** What a rule refuses with: BigQuery's error reason and message. */
export interface RuleError {
  reason: string;
  message: string;
}

// ---- job metadata retention ----

/**
 * How long BigQuery keeps a job's metadata: jobs.get and jobs.list, "Job information is available
 * for a six month period after creation."
 * (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/get, .../jobs/list). Six months
 * is read as 180 days.
 */
export const DEFAULT_JOB_RETENTION_MS = 180 * 24 * 3600 * 1000;

/**
 * Whether a job created at `creationTime` is past its retention at `now` (both ms since the
 * epoch): jobs.get then answers 404 notFound, as for an unknown job. Its id stays reserved (a new
 * insert with it is 409 duplicate): the conservative reading, since BigQuery documents job ids as
 * unique per project (JobReference.jobId) and documents nothing about reusing one after expiry.
 */
export function jobExpired(
  creationTime: number,
  now: number,
  retentionMs = DEFAULT_JOB_RETENTION_MS,
): boolean {
  return now - creationTime > retentionMs;
}

// ---- locations ----

const MULTI_REGIONS = new Set(['US', 'EU']);

/**
 * BigQuery's canonical spelling of a location: multi-regions upper case (US, EU), regions lower
 * case (us-central1, asia-northeast1), as the locations page lists them
 * (https://cloud.google.com/bigquery/docs/locations) and datasets.get reports them. BigQuery
 * accepts a lower-case multi-region but reports it upper case: "BigQuery resources that support a
 * location field are able to accept multi-region values in lowercase (e.g. us, eu), but since
 * multi-regions are capitalized by the BigQuery API, using lowercase values result in a permanent
 * diff" (hashicorp/terraform-provider-google#17031; also Canner/wren-engine#53, "the returned
 * value of location is uppercase").
 */
export function canonicalLocation(location: string): string {
  const upper = location.toUpperCase();
  return MULTI_REGIONS.has(upper) ? upper : location.toLowerCase();
}

/** Whether a (canonical) location is the US or EU multi-region. */
export const isMultiRegion = (location: string): boolean => MULTI_REGIONS.has(location);

/**
 * Whether jobs.get (and the calls about one job: getQueryResults, cancel) finds a job in
 * `jobLocation` (canonical) when asked with the `location` query parameter `requested`.
 * jobs.get reference, parameter location: "You must specify the location to run the job for the
 * following scenarios: If the location to run a job is not in the us or the eu multi-regional
 * location; If the job's location is in a single region (for example, us-central1)"
 * (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/get). So without `location`
 * only a US or EU job is found; a given `location` that is not the job's finds nothing. Stricter
 * than anything documented: `requested` must be the canonical form exactly ('ASIA-NORTHEAST1'
 * finds nothing), so that a caller is proven to pass the location as datasets.get reports it.
 */
export function jobVisibleAt(jobLocation: string, requested: string | undefined): boolean {
  if (requested === undefined) return isMultiRegion(jobLocation);
  return requested === jobLocation;
}

/**
 * A load job runs in its own location (jobReference.location, default US: JobReference,
 * "The default value is US", https://cloud.google.com/bigquery/docs/reference/rest/v2/JobReference)
 * and finds no dataset elsewhere: "Not found: Dataset p:d was not found in location L", reason
 * notFound (BigQuery's message when a job's location is not its dataset's, quoted e.g. in
 * slingdata-io/sling-cli#65: "Error 404: Not found: Dataset p:d was not found in location US,
 * notFound"; see https://cloud.google.com/bigquery/docs/locations#specify_locations).
 */
export function loadLocationError(
  project: string,
  dataset: string,
  datasetLocation: string,
  jobLocation: string,
): RuleError | undefined {
  if (datasetLocation === jobLocation) return undefined;
  return {
    reason: 'notFound',
    message: `Not found: Dataset ${project}:${dataset} was not found in location ${jobLocation}`,
  };
}

// ---- partition decorators ----

/** The partition of rows whose partitioning column is NULL (partitioned tables, "__NULL__"). */
export const NULL_PARTITION = '__NULL__';

/**
 * A load into `table$YYYYMMDD` must hold only rows of that partition. "Load data into partitioned
 * tables": "For time-unit column and integer-range partitioned tables, the partition ID specified
 * in the decorator must match the data being written. ... Otherwise, an error occurs."
 * (https://cloud.google.com/bigquery/docs/load-data-partitioned-tables). Rows with a NULL
 * partitioning value belong to the __NULL__ partition ("Managing partitioned table data": a
 * partition decorator may name the __NULL__ and __UNPARTITIONED__ partitions, e.g.
 * my_table$__NULL__, https://cloud.google.com/bigquery/docs/managing-partitioned-table-data;
 * "Introduction to partitioned tables", https://cloud.google.com/bigquery/docs/partitioned-tables),
 * so they too are outside any date decorator.
 */
export function decoratorError(decorator: string, partitions: Iterable<string>): RuleError | undefined {
  const outside = [...partitions].filter((partition) => partition !== decorator);
  if (outside.length === 0) return undefined;
  return {
    reason: 'invalid',
    message: `Some rows belong to partitions ${outside.join(', ')}, not to the decorator's ${decorator}`,
  };
}

// ---- Parquet load jobs ----

/** One row of DuckDB's `parquet_schema(file)` for a leaf column. */
export interface ParquetColumn {
  name: string;
  /** Physical type: BOOLEAN, INT32, INT64, INT96, FLOAT, DOUBLE, BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY. */
  type: string | null;
  repetition_type: string | null;
  /** e.g. 'TimestampType(isAdjustedToUTC=0, unit=...)', 'StringType()', or null. */
  logical_type: string | null;
  /** e.g. 'UTF8', 'DATE', 'INT_64', 'TIMESTAMP_MICROS', or null. */
  converted_type: string | null;
}

/** A BigQuery schema field, as in configuration.load.schema or a table's schema. */
export interface SchemaField {
  name?: string;
  type?: string;
  mode?: string;
}

const TYPE_ALIASES: Record<string, string> = {
  INTEGER: 'INT64',
  FLOAT: 'FLOAT64',
  BOOLEAN: 'BOOL',
  DECIMAL: 'NUMERIC',
  BIGDECIMAL: 'BIGNUMERIC',
};

/** A field's type in its standard SQL name (INTEGER → INT64, FLOAT → FLOAT64, BOOLEAN → BOOL). */
export function canonicalType(type: string | undefined): string {
  const upper = String(type ?? 'STRING').toUpperCase();
  return TYPE_ALIASES[upper] ?? upper;
}

/**
 * The BigQuery type a Parquet column loads as, per "Loading Parquet data from Cloud Storage",
 * Parquet conversions (https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-parquet#parquet_conversions):
 * BOOLEAN → BOOL; INT32 → INT64, INT32 DATE → DATE; INT64 (no logical type, or INT(64, signed))
 * → INT64; INT64 TIMESTAMP with isAdjustedToUTC=false → DATETIME, with isAdjustedToUTC=true →
 * TIMESTAMP (the legacy converted types TIMESTAMP_MILLIS/MICROS alone mean UTC-adjusted, so
 * TIMESTAMP); FLOAT, DOUBLE → FLOAT64; BYTE_ARRAY with UTF8/STRING → STRING, without → BYTES.
 * Anything else is undefined (not accepted by the stand-in).
 */
export function bigQueryTypeOf(column: ParquetColumn): string | undefined {
  const logical = column.logical_type ?? '';
  const converted = column.converted_type ?? '';
  switch (column.type) {
    case 'BOOLEAN':
      return 'BOOL';
    case 'INT32':
      if (converted === 'DATE' || logical.startsWith('DateType')) return 'DATE';
      if (logical === '' || /^IntType\(bitWidth=\d+, isSigned=(1|true)\)$/.test(logical)) return 'INT64';
      return undefined;
    case 'INT64': {
      const timestamp = /^TimestampType\(isAdjustedToUTC=(\d|true|false)/.exec(logical);
      if (timestamp) return timestamp[1] === '1' || timestamp[1] === 'true' ? 'TIMESTAMP' : 'DATETIME';
      if (logical === '' && (converted === 'TIMESTAMP_MICROS' || converted === 'TIMESTAMP_MILLIS'))
        return 'TIMESTAMP';
      if (
        (logical === '' || /^IntType\(bitWidth=64, isSigned=(1|true)\)$/.test(logical)) &&
        (converted === '' || converted === 'INT_64')
      )
        return 'INT64';
      return undefined;
    }
    case 'FLOAT':
    case 'DOUBLE':
      return 'FLOAT64';
    case 'BYTE_ARRAY':
      return converted === 'UTF8' || logical.startsWith('StringType') ? 'STRING' : 'BYTES';
    default:
      return undefined;
  }
}

/** The BigQuery mode a Parquet repetition corresponds to. */
const MODE_OF_REPETITION: Record<string, string> = {
  REQUIRED: 'REQUIRED',
  OPTIONAL: 'NULLABLE',
  REPEATED: 'REPEATED',
};

/**
 * Checks one Parquet file's leaf columns against the schema the load uses: the provided one
 * (`configuration.load.schema`, `provided` true) or else the destination table's. The first
 * difference is BigQuery's error, reason invalid; undefined when the file fits.
 *
 * Modes: only equal modes are accepted (OPTIONAL ↔ NULLABLE, REQUIRED ↔ REQUIRED), with or
 * without a provided schema.
 *  - OPTIONAL column, REQUIRED field: "Field x has changed mode from REQUIRED to NULLABLE"
 *    (googleapis/google-cloud-python#8093 and #8305; the client's fix, #8230, writes REQUIRED
 *    Parquet columns for REQUIRED fields instead).
 *  - REQUIRED column, NULLABLE field: "Provided schema is not compatible with the file 'f'. Field
 *    'x' is specified as NULLABLE in provided schema which does not match REQUIRED as specified
 *    in the file." (googleapis/java-bigquery#13, googleapis/google-cloud-python#9957).
 *  googleapis/python-bigquery#1981 (2024) reports an OPTIONAL file accepted by an explicit
 *  REQUIRED schema; the older reports contradict it, so the stand-in refuses that too.
 * Types: the column's BigQuery type (bigQueryTypeOf) must be the field's, else "Parquet column 'x'
 *  has type BYTE_ARRAY which does not match the target cpp_type INT64" (BigQuery's message, as
 *  quoted in broadinstitute/depmap_omics#152).
 * Fields missing from the file: no documentation found on what BigQuery does with a schema field
 *  absent from a Parquet file, so the stand-in refuses it ("... is missing from the file").
 */
export function parquetSchemaError(
  file: string,
  columns: readonly ParquetColumn[],
  fields: readonly SchemaField[],
  provided: boolean,
  table: string,
): RuleError | undefined {
  const invalid = (message: string): RuleError => ({ reason: 'invalid', message });
  const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
  for (const field of fields) {
    const name = String(field.name);
    const column = byName.get(name.toLowerCase());
    if (!column)
      return invalid(
        `Error while reading data, error message: Field '${name}' of the ${provided ? 'provided schema' : `table ${table}`} is missing from the file '${file}'.`,
      );
    const fieldMode = String(field.mode ?? 'NULLABLE').toUpperCase();
    const fileMode = MODE_OF_REPETITION[String(column.repetition_type)] ?? String(column.repetition_type);
    if (fieldMode === 'REQUIRED' && fileMode === 'NULLABLE')
      return invalid(
        `Provided Schema does not match Table ${table}. Field ${name} has changed mode from REQUIRED to NULLABLE`,
      );
    if (fieldMode !== fileMode)
      return invalid(
        `Error while reading data, error message: Provided schema is not compatible with the file '${file}'. Field '${name}' is specified as ${fieldMode} in provided schema which does not match ${String(column.repetition_type)} as specified in the file.`,
      );
    const target = canonicalType(field.type);
    if (bigQueryTypeOf(column) !== target)
      return invalid(
        `Error while reading data, error message: Parquet column '${column.name}' has type ${String(column.type)} which does not match the target cpp_type ${target}.`,
      );
  }
  return undefined;
}
