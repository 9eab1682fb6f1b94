/**
 * The legacy layout (files before 2014-10-18): no header; each line is `C/A,UNIT,SCP` then up
 * to 8 groups of `DATE(MM-DD-YY),TIME,DESC,ENTRIES,EXITS`, and names no station. All in DuckDB:
 *
 * 1. Each spooled line is read whole (one VARCHAR) and split on commas into a list of trimmed
 *    fields, so no line is "too wide" for a fixed set of columns and a group that lost a field
 *    can be found (below). (Reading 48 VARCHAR columns with null_padding measured no faster.)
 * 2. The groups are unpivoted: one row per group, with its position (1-8) and its five fields.
 *    Groups are read five fields at a time from field 4, except that a field shaped like a date
 *    (N-N-NN) always starts a new group: a group that lost a field ends early there, and the
 *    groups after it still line up (read strictly five by five they would all be misread).
 * 3. Each group is typed in SQL (DATE strictly MM-DD-YY, years 20YY; TIME HH:MM:SS; counters
 *    whole numbers) and given a reason when it cannot be: a field that does not type, or a group
 *    cut short. A line whose key cannot be trusted is one reject.
 * 4. Typed groups, reasons and all, are staged in one Parquet pass over the lines; readings
 *    (no reason) are then joined to the Remote-Booth-Station table into the readings Parquet,
 *    and the rest become rejects.
 *
 * Nothing is dropped silently: every non-empty group is one reading or one reject, and every
 * line with no usable key is one reject. Groups whose five fields are all empty (trailing
 * padding such as `,,,,,`) hold nothing and are neither.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConvertRequest, ConvertResult } from './convert-types.ts';
import { duckdbSelectList } from '../schema/turnstile-schema.ts';
import { sqlIdentifier, sqlString } from '../util/sql.ts';
import { loadRemoteBoothStation } from './remote-booth-station.ts';
import {
  CSV_BUFFER_BYTES,
  READINGS_PARQUET,
  createWeekRejects,
  finishWeek,
  nextConversionId,
  scalarNumber,
} from './week-output.ts';

const GROUP_FIELDS = 'DATE,TIME,DESC,ENTRIES,EXITS';

/** What starts a group: a date in shape, valid or not (13-45-10 starts a group, then fails DATE). */
const DATE_SHAPE = `'[0-9]{1,2}-[0-9]{1,2}-[0-9]{2,4}'`;

/**
 * Read each spooled line as one value: a delimiter no turnstile line holds (a control
 * character). A line that does hold it, or is not UTF-8, is kept by `store_rejects` and
 * becomes a reject, like any other line that cannot be read.
 */
const WHOLE_LINE = '\u0001';

export async function convertLegacy(request: ConvertRequest): Promise<ConvertResult> {
  const id = nextConversionId();
  const csvRejects = sqlIdentifier(`csv_rejects_${id}`);
  const stations = sqlIdentifier(`remote_booth_station_${id}`);
  const stagedPath = join(request.outDir, 'staged.parquet');
  const parquetPath = join(request.outDir, 'readings.parquet');
  const rejectsPath = join(request.outDir, 'rejects.parquet');
  const db = request.db;
  let weekRejects: string | undefined;
  try {
    weekRejects = await createWeekRejects(db, id);
    await loadRemoteBoothStation(db, stations);
    const lines = `read_csv(${sqlString(request.linesPath)}, columns = {'raw': 'VARCHAR'},
      header = false, delim = ${sqlString(WHOLE_LINE)}, quote = '', escape = '', auto_detect = false,
      buffer_size = ${CSV_BUFFER_BYTES}, store_rejects = true, rejects_table = ${sqlString(csvRejects)},
      rejects_scan = ${sqlString(`${csvRejects}_scan`)})`;
    const cutLine = request.unterminatedLastLine?.lineNumber ?? 0;
    await db.run(`COPY (${groupsQuery(lines, cutLine)}) TO ${sqlString(stagedPath)} ${READINGS_PARQUET}`);

    const staged = `read_parquet(${sqlString(stagedPath)})`;
    await db.run(`INSERT INTO ${weekRejects}
      SELECT source_line, reason, line FROM ${staged} WHERE reason IS NOT NULL
      UNION ALL ${unreadableLinesQuery(csvRejects)}`);
    const select = duckdbSelectList({
      drop_date: `DATE ${sqlString(request.dropDate)}`,
      control_area: 'g.control_area',
      unit: 'g.unit',
      scp: 'g.scp',
      station: 's.station',
      line_name: 's.line_name',
      division: 's.division',
      reading_at: 'g.reading_at',
      description: 'g.description',
      entries: 'g.entries',
      exits: 'g.exits',
      source_file: sqlString(request.sourceFile),
      source_line: 'g.source_line',
    });
    // The lookup has one row per (remote, booth) (remote-booth-station.ts): a LEFT JOIN on the
    // pair keeps every reading exactly once, matched or not.
    const joined = `FROM ${staged} g LEFT JOIN ${stations} s ON s.remote = g.unit AND s.booth = g.control_area
      WHERE g.reason IS NULL`;
    await db.run(`COPY (SELECT ${select} ${joined}) TO ${sqlString(parquetPath)} ${READINGS_PARQUET}`);
    const unmatchedStations = await scalarNumber(db, `SELECT count(*) ${joined} AND s.remote IS NULL`);
    const result = await finishWeek(db, request, weekRejects, parquetPath, rejectsPath);
    return { ...result, unmatchedStations };
  } finally {
    await rm(stagedPath, { force: true }).catch(() => undefined);
    const tables = [weekRejects, stations, csvRejects, `${csvRejects}_scan`];
    for (const table of tables) {
      if (table) await db.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    }
  }
}

/**
 * One row per non-empty group (or per line whose key cannot be trusted): its key, its typed
 * fields and, when it cannot be loaded, the reason (and the source line, for the rejects file).
 * `cutLine` is the number of a last line that had no newline (0 if none).
 */
function groupsQuery(lines: string, cutLine: number): string {
  return `
    WITH split AS (
      SELECT CAST(raw[:strpos(raw, ',') - 1] AS BIGINT) AS source_line,
             raw[strpos(raw, ',') + 1:] AS line,
             list_transform(string_split(raw[strpos(raw, ',') + 1:], ','), x -> trim(x)) AS f
      FROM ${lines}
    ),
    checked AS (
      SELECT source_line, line, f, len(f) AS n, ${LINE_PROBLEM} AS line_problem
      FROM split
    ),
    anchored AS (
      SELECT *, list_concat([4], list_filter(range(5, n + 1), i -> regexp_full_match(f[i], ${DATE_SHAPE}))) AS anchors
      FROM checked
    ),
    started AS (
      -- A line with a problem is one row (start 0), carrying the problem as its reason.
      SELECT *, CASE WHEN line_problem IS NULL THEN ${GROUP_STARTS} ELSE [0] END AS starts
      FROM anchored
    ),
    grouped AS (
      -- Unnests zip: each group's start, the next group's start (its end) and its position.
      SELECT source_line, line, f, n, line_problem,
             unnest(starts) AS s, unnest(list_concat(starts[2:], [n + 1])) AS e,
             unnest(range(1, len(starts) + 1)) AS g
      FROM started
    ),
    fields AS (
      SELECT source_line, line, line_problem, g, e - s AS width, e = n + 1 AS ends_line,
             f[1] AS control_area, f[2] AS unit, f[3] AS scp,
             f[s] AS date_text,
             CASE WHEN e - s > 1 THEN f[s + 1] END AS time_text,
             CASE WHEN e - s > 2 THEN f[s + 2] END AS desc_text,
             CASE WHEN e - s > 3 THEN f[s + 3] END AS entries_text,
             CASE WHEN e - s > 4 THEN f[s + 4] END AS exits_text
      FROM grouped
    ),
    typed AS (
      SELECT *,
        CASE WHEN regexp_full_match(date_text, '[0-9]{2}-[0-9]{2}-[0-9]{2}')
          -- %y would read 69-99 as 19YY: the legacy files span 2010-2014, so the century is 20.
          THEN CAST(try_strptime(date_text[1:6] || '20' || date_text[7:8], '%m-%d-%Y') AS DATE) END AS reading_date,
        CASE WHEN regexp_full_match(time_text, '[0-9]{2}:[0-9]{2}:[0-9]{2}')
          THEN CAST(try_strptime(time_text, '%H:%M:%S') AS TIME) END AS reading_time,
        CASE WHEN regexp_full_match(entries_text, '[0-9]+') THEN TRY_CAST(entries_text AS BIGINT) END AS entries,
        CASE WHEN regexp_full_match(exits_text, '[0-9]+') THEN TRY_CAST(exits_text AS BIGINT) END AS exits
      FROM fields
      -- A group of empty fields (trailing ",,,,,") holds nothing: neither a reading nor a reject,
      -- except a short one ending a line that had no newline (a download cut just after a comma).
      WHERE line_problem IS NOT NULL
         OR date_text <> '' OR time_text <> '' OR desc_text <> '' OR entries_text <> '' OR exits_text <> ''
         OR (source_line = ${cutLine} AND ends_line AND width < 5)
    ),
    reasoned AS (
      SELECT *, ${groupReason(cutLine)} AS reason FROM typed
    )
    SELECT source_line, control_area, unit, scp,
           reading_date + reading_time AS reading_at, NULLIF(desc_text, '') AS description,
           entries, exits, reason, CASE WHEN reason IS NOT NULL THEN rtrim(line) END AS line
    FROM reasoned`;
}

/**
 * Lines the CSV reader itself refused (not UTF-8, or holding the U+0001 used as the delimiter
 * to read lines whole), one reject per line whatever number of errors it logged.
 */
function unreadableLinesQuery(csvRejects: string): string {
  return `
    SELECT CAST(split_part(csv_line, ',', 1) AS BIGINT) AS source_line,
      'unreadable line: ' || min(CASE error_type WHEN 'TOO MANY COLUMNS' THEN 'it holds a U+0001 control character'
        ELSE lower(error_type) || ': ' || error_message END) AS reason,
      rtrim(substr(csv_line, strpos(csv_line, ',') + 1)) AS line
    FROM ${csvRejects} GROUP BY csv_line`;
}

/**
 * Why a whole line cannot be read (NULL when it can): too few fields, an empty key field, no
 * readings, or a first group that does not start with a date, which means the key itself lost
 * or gained a field (SCP is shaped like a date, so it cannot be told by its own look).
 */
const LINE_PROBLEM = `CASE
  WHEN len(f) < 3 THEN format('expected C/A,UNIT,SCP then groups of ${GROUP_FIELDS}, found {} fields', len(f))
  WHEN f[1] = '' OR f[2] = '' OR f[3] = '' THEN 'C/A, UNIT or SCP is empty'
  WHEN array_to_string(f[4:], '') = '' THEN 'no readings after C/A,UNIT,SCP'
  WHEN NOT regexp_full_match(f[4], ${DATE_SHAPE})
    THEN format('the field after C/A,UNIT,SCP is not a date (MM-DD-YY): "{}"', f[4])
  END`;

/**
 * Where each group starts (1-based field positions). Anchors are field 4 and every later field
 * shaped like a date; from each anchor, groups start every 5 fields until the next anchor (or
 * the end of the line). So every group has at most 5 fields, and one with fewer was cut short.
 */
const GROUP_STARTS = `flatten(list_transform(anchors,
    (anchor, j) -> range(anchor, coalesce(anchors[j + 1], n + 1), 5)))`;

/**
 * The fields of a complete group that do not type, named and worded as the modern converter
 * words them ('' when all type). DESC is free text: any value, or none, loads.
 */
const FIELD_PROBLEMS = `concat_ws('; ',
  CASE WHEN reading_date IS NULL THEN format('DATE is not a valid date (MM-DD-YY): "{}"', date_text) END,
  CASE WHEN reading_time IS NULL THEN format('TIME is not a valid time (HH:MM:SS): "{}"', time_text) END,
  CASE WHEN entries IS NULL
    THEN format('ENTRIES is not a valid counter (a whole number, not negative): "{}"', entries_text) END,
  CASE WHEN exits IS NULL
    THEN format('EXITS is not a valid counter (a whole number, not negative): "{}"', exits_text) END)`;

/**
 * A group's reject reason, or NULL when it loads. Positions past 8 are not refused: they arise
 * only around a stray field (itself a cut-short group), and each group is checked on its own.
 * The last group of a last line without a
 * newline is judged as the modern converter judges that line: fewer than 5 fields, or EXITS
 * shorter than ENTRIES (counters are zero-padded to one width), means the download was cut.
 */
function groupReason(cutLine: number): string {
  return `CASE
    WHEN line_problem IS NOT NULL THEN line_problem
    WHEN source_line = ${cutLine} AND ends_line AND (width < 5 OR length(exits_text) < length(entries_text))
      THEN format('group {}: the file ends inside this group (no newline, {}): cut-off download', g,
        CASE WHEN width < 5 THEN width || ' of 5 fields' ELSE 'EXITS shorter than ENTRIES' END)
    WHEN width < 5 THEN format('group {} is cut short: {} of 5 fields (${GROUP_FIELDS})', g, width)
    ELSE 'group ' || g || ': ' || NULLIF(${FIELD_PROBLEMS}, '')
  END`;
}
