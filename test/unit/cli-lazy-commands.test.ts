/**
 * The command line imports a command's modules only when that command runs (src/cli/commands.ts):
 * `--help` loads none, `plan` never loads the run's pipeline. Checked in a child process with a
 * module hook that records every module loaded, since this process has loaded them all.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = new URL('../../src/cli.ts', import.meta.url).href;
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The src/ modules (relative paths) loaded by `main(argv)` with discarded output. */
function modulesLoadedBy(argv: string[]): Promise<string[]> {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
    const { main } = await import(${JSON.stringify(CLI)});
    const sink = { write: () => true };
    await main(${JSON.stringify(argv)}, { stdout: sink, stderr: sink, env: {}, cwd: process.cwd() });
    process.stdout.write(JSON.stringify(loaded));
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], (error, stdout, stderr) => {
      if (error) return reject(new Error(`${error.message}\n${stderr}`));
      const urls = JSON.parse(stdout) as string[];
      resolve(
        urls
          .filter((url) => url.startsWith('file:'))
          .map((url) => fileURLToPath(url))
          .filter((path) => path.startsWith(SRC))
          .map((path) => path.slice(SRC.length)),
      );
    });
  });
}

describe('commands are imported lazily', () => {
  it('--help loads no command, no pipeline, no backend', async () => {
    const loaded = await modulesLoadedBy(['--help']);
    expect(loaded).toContain('cli/commands.ts');
    expect(
      loaded.filter((path) =>
        /^(commands\/(?!accept-env)|pipeline\/|lake\/|warehouse\/(?!warehouse\.ts)|prefect\/|metrics\/|demo\/demo-command)/.test(
          path,
        ),
      ),
    ).toEqual([]);
  });

  it('plan loads its command, never the run or its glue', async () => {
    const loaded = await modulesLoadedBy(['plan', '--lake', 'ftp://refused']);
    expect(loaded).toContain('commands/plan.ts');
    expect(loaded).not.toContain('commands/run.ts');
    expect(loaded).not.toContain('cli/run-action.ts');
    expect(loaded).not.toContain('metrics/publish-metrics.ts');
  });
});
