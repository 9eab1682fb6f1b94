/**
 * The live display as a person sees it: `mta-ingest run` in a real pseudo-terminal (tmux), with
 * a warning raised mid-run (the source answers 503 once, so the fetch retries while the status
 * line shows "fetching…"). What tmux's screen holds at the end is asserted: no raw JSON, the
 * warning as one short line above the week's line, the summary table whole. tmux renders the
 * terminal's escapes itself, so this checks the screen, not our reading of the bytes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';
import { CLI } from '../support/harnesses/cli.ts';
import { FILE, NOW, WEEK, realWeekFile } from '../support/fixtures/real-week.ts';

const exec = promisify(execFile);

/** Single-quoted for sh. */
const quote = (text: string): string => `'${text.replaceAll("'", `'\\''`)}'`;

/** Runs `argv` in a detached tmux session of `columns`, and returns the screen once it exits. */
async function onTerminal(
  socket: string,
  argv: string[],
  env: Record<string, string>,
  columns = 160,
): Promise<{ screen: string[]; code: number }> {
  const command = [
    'env',
    ...Object.entries(env).map(([name, value]) => quote(`${name}=${value}`)),
    ...argv.map(quote),
  ].join(' ');
  const tmux = (...args: string[]) =>
    exec('tmux', ['-S', socket, ...args], { env: { ...process.env, TERM: 'xterm' } });
  // The shell stays after the command, so that the pane (and its screen) outlives it.
  await tmux('new-session', '-d', '-x', String(columns), '-y', '50', `${command}; echo "EXIT=$?"; sleep 600`);
  try {
    for (let waited = 0; waited < 60_000; waited += 200) {
      const { stdout } = await tmux('capture-pane', '-p', '-J', '-S', '-200');
      const exit = /^EXIT=(\d+)$/m.exec(stdout);
      if (exit) {
        const screen = stdout.split('\n').map((line) => line.trimEnd());
        return {
          screen: screen.slice(
            0,
            screen.findIndex((line) => line.startsWith('EXIT=')),
          ),
          code: Number(exit[1]),
        };
      }
      await sleep(200);
    }
    throw new Error('the command did not end within 60 s');
  } finally {
    await tmux('kill-server').catch(() => undefined);
  }
}

describe('the live display in a real pseudo-terminal', () => {
  let server: SourceServer;
  let dir: string;
  beforeAll(async () => {
    server = await startSourceServer({ files: [{ name: FILE, path: await realWeekFile() }] });
    dir = await mkdtemp(join(tmpdir(), 'mta-ingest-pty-'));
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows a mid-run warning as a short line above the status line, never JSON, and the summary whole', async () => {
    server.fault(FILE, { kind: 'status', status: 503, times: 1 });
    const { screen, code } = await onTerminal(
      join(dir, 'tmux.sock'),
      [
        process.execPath,
        CLI,
        'run',
        '--date',
        WEEK,
        '--source-url',
        server.baseUrl,
        '--lake',
        join(dir, 'lake'),
        '--warehouse',
        join(dir, 'wh.duckdb'),
        '--fetch-backoff-ms',
        '300',
      ],
      { MTA_INGEST_NOW: NOW, MTA_INGEST_WORK_DIR: dir, MTA_INGEST_ACCEPT: 'all' },
    );
    const text = screen.join('\n');
    expect(code, text).toBe(0);
    expect(text).not.toMatch(/[{}]|"severity"/);
    const warning = screen.findIndex((line) => line.startsWith(`warning ${WEEK}: fetch attempt failed`));
    expect(warning, text).toBeGreaterThanOrEqual(0);
    expect(screen[warning]).toMatch(
      /^warning 2023-06-03: fetch attempt failed, retrying \(attempt 1\): .*503/,
    );
    // The status line was lifted, not overwritten: nothing is glued before or after the warning.
    expect(
      screen.filter((line) => line.includes('fetching…')),
      text,
    ).toEqual([]);
    const weekLine = screen.findIndex((line) => /^2023-06-03\s+loaded\s+253,237 rows/.test(line));
    expect(weekLine, text).toBeGreaterThan(warning);
    expect(screen.slice(weekLine + 1).filter((line) => line !== '')).toEqual([
      expect.stringMatching(/^Summary of run \d{8}T\d{6}Z-[0-9a-f]+$/) as string,
      '  loaded             1 week        253,237 rows     33.2 MB fetched',
      '  already-loaded     0 weeks',
      '  not-published      0 weeks',
      '  failed             0 weeks',
      expect.stringMatching(/^ {2}1 week in [\d.]+ s, exit code 0$/) as string,
    ]);
  });
});
