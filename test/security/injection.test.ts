/**
 * Injection: SQL built from input, and names built from what the user typed.
 *
 * 1. An audit of src/: every `${…}` inside an SQL text (a template holding an SQL keyword) must
 *    be quoted (sqlString), a validated identifier (sqlIdentifier), a number or fixed text (by
 *    its type), a const or SQL builder made only of those, or one of the reviewed sites listed
 *    below with the reason it is safe. A new interpolation fails this test until it is one of
 *    those; a reviewed site that is gone fails it too, so the list stays true.
 * 2. Behaviour: odd values (quotes, semicolons, `../`, NUL, newline, escapes) in every name the
 *    user gives are refused (exit 2, one line) or handled safely: the week's objects are
 *    exactly its date-derived keys under the lake, and no file appears outside the places the
 *    flags name.
 */
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { startFakeGcs, type FakeGcs } from '../support/peers/fake-gcs.ts';
import { inProcess } from '../support/harnesses/in-process-cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { filesUnder, realLines, sourceText } from '../support/fixtures/week-sample.ts';
import { weekKeys } from '../../src/lake/lake-layout.ts';
import { WEEK, NOW } from '../support/fixtures/real-week.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

// ---------------------------------------------------------------- the SQL audit

/** A template literal is SQL when its fixed text holds one of these (upper case, as we write SQL). */
const SQL_KEYWORD =
  /\b(SELECT|INSERT|COPY|DELETE|UPDATE|CREATE|DROP|ALTER|ATTACH|DETACH|USE|FROM|WHERE|VALUES|CAST|CASE|JOIN|TABLE)\b/;

/**
 * Interpolations the rules cannot prove safe by themselves, each reviewed: `file|expression`
 * and why no user text can reach it. Mostly the parameters of our own SQL builders, whose
 * call sites the audit checks.
 */
const REVIEWED: Record<string, string> = {
  'convert/convert-week.ts|weekRejects':
    'createWeekRejects() returns sqlIdentifier(`week_rejects_${id}`) for a numeric id',
  'convert/convert-week.ts|rejectsTable':
    'parameter of csvRejectsQuery: its caller passes sqlIdentifier(...)',
  'convert/convert-week.ts|name': 'a column name from COLUMNS (the schema module), not input',
  'convert/legacy-layout.ts|weekRejects':
    'createWeekRejects() returns sqlIdentifier(`week_rejects_${id}`) for a numeric id',
  'convert/legacy-layout.ts|table':
    'one of [weekRejects, stations, csvRejects, csvRejects_scan]: all sqlIdentifier',
  'convert/legacy-layout.ts|csvRejects':
    'parameter of unreadableLinesQuery: its caller passes sqlIdentifier(...)',
  'convert/legacy-layout.ts|lines':
    'parameter of groupsQuery: its caller passes a read_csv over sqlString(path)',
  'convert/week-output.ts|weekRejects': 'parameter: a sqlIdentifier from createWeekRejects()',
  'schema/turnstile-schema.ts|c.name': 'a column name from COLUMNS',
  'schema/turnstile-schema.ts|expression':
    "duckdbSelectList's expressions: fixed SQL written by its callers, audited here",
  'schema/turnstile-schema.ts|table': 'TABLE_NAME by default; callers pass constants',
  "schema/turnstile-schema.ts|columns.join(',\\n')": 'column definitions built from COLUMNS',
  'convert/convert-week.ts|anyMissing':
    '`<column> IS NULL` joined with OR, for the REQUIRED columns of COLUMNS',
  'convert/convert-week.ts|missingList':
    'CASE WHEN <column> IS NULL THEN sqlString(<column>) END, for COLUMNS',
  'warehouse/duckdb/duckdb-warehouse.ts|where': 'a WHERE clause of fixed text with sqlString(dropDate)',
  'warehouse/intervals-view.ts|readingsTable':
    'TABLE_NAME, or `project.dataset.table` from parseBigQueryUri, whose regex allows no quote or backtick',
  'warehouse/intervals-view.ts|step':
    "parameter of flag()/value(): called with 'entries_step' or 'exits_step'",
  'warehouse/intervals-view.ts|seconds': 'one of two fixed expressions, by dialect',
  'warehouse/station-totals.ts|view':
    'parameter of topStationsQuery: INTERVALS_VIEW, or tableRef(target, INTERVALS_VIEW) (below)',
  'warehouse/bigquery/bigquery-load-state.ts|tableRef(target, LOADS_TABLE)':
    'a constant table of the dataset parseBigQueryUri accepted (its pattern allows no quote or backtick)',
  'warehouse/bigquery/bigquery-load-state.ts|tableRef(target, TABLE_NAME)':
    'a constant table of the dataset parseBigQueryUri accepted (its pattern allows no quote or backtick)',
  'warehouse/bigquery/bigquery-warehouse.ts|tableRef(this.target, TABLE_NAME)':
    'a constant table of the dataset parseBigQueryUri accepted (its pattern allows no quote or backtick)',
};

/** The expression inside parentheses, `as`, `!` and `satisfies`. */
function unwrap(node: ts.Expression): ts.Expression {
  let n = node;
  while (
    ts.isParenthesizedExpression(n) ||
    ts.isAsExpression(n) ||
    ts.isNonNullExpression(n) ||
    ts.isSatisfiesExpression(n) ||
    ts.isTypeAssertionExpression(n)
  ) {
    n = n.expression;
  }
  return n;
}

interface Site {
  key: string;
  /** Why it is safe: a rule, or 'reviewed'; undefined: not proven. */
  why: string | undefined;
}

/** Every interpolation in an SQL template in src/, classified. */
function sqlSites(): Site[] {
  const files = readdirSync(SRC, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(SRC, f));
  const program = ts.createProgram(files, {
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  });
  const checker = program.getTypeChecker();
  const inSrc = (node: ts.Node): boolean => resolve(node.getSourceFile().fileName).startsWith(SRC);

  /** Fixed by its type: numbers, bigints, booleans, string literals and unions of those. */
  function fixedType(type: ts.Type): boolean {
    if (type.isUnion()) return type.types.every(fixedType);
    const flags = ts.TypeFlags.NumberLike | ts.TypeFlags.BigIntLike | ts.TypeFlags.BooleanLike;
    return (
      (type.flags & flags) !== 0 || type.isStringLiteral() || (type.flags & ts.TypeFlags.Undefined) !== 0
    );
  }

  function declarationOf(node: ts.Node): ts.Declaration | undefined {
    let symbol = checker.getSymbolAtLocation(node);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    return symbol?.valueDeclaration ?? symbol?.declarations?.[0];
  }

  /** Why `node` cannot carry input into SQL, or undefined. `seen` stops cycles. */
  function safe(node: ts.Expression, seen = new Set<ts.Node>()): string | undefined {
    if (seen.has(node)) return undefined;
    seen.add(node);
    const n = unwrap(node);
    if (ts.isAwaitExpression(n)) return safe(n.expression, seen);
    if (fixedType(checker.getTypeAtLocation(n))) return 'number or fixed text';
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) return 'fixed text';
    if (ts.isTemplateExpression(n)) {
      return n.templateSpans.every((span) => safe(span.expression, seen)) ? 'built of safe parts' : undefined;
    }
    if (ts.isConditionalExpression(n)) {
      return safe(n.whenTrue, seen) && safe(n.whenFalse, seen) ? 'either of two safe values' : undefined;
    }
    if (ts.isCallExpression(n)) {
      const callee = n.expression.getText();
      if (callee === 'sqlString' || callee === 'sqlIdentifier') return `${callee}(...)`;
      const declaration = declarationOf(n.expression);
      // One of our own SQL builders (its own templates are audited), given only safe arguments.
      if (declaration && inSrc(declaration) && n.arguments.every((arg) => argumentSafe(arg, seen))) {
        return 'SQL builder of src/ with safe arguments';
      }
      return undefined;
    }
    if (ts.isIdentifier(n) || ts.isPropertyAccessExpression(n)) {
      const declaration = declarationOf(n);
      if (
        declaration &&
        ts.isVariableDeclaration(declaration) &&
        declaration.initializer &&
        ts.getCombinedNodeFlags(declaration) & ts.NodeFlags.Const
      ) {
        return safe(declaration.initializer, seen) ? 'a const of safe value' : undefined;
      }
    }
    return undefined;
  }

  function argumentSafe(arg: ts.Expression, seen: Set<ts.Node>): boolean {
    const n = unwrap(arg);
    if (ts.isObjectLiteralExpression(n)) {
      return n.properties.every((p) => ts.isPropertyAssignment(p) && safe(p.initializer, seen) !== undefined);
    }
    if (ts.isArrayLiteralExpression(n)) return n.elements.every((e) => safe(e, seen) !== undefined);
    // A connection handed to a builder carries no text.
    if (/DuckDBConnection/.test(checker.typeToString(checker.getTypeAtLocation(n)))) return true;
    return safe(n, seen) !== undefined;
  }

  const sites: Site[] = [];
  for (const file of program.getSourceFiles()) {
    if (!resolve(file.fileName).startsWith(SRC)) continue;
    const name = relative(SRC, file.fileName).split(sep).join('/');
    const visit = (node: ts.Node): void => {
      if (ts.isTemplateExpression(node)) {
        const text = [node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join('');
        if (SQL_KEYWORD.test(text)) {
          for (const span of node.templateSpans) {
            const key = `${name}|${span.expression.getText(file)}`;
            sites.push({ key, why: safe(span.expression) ?? (key in REVIEWED ? 'reviewed' : undefined) });
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  return sites;
}

describe('SQL built from input', () => {
  it('every interpolation into SQL in src/ is quoted, validated, fixed, or reviewed', () => {
    const sites = sqlSites();
    const unproven = sites.filter((s) => s.why === undefined).map((s) => s.key);
    expect(unproven, 'interpolations into SQL that are neither quoted, validated nor reviewed').toEqual([]);
    const stale = Object.keys(REVIEWED).filter(
      (key) => !sites.some((s) => s.key === key && s.why === 'reviewed'),
    );
    expect(stale, 'reviewed sites that no longer need review (remove them)').toEqual([]);
    // Not vacuous: the audit sees the SQL of the converter and both warehouses.
    expect(sites.length).toBeGreaterThan(60);
    const quoted = sites.filter((s) => /^sql(String|Identifier)/.test(s.why ?? ''));
    expect(quoted.length).toBeGreaterThan(15);
  });
});

// ---------------------------------------------------------------- names from input

const BUCKET = 'injection';
const ODD = {
  sql: "x'; DROP TABLE turnstile_readings; --",
  quote: 'q"uo\'te',
  semicolon: 'a;b',
  nul: 'a\u0000b',
  newline: 'a\nb',
  escape: 'a\u001b[2Jb',
  unicode: 'ünï–cødé ☃',
};

let source: SourceServer;
let gcs: FakeGcs;
let box: string;
/** Where a case's flags point unless it overrides one: box/in/{lake,wh.duckdb,work}. */
let inside: string;

beforeAll(async () => {
  source = await startSourceServer({
    files: [{ name: 'turnstile_230603.txt', content: sourceText(await realLines(300)) }],
  });
  gcs = await startFakeGcs({ buckets: [BUCKET] });
});
afterAll(async () => {
  await Promise.all([source.close(), gcs.stop()]);
});
beforeEach(async () => {
  box = await mkdtemp(join(tmpdir(), 'mta-ingest-injection-'));
  inside = join(box, 'in');
  await mkdir(join(inside, 'work'), { recursive: true });
  source.requests.length = 0;
  return () => rm(box, { recursive: true, force: true });
});

interface NameCase {
  name: string;
  /** Flags that replace the defaults (commander: the last one given wins). */
  flags: () => string[];
  /**
   * refused: exit 2, one line, nothing written, no request (a NUL in a local path may instead
   * fail the week, exit 1, when the file system turns it away: still nothing written).
   * safe: the run goes on, and writes only where the flags point.
   */
  expect: 'refused' | 'safe';
  /** For safe cases: the week's outcome (default loaded). */
  outcome?: 'loaded' | 'not-published';
  /** For safe cases: where the lake, warehouse and work dir really are. */
  lake?: () => string;
  warehouse?: () => string;
  /** A GCS prefix the week's objects must all be under. */
  gcsPrefix?: string;
}

const DATE_FLAGS = ['--date', '--from', '--to', '--year', '--month', '--day'];
const TRAVERSALS = [
  '../../../../etc/passwd',
  '2023-06-03/../../x',
  '..',
  '2023-06-03\u0000',
  '2023-06-03\n',
  ODD.sql,
];

const CASES: NameCase[] = [
  // Dates: only validated dates make names; everything else is refused.
  ...DATE_FLAGS.flatMap((flag) =>
    TRAVERSALS.map((value) => ({
      name: `${flag} ${JSON.stringify(value)}`,
      flags: () =>
        flag === '--date'
          ? [flag, value]
          : flag === '--to'
            ? ['--from', WEEK, flag, value]
            : flag === '--from'
              ? [flag, value]
              : flag === '--year'
                ? [flag, value]
                : flag === '--month'
                  ? ['--year', '2023', flag, value]
                  : ['--year', '2023', '--month', '6', flag, value],
      expect: 'refused' as const,
    })),
  ),
  ...['../../x', 'a/b', ODD.sql, ODD.nul, ODD.newline, 'UPPER'].map((value) => ({
    name: `--block ${JSON.stringify(value)}`,
    flags: () => ['--block', value],
    expect: 'refused' as const,
  })),
  // The DuckDB warehouse path: a file of exactly that name, or refused; never SQL.
  ...[ODD.sql, ODD.quote, ODD.semicolon, ODD.unicode].map((odd) => ({
    name: `--warehouse with ${JSON.stringify(odd)} in the file name`,
    flags: () => ['--warehouse', join(inside, `wh-${odd}.duckdb`)],
    expect: 'safe' as const,
    warehouse: () => join(inside, `wh-${odd}.duckdb`),
  })),
  {
    name: '--warehouse with ../ in the path lands where the path resolves',
    flags: () => ['--warehouse', join(inside, 'deep', '..', '..', 'in', 'wh2.duckdb')],
    expect: 'safe',
    warehouse: () => join(inside, 'wh2.duckdb'),
  },
  // A control character in any setting is refused (config.ts): never a real file name.
  ...[ODD.nul, ODD.newline, ODD.escape].map((odd) => ({
    name: `--warehouse with ${JSON.stringify(odd)} in the file name`,
    flags: () => ['--warehouse', join(inside, `wh-${odd}.duckdb`)],
    expect: 'refused' as const,
  })),
  ...[
    `mta${ODD.sql}`,
    'mta`x',
    'mta.x',
    '../mta',
    `mta${ODD.newline}`,
    `mta${ODD.nul}`,
    'mta?location=US;x',
  ].map((dataset) => ({
    name: `--warehouse bigquery://p/${JSON.stringify(dataset)}`,
    flags: () => ['--warehouse', `bigquery://project-x/${dataset}`],
    expect: 'refused' as const,
  })),
  // The local lake: a folder of exactly that name; object keys are the week's, inside it.
  ...[ODD.sql, ODD.quote, ODD.unicode].map((odd) => ({
    name: `--lake with ${JSON.stringify(odd)} in the folder name`,
    flags: () => ['--lake', join(inside, `lake-${odd}`)],
    expect: 'safe' as const,
    lake: () => join(inside, `lake-${odd}`),
  })),
  ...[ODD.nul, ODD.newline, ODD.escape].map((odd) => ({
    name: `--lake with ${JSON.stringify(odd)} in the folder name`,
    flags: () => ['--lake', join(inside, `lake-${odd}`)],
    expect: 'refused' as const,
  })),
  // The GCS lake: objects only under the prefix; no escaping it, no control characters.
  ...[ODD.sql, ODD.quote, ODD.semicolon, ODD.unicode, 'a#b?c'].map((odd, i) => ({
    name: `--lake gs:// prefix with ${JSON.stringify(odd)}`,
    flags: () => ['--lake', `gs://${BUCKET}/p${i}/${odd}`],
    expect: 'safe' as const,
    gcsPrefix: `p${i}/${odd}/`,
  })),
  ...['../x', 'a/../../x', 'a/./b', `a${ODD.newline}b`, `a${ODD.nul}b`, `a${ODD.escape}`].map((prefix) => ({
    name: `--lake gs:// prefix ${JSON.stringify(prefix)}`,
    flags: () => ['--lake', `gs://${BUCKET}/${prefix}`],
    expect: 'refused' as const,
  })),
  // The work dir: spooled under it, and nothing left there.
  ...[ODD.sql, ODD.unicode].map((odd) => ({
    name: `--work-dir with ${JSON.stringify(odd)}`,
    flags: () => ['--work-dir', join(inside, `work-${odd}`)],
    expect: 'safe' as const,
  })),
  ...[ODD.nul, ODD.newline].map((odd) => ({
    name: `--work-dir with ${JSON.stringify(odd)}`,
    flags: () => ['--work-dir', join(inside, `work-${odd}`)],
    expect: 'refused' as const,
  })),
  {
    name: '--work-dir that does not exist',
    flags: () => ['--work-dir', join(inside, 'no-such-folder')],
    expect: 'refused',
  },
  // The source URL: requests go where it says; names still come from the date.
  {
    name: `--source-url with "/a'b;c/../data/nyct/turnstile"`,
    flags: () => ['--source-url', `${new URL(source.baseUrl).origin}/a'b;c/../data/nyct/turnstile`],
    expect: 'safe',
  },
  {
    // URL parsing would drop the newline silently and fetch another address.
    name: '--source-url with a newline',
    flags: () => ['--source-url', `${new URL(source.baseUrl).origin}/data/nyct/turn\nstile`],
    expect: 'refused',
  },
  {
    name: '--source-url with a query and fragment: the file name lands in the fragment, a 404',
    flags: () => ['--source-url', `${source.baseUrl}/?q=${encodeURIComponent(ODD.sql)}#x`],
    expect: 'safe',
    outcome: 'not-published',
  },
  ...['file:///etc/passwd', `javascript:${ODD.sql}`, 'http://', `http:// ${ODD.sql}`].map((url) => ({
    name: `--source-url ${JSON.stringify(url)}`,
    flags: () => ['--source-url', url],
    expect: 'refused' as const,
  })),
];

describe('names from input', () => {
  const keys = weekKeys(WEEK);

  for (const c of CASES) {
    it(`${c.name}: ${c.expect}`, async () => {
      // Work dirs named by a case are made first (the worker needs the folder to exist).
      const workFlag = c.flags().indexOf('--work-dir');
      if (workFlag !== -1 && c.expect === 'safe') await mkdir(c.flags()[workFlag + 1]!, { recursive: true });
      const argv = [
        'run',
        '--date',
        WEEK,
        '--source-url',
        source.baseUrl,
        '--lake',
        join(inside, 'lake'),
        '--warehouse',
        join(inside, 'wh.duckdb'),
        '--work-dir',
        join(inside, 'work'),
        '--log-level',
        'silent',
        ...c.flags(),
      ];
      // 300 real lines are a deliberately partial week: accepted past the plausibility gate.
      const outcome = await inProcess(argv, {
        MTA_INGEST_NOW: NOW,
        MTA_INGEST_GCS_EMULATOR: gcs.url,
        MTA_INGEST_ACCEPT: 'all',
      });
      const shown = `${JSON.stringify(argv)}\n${outcome.stderr}`;
      const written = await filesUnder(box);

      if (c.expect === 'refused') {
        expect(outcome.code, shown).toBe(2);
        expect(outcome.stderr, shown).toMatch(/^mta-ingest: [^\n]*\n$/);
        expect(source.requests, shown).toEqual([]);
        expect(written, shown).toEqual([]);
        return;
      }

      const loaded = (c.outcome ?? 'loaded') === 'loaded';
      expect(outcome.code, shown).toBe(loaded ? 0 : 3);
      expect(outcome.stdout, shown).toMatch(
        loaded ? /^2023-06-03\s+loaded\s+300 rows/m : /^2023-06-03\s+not-published/m,
      );
      const lake = relative(box, c.lake?.() ?? join(inside, 'lake'))
        .split(sep)
        .join('/');
      const warehouse = relative(box, c.warehouse?.() ?? join(inside, 'wh.duckdb'))
        .split(sep)
        .join('/');
      const allowed = (file: string): boolean =>
        file.startsWith(`${lake}/`) || file === warehouse || file === `${warehouse}.wal`;
      expect(
        written.filter((file) => !allowed(file)),
        shown,
      ).toEqual([]);
      if (c.gcsPrefix === undefined) {
        const stored = written
          .filter((file) => file.startsWith(`${lake}/`))
          .map((file) => file.slice(lake.length + 1));
        // The current version under the week's keys, and its own copy under _versions/ (3 objects).
        const versions = stored.filter((file) => file.startsWith('turnstile/_versions/'));
        expect(versions.length, shown).toBe(loaded ? 3 : 0);
        expect(
          stored.filter((file) => !versions.includes(file)),
          shown,
        ).toEqual(loaded ? [keys.manifest, keys.parquet, keys.raw].sort() : []);
      } else {
        const [objects] = await new Storage({ apiEndpoint: gcs.url, projectId: 'test' })
          .bucket(BUCKET)
          .getFiles();
        const names = objects.map((o) => o.name).filter((n) => n.startsWith(c.gcsPrefix!.split('/')[0]!));
        const current = names.filter((n) => !n.includes('/_versions/'));
        expect(names.length - current.length, shown).toBe(3);
        expect(current.sort(), shown).toEqual(
          [keys.manifest, keys.parquet, keys.raw].map((k) => c.gcsPrefix + k).sort(),
        );
      }
      const [row] = await query(`SELECT count(*) AS n FROM turnstile_readings`, resolve(box, warehouse));
      expect(Number(row!.n), 'the warehouse holds the week: no SQL in a name ran').toBe(loaded ? 300 : 0);
    });
  }
});
