/**
 * Local resource faults are not network faults. Real file systems, not injected errors: small
 * tmpfs mounts that fill up (ENOSPC) and read-only tmpfs mounts (EROFS; chmod would not stop
 * root, which these suites run as). Mounting needs root (CAP_SYS_ADMIN): without it the suite
 * is skipped, and says so.
 *
 * - Settings that can be checked up front (a work dir or lake folder that is a file, missing or
 *   read-only; a warehouse path that is a folder or not a DuckDB file) are exit 2 before any
 *   request, in one line naming the path and the cause.
 * - A disk that fills up mid-week fails that week at once, never retried as a network fault,
 *   with one line naming the path and the cause and advice about space, not "the network";
 *   nothing is half-written in the lake.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalResourceError } from '../../src/errors.ts';
import { fetchWeek } from '../../src/fetch/fetch-week.ts';
import { silentLogger } from '../../src/log.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { runCli, type CliResult } from '../support/harnesses/cli.ts';
import { query } from '../support/harnesses/duckdb-query.ts';
import { realWeekFile, WEEK, FILE, NOW } from '../support/fixtures/real-week.ts';
import { filesUnder } from '../support/fixtures/week-sample.ts';

let source: SourceServer;
let dir: string;
const mounts: string[] = [];

/** A tmpfs of `size` at a new folder under `dir` (read-only with `ro`); undefined without root. */
function mountTmpfs(name: string, options: string): string {
  const at = join(dir, name);
  execFileSync('mkdir', ['-p', at]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', at], { stdio: 'ignore' });
  mounts.push(at);
  return at;
}

const canMount = ((): boolean => {
  const probe = join(tmpdir(), `mta-ingest-mount-probe-${process.pid}`);
  try {
    execFileSync('mkdir', ['-p', probe]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('rm', ['-rf', probe]);
  }
})();

beforeAll(async () => {
  source = await startSourceServer({ files: [{ name: FILE, path: await realWeekFile() }] });
});
afterAll(() => source.close());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mta-ingest-local-faults-'));
  source.requests.length = 0;
  return async () => {
    for (const at of mounts.splice(0)) execFileSync('umount', [at]);
    await rm(dir, { recursive: true, force: true });
  };
});

/** The worker, with each path given (defaults: all under `dir`). */
function worker(paths: { workDir?: string; lake?: string; warehouse?: string } = {}): Promise<CliResult> {
  return runCli(
    [
      'run',
      '--date',
      WEEK,
      '--source-url',
      source.baseUrl,
      '--lake',
      paths.lake ?? join(dir, 'lake'),
      '--warehouse',
      paths.warehouse ?? join(dir, 'wh.duckdb'),
      '--work-dir',
      paths.workDir ?? dir,
    ],
    { env: { MTA_INGEST_NOW: NOW } },
  );
}

/** Exit 2, nothing asked of the source, one line on stderr matching `line`. */
function expectRefusedUpFront(result: CliResult, line: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(line);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(source.requests).toHaveLength(0);
}

describe('settings checked before anything is fetched: exit 2', () => {
  it('the work dir is a file', async () => {
    await writeFile(join(dir, 'a-file'), 'x');
    const result = await worker({ workDir: join(dir, 'a-file') });
    expectRefusedUpFront(
      result,
      /the work dir \S+\/a-file \(--work-dir, MTA_INGEST_WORK_DIR\) is a file, not a folder/,
    );
  });

  it('the work dir does not exist', async () => {
    const result = await worker({ workDir: join(dir, 'nowhere') });
    expectRefusedUpFront(result, /the work dir \S+\/nowhere .* does not exist/);
  });

  it('the lake is a file, or below one', async () => {
    await writeFile(join(dir, 'a-file'), 'x');
    expectRefusedUpFront(
      await worker({ lake: join(dir, 'a-file') }),
      /the lake \S+\/a-file \(--lake, MTA_INGEST_LAKE\) is a file, not a folder/,
    );
    expectRefusedUpFront(
      await worker({ lake: join(dir, 'a-file', 'lake') }),
      /the lake \S+\/a-file\/lake .*: \S+\/a-file is a file, not a folder/,
    );
    expect(await readFile(join(dir, 'a-file'), 'utf8')).toBe('x');
  });

  it('the warehouse is a folder', async () => {
    await mkdir(join(dir, 'wh-folder'));
    expectRefusedUpFront(
      await worker({ warehouse: join(dir, 'wh-folder') }),
      /the warehouse \S+\/wh-folder \(--warehouse, MTA_INGEST_WAREHOUSE\) is a folder, not a DuckDB database file/,
    );
  });

  it('the warehouse is a file that is not a DuckDB database: refused, and left as it was', async () => {
    const notDuckdb = 'date,value\n2023-06-03,1\n'.repeat(100);
    await writeFile(join(dir, 'wh.duckdb'), notDuckdb);
    expectRefusedUpFront(await worker(), /the warehouse \S+\/wh\.duckdb .* is not a DuckDB database/);
    expect(await readFile(join(dir, 'wh.duckdb'), 'utf8')).toBe(notDuckdb);
    expect(existsSync(join(dir, 'lake'))).toBe(false);
  });

  describe.skipIf(!canMount)('read-only file systems (a read-only tmpfs)', () => {
    it('the work dir', async () => {
      const readOnly = mountTmpfs('ro', 'ro,size=64k');
      expectRefusedUpFront(
        await worker({ workDir: readOnly }),
        /the work dir \S+\/ro .* is not writable: read-only file system \(EROFS\)/,
      );
    });

    it('the lake, existing or to be made inside it', async () => {
      const readOnly = mountTmpfs('ro', 'ro,size=64k');
      expectRefusedUpFront(
        await worker({ lake: readOnly }),
        /the lake \S+\/ro .* is not writable: read-only file system \(EROFS\)/,
      );
      expectRefusedUpFront(
        await worker({ lake: join(readOnly, 'lake') }),
        /the lake \S+\/ro\/lake .*: \S+\/ro is not writable: read-only file system \(EROFS\)/,
      );
    });

    it('the warehouse, a new file in a read-only folder', async () => {
      const readOnly = mountTmpfs('ro', 'ro,size=64k');
      expectRefusedUpFront(
        await worker({ warehouse: join(readOnly, 'wh.duckdb') }),
        /the warehouse \S+\/ro\/wh\.duckdb \(--warehouse, MTA_INGEST_WAREHOUSE\) is not writable: read-only file system \(EROFS\)/,
      );
    });
  });
});

describe.skipIf(!canMount)('a disk that fills up mid-week (a small tmpfs)', () => {
  const weekLine = (result: CliResult): string =>
    result.stdout.split('\n').find((l) => l.startsWith(WEEK)) ?? '';
  const warehouseRows = async (): Promise<number> => {
    if (!existsSync(join(dir, 'wh.duckdb'))) return 0;
    const [row] = await query(`SELECT count(*) AS n FROM turnstile_readings`, join(dir, 'wh.duckdb'));
    return Number(row!.n);
  };

  it('fetchWeek: a full spool disk is a LocalResourceError at once, not five network attempts', async () => {
    const full = mountTmpfs('full', 'size=1m');
    const error = await fetchWeek({
      url: `${source.baseUrl}/${FILE}`,
      spoolDir: full,
      policy: { timeoutMs: 10_000, attempts: 5, backoffMs: 1 },
      log: silentLogger,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LocalResourceError);
    expect((error as LocalResourceError).kind).toBe('disk-full');
    expect((error as Error).message).toBe(
      `writing the download to ${full} failed: no space left on the device (ENOSPC)`,
    );
    expect(source.requestsFor(FILE)).toHaveLength(1);
    // The spool was discarded: the disk is free again.
    expect(await filesUnder(full)).toEqual([]);
  });

  it('fetchWeek: a spool folder on a read-only file system, the same', async () => {
    const readOnly = mountTmpfs('ro', 'ro,size=64k');
    const error = await fetchWeek({
      url: `${source.baseUrl}/${FILE}`,
      spoolDir: readOnly,
      policy: { timeoutMs: 10_000, attempts: 5, backoffMs: 1 },
      log: silentLogger,
    }).then(
      () => undefined,
      (e: unknown) => e as LocalResourceError,
    );
    expect(error).toBeInstanceOf(LocalResourceError);
    expect(error!.kind).toBe('read-only');
    expect(error!.message).toBe(`writing the download to ${readOnly} failed: read-only file system (EROFS)`);
    expect(source.requestsFor(FILE)).toHaveLength(1);
  });

  it('the work dir fills up while the week downloads: failed once, the path and ENOSPC, advice about space', async () => {
    const work = mountTmpfs('work', 'size=4m');
    const result = await worker({ workDir: work });
    expect(result.code, result.stderr.slice(-2000)).toBe(1);
    const line = weekLine(result);
    expect(line).toMatch(/^2023-06-03\s+failed\s/);
    expect(line).toMatch(
      new RegExp(
        `writing the download to ${work}/mta-ingest-\\S+/${WEEK} failed: no space left on the device \\(ENOSPC\\)`,
      ),
    );
    expect(line).toMatch(
      /→ nothing was stored; a local disk is full \(the path is in the message\): free space there/,
    );
    expect(line).not.toMatch(/network|gave up after/);
    expect(source.requestsFor(FILE)).toHaveLength(1);
    expect(await filesUnder(join(dir, 'lake'))).toEqual([]);
    expect(await warehouseRows()).toBe(0);
    expect(await filesUnder(work)).toEqual([]);
  });

  it('the lake fills up while the week is stored: not committed, nothing half-written, advice about space', async () => {
    const lake = mountTmpfs('lake', 'size=1m');
    const result = await worker({ lake });
    expect(result.code, result.stderr.slice(-2000)).toBe(1);
    const line = weekLine(result);
    expect(line).toMatch(/^2023-06-03\s+failed\s/);
    expect(line).toMatch(new RegExp(`${lake}/\\S+.*(ENOSPC|no space left on (the )?device)`, 'i'));
    expect(line).toMatch(/→ the week is not committed \(no manifest\); a local disk is full/);
    expect(source.requestsFor(FILE)).toHaveLength(1);
    const left = await filesUnder(lake);
    expect(left.filter((key) => key.includes('.tmp-'))).toEqual([]);
    expect(left.filter((key) => key.includes('_manifests'))).toEqual([]);
    expect(await warehouseRows()).toBe(0);
  });

  it('the warehouse disk fills up as the week loads: the lake keeps the week, advice about space, a rerun elsewhere loads it', async () => {
    const small = mountTmpfs('wh', 'size=1m');
    const result = await worker({ warehouse: join(small, 'wh.duckdb') });
    expect(result.code, result.stderr.slice(-2000)).toBe(1);
    const line = weekLine(result);
    expect(line).toMatch(/^2023-06-03\s+failed\s/);
    expect(line).toMatch(new RegExp(`${small}/wh\\.duckdb.*No space left on device`));
    expect(line).toMatch(/→ the lake holds the week; a rerun loads it from there; a local disk is full/);
    expect(source.requestsFor(FILE)).toHaveLength(1);
    expect((await filesUnder(join(dir, 'lake'))).filter((key) => key.includes('_manifests'))).toHaveLength(1);

    const rerun = await worker({ warehouse: join(dir, 'wh.duckdb') });
    expect(rerun.code, rerun.stderr.slice(-2000)).toBe(0);
    expect(weekLine(rerun)).toMatch(/loaded\s+253,237 rows/);
    expect(await warehouseRows()).toBe(253_237);
  });
});
