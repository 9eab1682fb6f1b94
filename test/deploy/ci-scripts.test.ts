/**
 * The CI scripts (.ci/): install-test-servers' decisions (the Prefect venv), run by bash against
 * stand-ins. Parsed as what runs them reads them (see test/support/harnesses/deploy-files.ts for
 * the readers).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { read } from '../support/harnesses/deploy-files.ts';

describe('.ci/install-test-servers', () => {
  const writeExecutable = (path: string, text: string): void => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    chmodSync(path, 0o755);
  };

  it('Prefect: a venv whose pip does not run (a failed creation) is recreated with --clear; a good one is kept', () => {
    const script = read('.ci/install-test-servers');
    const start = script.indexOf('\n# Prefect, in a virtualenv');
    expect(start).toBeGreaterThan(0);
    // Up to the next section (sections are separated by a blank line and their comment).
    const end = script.indexOf('\n\n# ', start + 1);
    const section = script.slice(start, end > start ? end : undefined);
    const version = /^PREFECT_VERSION="([^"]+)"$/m.exec(section)?.[1];
    expect(version).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'install-test-servers-'));
    try {
      const log = join(dir, 'calls.log');
      const venv = join(dir, '.ci/.cache/prefect-venv');
      // What a failed `python3 -m venv` leaves (no ensurepip): bin/python runs, its pip does not.
      writeExecutable(
        join(venv, 'bin/python'),
        '#!/bin/sh\necho "broken-venv-python $*" >>"$LOG"\n[ "$1 $2" = "-m pip" ] && { echo "No module named pip" >&2; exit 1; }\nexit 0\n',
      );
      // A stand-in python3 (no network, no real Prefect): `-m venv [--clear] DIR` makes a venv
      // whose pip runs and whose `pip install` puts a `prefect` printing the pinned version.
      // Like a venv that cannot install pip, it keeps an existing bin/python unless --clear.
      const venvPython = [
        '#!/bin/sh',
        'echo "venv-python $*" >>"$LOG"',
        'if [ "$1 $2 $3" = "-m pip install" ]; then',
        `  printf '#!/bin/sh\\necho ${version}\\n' >"$(dirname "$0")/prefect"`,
        '  chmod +x "$(dirname "$0")/prefect"',
        'fi',
        'exit 0',
      ].join('\n');
      writeExecutable(
        join(dir, 'bin/python3'),
        [
          '#!/bin/sh',
          'echo "python3 $*" >>"$LOG"',
          'if [ "$1" = "--version" ]; then echo "Python 3.12.0"; exit 0; fi',
          '[ "$1 $2" = "-m venv" ] || exit 1',
          'shift 2',
          'if [ "$1" = "--clear" ]; then shift; rm -rf "$1"; fi',
          '[ -e "$1/bin/python" ] && exit 1',
          'mkdir -p "$1/bin"',
          `cat >"$1/bin/python" <<'EOF'\n${venvPython}\nEOF`,
          'chmod +x "$1/bin/python"',
        ].join('\n') + '\n',
      );
      const run = (): { status: number | null; out: string } => {
        const result = spawnSync('bash', ['-c', `set -euo pipefail\nroot='${dir}'\n${section}`], {
          env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, LOG: log },
          encoding: 'utf8',
        });
        return { status: result.status, out: result.stdout + result.stderr };
      };
      const calls = (): string[] =>
        existsSync(log)
          ? readFileSync(log, 'utf8')
              .trim()
              .split('\n')
              .filter((l) => l !== '')
          : [];

      let result = run();
      expect(result.status, result.out).toBe(0);
      expect(result.out).toContain(`prefect ${version}: installed in ${venv}`);
      expect(calls()).toContain(`python3 -m venv --clear ${venv}`);
      expect(calls()).toContain(
        `venv-python -m pip install --quiet --disable-pip-version-check prefect==${version}`,
      );

      // Installed: the next run does nothing.
      writeFileSync(log, '');
      result = run();
      expect(result.status, result.out).toBe(0);
      expect(result.out).toContain(`prefect ${version}: already installed`);
      expect(calls()).toEqual([]);

      // A venv whose pip runs but without Prefect is reused as it is.
      rmSync(join(venv, 'bin/prefect'));
      writeFileSync(log, '');
      result = run();
      expect(result.status, result.out).toBe(0);
      expect(calls().filter((call) => call.startsWith('python3 -m venv'))).toEqual([]);
      expect(calls()).toContain(
        `venv-python -m pip install --quiet --disable-pip-version-check prefect==${version}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
