/**
 * Every --json document has one shape: an object whose `version` is the shape's version, with
 * lists under named fields, and numbers without float noise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JSON_VERSION, jsonDocument } from '../../src/json-document.ts';
import { main } from '../../src/cli.ts';

/** Every number in a parsed document, with its path. */
function numbersIn(value: unknown, path = '$'): [string, number][] {
  if (typeof value === 'number') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((item, i) => numbersIn(item, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => numbersIn(item, `${path}.${key}`));
  }
  return [];
}

describe('the --json writer', () => {
  it('puts the version first and rounds numbers that are not whole to 6 decimals', () => {
    const text = jsonDocument({
      seconds: 0.02208258699999999,
      share: 0.1 + 0.2,
      rows: 253_237,
      nested: [{ r: 1 / 3 }],
    });
    expect(Object.keys(JSON.parse(text) as object)[0]).toBe('version');
    expect(JSON.parse(text)).toEqual({
      version: JSON_VERSION,
      seconds: 0.022083,
      share: 0.3,
      rows: 253_237,
      nested: [{ r: 0.333333 }],
    });
    expect(text).not.toMatch(/\d\.\d{7,}/);
  });
});

describe('every command with --json', () => {
  it('prints one object with a version field, lists under named fields, numbers rounded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'json-shapes-'));
    try {
      const where = ['--lake', join(dir, 'lake'), '--warehouse', join(dir, 'w.duckdb')];
      const cli = async (...argv: string[]) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await main([...argv, ...where, '--json', '--log-level', 'silent'], {
          stdout: { write: (text: string) => out.push(text) },
          stderr: { write: (text: string) => err.push(text) },
          env: { MTA_INGEST_NOW: '2023-06-05T16:00:00Z' },
          cwd: dir,
        });
        return { code, doc: JSON.parse(out.join('')) as Record<string, unknown>, stderr: err.join('') };
      };
      const documents = {
        // A run that fails at once (nothing listens on port 9): its summary, still a document.
        run: await cli(
          'run',
          '--date',
          '2023-06-03',
          '--source-url',
          'http://127.0.0.1:9',
          '--fetch-attempts',
          '1',
        ),
        plan: await cli('plan', '--date', '2023-06-03'),
        status: await cli('status'),
        report: await cli('report', '--date', '2023-06-03'),
        verify: await cli('verify'),
        versions: await cli('versions', '--date', '2023-06-03'),
      };
      expect(documents.run.code).toBe(1);
      expect(documents.report.code).toBe(3);
      for (const [command, { doc }] of Object.entries(documents)) {
        expect(doc.version, command).toBe(JSON_VERSION);
        expect(Array.isArray(doc), command).toBe(false);
        for (const [path, n] of numbersIn(doc)) {
          expect(Math.round(n * 1e6) / 1e6, `${command} ${path}`).toBe(n);
        }
      }
      expect(documents.plan.doc).toMatchObject({ weeks: [{ dropDate: '2023-06-03' }] });
      expect(documents.versions.doc).toMatchObject({ versions: [] });
      expect(documents.run.doc).toMatchObject({ weeks: [{ outcome: 'failed' }], exitCode: 1 });
      const week = (documents.run.doc.weeks as { seconds: number }[])[0]!;
      // Seconds to the millisecond, at the source.
      expect(Math.round(week.seconds * 1000) / 1000).toBe(week.seconds);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
