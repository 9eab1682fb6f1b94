/**
 * The exit code is the scheduler's only signal: its precedence, and refusals that must come
 * before any request. Each case here once survived a hand mutation of the code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor } from '../../src/commands/run.ts';
import type { WeekResult } from '../../src/pipeline/week-result.ts';
import { runCli } from '../support/harnesses/cli.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';

const week = (outcome: WeekResult['outcome']): WeekResult => ({
  dropDate: '2023-06-03',
  outcome,
  sourceUrl: 'http://127.0.0.1/x',
  bytes: 0,
  seconds: 0,
});

describe('exit code precedence', () => {
  it('signal, then failed, then suspect, then not published, then ok', () => {
    expect(exitCodeFor([week('loaded'), week('already-loaded')])).toBe(0);
    expect(exitCodeFor([week('not-published'), week('loaded')])).toBe(3);
    expect(exitCodeFor([week('not-published'), week('suspect')])).toBe(4);
    expect(exitCodeFor([week('suspect'), week('not-published')])).toBe(4);
    expect(exitCodeFor([week('not-published'), week('failed')])).toBe(1);
    expect(exitCodeFor([week('failed'), week('not-published')])).toBe(1);
    expect(exitCodeFor([week('suspect'), week('failed'), week('not-published')])).toBe(1);
    expect(exitCodeFor([week('interrupted'), week('skipped')])).toBe(1);
    expect(exitCodeFor([week('failed')], 'SIGTERM')).toBe(143);
    expect(exitCodeFor([week('loaded')], 'SIGINT')).toBe(130);
  });
});

describe('refused before any request', () => {
  let server: SourceServer;
  beforeAll(async () => {
    server = await startSourceServer({ files: [] });
  });
  afterAll(async () => {
    await server.close();
  });

  it("tomorrow's Saturday on a Friday afternoon in New York is the future: exit 2, no request", async () => {
    // Friday 2023-06-02 16:00 in New York (20:00 UTC): 2023-06-03 is tomorrow there.
    for (const args of [
      ['--date', '2023-06-03'],
      ['--year', '2023', '--month', '6', '--day', '3'],
    ]) {
      const result = await runCli(
        ['run', '--source-url', server.baseUrl, '--lake', '/nonexistent/lake', ...args],
        {
          env: { MTA_INGEST_NOW: '2023-06-02T20:00:00Z' },
        },
      );
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(/^mta-ingest: .*2023-06-03.*future.*\n$/);
    }
    expect(server.requests).toEqual([]);
  });
});
