/**
 * The command our hints print is one the user can type: `mta-ingest` where their shell finds
 * it, `npx mta-ingest` after an `npm ci` install (the bin only in node_modules/.bin) or when npm
 * ran us (npm puts that folder on the PATH it hands us, not on the user's).
 */
import { describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { typedCommand } from '../../src/cli/invocation.ts';

describe('the command a hint prints', () => {
  it('is mta-ingest when an executable of that name is on PATH, else npx mta-ingest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'invocation-'));
    try {
      const empty = join(dir, 'empty');
      const bin = join(dir, 'bin');
      await mkdir(empty);
      await mkdir(bin);
      expect(typedCommand({ PATH: empty })).toBe('npx mta-ingest');
      expect(typedCommand({})).toBe('npx mta-ingest');
      await writeFile(join(bin, 'mta-ingest'), '#!/bin/sh\n');
      // A file that is not executable is not what a shell runs.
      expect(typedCommand({ PATH: `${empty}:${bin}` })).toBe('npx mta-ingest');
      await chmod(join(bin, 'mta-ingest'), 0o755);
      expect(typedCommand({ PATH: `${empty}:${bin}` })).toBe('mta-ingest');
      // Run by npx or an npm script: found on npm's PATH, not on the user's.
      expect(typedCommand({ PATH: bin, npm_command: 'exec' })).toBe('npx mta-ingest');
      expect(typedCommand({ PATH: bin, npm_command: 'run-script' })).toBe('npx mta-ingest');
      expect(typedCommand({ PATH: bin, npm_command: '' })).toBe('mta-ingest');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
