#!/usr/bin/env node
/**
 * Builds the package's JavaScript: src/ compiled by tsc (tsconfig.build.json) into a fresh dist/,
 * plus the reference files the code reads at run time (src/reference/ → dist/reference/), so
 * that dist/ stands in for src/ one folder below the package root and every path the code
 * resolves from import.meta.url lands where it does from src/. Node does not strip types under
 * node_modules, so the installed package runs dist/; the sources stay the truth and dev, tests
 * and CI run them directly.
 *
 *   npm run build       (also run by `npm ci` and `npm pack` through the `prepare` script)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');

/** Compiles src/ into dist/ (removed first: a deleted source leaves no stale .js behind). */
export function build(): void {
  rmSync(DIST, { recursive: true, force: true });
  // typescript's own bin script, on this Node: no PATH needed (`node scripts/build.ts` works too).
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) throw new Error(`build: ${tsc} is missing (run npm ci first)`);
  execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  cpSync(join(ROOT, 'src', 'reference'), join(DIST, 'reference'), { recursive: true });
  // npm marks a bin executable when it installs it; this is for running dist/cli.js in place.
  chmodSync(join(DIST, 'cli.js'), 0o755);
}

if (import.meta.main) {
  const start = performance.now();
  build();
  // On stderr: `npm pack --json` runs this (prepare) and its stdout must stay JSON.
  process.stderr.write(`built ${DIST} in ${((performance.now() - start) / 1000).toFixed(1)} s\n`);
}
