/**
 * One exit-code scheme, handled as intended by every scheduler the project ships (README, "Exit
 * codes"; docs/deployment.md, "Exit codes per scheduler"): 2 (usage) is never retried, 3 (not
 * published yet) is retried later or left to the next run's catch-up without a loud failure,
 * 4 (suspect) waits for a person. Asserted from the files themselves: the Kubernetes failure
 * policies evaluated as the Job controller does, the GitHub step and the crontab's commands run
 * by a shell with a stand-in `docker` that exits with each code, Cloud Run's retries, and the
 * states the Prefect flow run is given.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.ts';
import { FlowRunReporter, failedStateName } from '../../src/prefect/flow-run-reporter.ts';
import type { PrefectClient } from '../../src/prefect/prefect-client.ts';
import type { RunSummary } from '../../src/pipeline/week-result.ts';
import { stateMessage } from '../../src/prefect/week-summary-markdown.ts';
import { K8S, WORKFLOWS, at, read, yamlDoc, type Doc } from '../support/harnesses/deploy-files.ts';

const { usage, notPublished, suspect, failed, interruptedBySigint, interruptedBySigterm } = ExitCode;

/** A folder with a `docker` that prints its arguments and a line, then exits with `code`. */
const scratch = mkdtempSync(join(tmpdir(), 'mta-ingest-exit-codes-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
function fakeDocker(code: number): string {
  const bin = join(scratch, `bin-${code}`);
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(
    join(bin, 'docker'),
    `#!/bin/sh\necho "docker $*" >>"${bin}/calls"\necho "report of exit ${code}"\nexit ${code}\n`,
  );
  chmodSync(join(bin, 'docker'), 0o755);
  return bin;
}

describe('Kubernetes: the failure policies, evaluated as the Job controller does', () => {
  /**
   * The action of the first rule whose exit codes match a container's exit (the pod-condition
   * rules match disruptions, not exits); no match is `Count`, a retry within the backoff limit.
   */
  const actionFor = (job: unknown, code: number): string => {
    const rules = at(job, 'podFailurePolicy', 'rules') as Doc[];
    for (const rule of rules) {
      const codes = rule.onExitCodes as
        { containerName: string; operator: string; values: number[] } | undefined;
      if (codes === undefined) continue;
      expect(codes.containerName).toBe('mta-ingest');
      const listed = codes.values.includes(code);
      if (codes.operator === 'In' ? listed : !listed) return rule.action as string;
    }
    return 'Count';
  };
  const weekly = at(yamlDoc(`${K8S}/weekly-cronjob.yaml`), 'spec', 'jobTemplate', 'spec') as Doc;
  const backfill = yamlDoc(`${K8S}/backfill/backfill-job.yaml`).spec as Doc;

  it('weekly: 2 and 4 fail the Job at once, 3 is retried later without counting, 1 and signals within backoffLimit', () => {
    expect(actionFor(weekly, usage)).toBe('FailJob');
    expect(actionFor(weekly, suspect)).toBe('FailJob');
    expect(actionFor(weekly, notPublished)).toBe('Ignore');
    for (const code of [failed, interruptedBySigint, interruptedBySigterm])
      expect(actionFor(weekly, code)).toBe('Count');
    // Counted retries are few; the uncounted "not yet" retries end with the Job's deadline.
    expect(weekly.backoffLimit).toBe(2);
    expect(weekly.activeDeadlineSeconds).toBeGreaterThanOrEqual(3600);
    expect(weekly.activeDeadlineSeconds).toBeLessThanOrEqual(6 * 3600);
  });

  it('backfill: 2 fails the whole Job, 3 (a past week never published) and 4 fail only their index', () => {
    expect(actionFor(backfill, usage)).toBe('FailJob');
    expect(actionFor(backfill, notPublished)).toBe('FailIndex');
    expect(actionFor(backfill, suspect)).toBe('FailIndex');
    for (const code of [failed, interruptedBySigint, interruptedBySigterm])
      expect(actionFor(backfill, code)).toBe('Count');
    expect(backfill.backoffLimitPerIndex).toBe(2);
  });
});

describe('GitHub Actions: the weekly workflow step, run by bash with a docker that exits with each code', () => {
  const workflow = yamlDoc(`${WORKFLOWS}/weekly.yml`);
  const script = String(
    (at(workflow, 'jobs', 'ingest', 'steps') as Doc[]).find((step) => step.name === 'Run the image')?.run,
  );

  const runStep = (code: number) => {
    const bin = fakeDocker(code);
    const summary = join(bin, 'summary.md');
    writeFileSync(summary, '');
    // How GitHub runs a `run` step without a `shell`: bash -e.
    const result = spawnSync('bash', ['-e', '-c', script], {
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        IMAGE: 'myorg/mta-ingest:0.1.0',
        GOOGLE_APPLICATION_CREDENTIALS: '/tmp/creds.json',
        GITHUB_WORKSPACE: scratch,
        GITHUB_STEP_SUMMARY: summary,
      },
      encoding: 'utf8',
    });
    return {
      ...result,
      summary: readFileSync(summary, 'utf8'),
      calls: readFileSync(join(bin, 'calls'), 'utf8'),
    };
  };

  it('0 passes quietly, and the container ran `run`', () => {
    const ok = runStep(0);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).not.toMatch(/^::(warning|error)/m);
    expect(ok.calls).toMatch(/^docker run --rm .* myorg\/mta-ingest:0\.1\.0 run$/m);
  });

  it('3 (not published yet) passes with a warning and a summary line: the next weekly run loads the week', () => {
    const notYet = runStep(notPublished);
    expect(notYet.status, notYet.stderr).toBe(0);
    expect(notYet.stdout).toMatch(
      /^::warning title=Not published yet \(exit 3\)::.*next weekly run loads it/m,
    );
    expect(notYet.summary).toMatch(/^Not published yet \(exit 3\)/);
  });

  it.each([
    [usage, /Bad arguments or settings \(exit 2\)::.*fails the same way/],
    [suspect, /Suspect week \(exit 4\)::.*--accept/],
    [failed, /A week failed \(exit 1\)::/],
    [interruptedBySigterm, /Stopped \(exit 143\)::/],
  ])('%i fails the step with its own code and an ::error:: that says what to do', (code, message) => {
    const result = runStep(code);
    expect(result.status).toBe(code);
    expect(result.stdout).toMatch(new RegExp(`^::error title=${message.source}`, 'm'));
  });
});

describe('cron: the crontab commands, run by sh with a docker that exits with each code', () => {
  /** The crontab's jobs: schedule fields cut off, as .ci/lint-deploy reads them. */
  const jobs = read('deployments/cron/mta-ingest.crontab')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#') && !/^[A-Z_]+=/.test(line))
    .map((line) => ({
      schedule: line.split(/\s+/).slice(0, 5).join(' '),
      command: line.split(/\s+/).slice(5).join(' '),
    }));
  const monitor = jobs.find((job) => job.command.includes('status --fail-if-behind'));

  it('has the weekly run and a daily freshness check', () => {
    expect(jobs.map((job) => job.schedule)).toEqual(['0 9 * * 0', '0 12 * * *']);
    expect(monitor?.command).toMatch(/ status --fail-if-behind 2 /);
  });

  it('the check prints (so cron mails) only when status fails: 6 behind, or 1 or 2, with the report', () => {
    const runMonitor = (code: number) =>
      spawnSync('sh', ['-c', monitor!.command], {
        env: { PATH: `${fakeDocker(code)}:/usr/bin:/bin`, HOME: scratch },
        encoding: 'utf8',
      });
    expect(runMonitor(0).stdout).toBe('');
    for (const code of [ExitCode.behind, failed, usage]) {
      const result = runMonitor(code);
      expect(result.stdout).toBe(
        `mta-ingest status exited ${code} (6: 2 or more weeks behind): report of exit ${code}\n`,
      );
    }
  });
});

describe('Cloud Run: no code is retried, so none is retried wrongly', () => {
  it('both jobs set max_retries = 0 and the docs say what follows for 2, 3 and 4', () => {
    const retries = [...read('terraform/cloud-run.tf').matchAll(/^\s*max_retries\s*=\s*(\S+)/gm)].map(
      (m) => m[1],
    );
    expect(retries).toEqual(['0', '0']);
    const table = read('docs/deployment.md').split('## Exit codes per scheduler')[1]?.split('\n## ')[0] ?? '';
    const cloudRun = table.split('\n').find((line) => line.startsWith('| Cloud Run'));
    expect(cloudRun).toMatch(/no retry/);
  });
});

describe('Prefect: the state a flow run ends in, by exit code', () => {
  const summary = (exitCode: number): RunSummary => ({
    runId: 'r',
    exitCode: exitCode as ExitCode,
    weeks: [],
  });
  const proposals = async (exitCode: number) => {
    const states: { type: string; name: string }[] = [];
    const client = {
      post: (path: string, body: { state?: { type: string; name: string } }) => {
        if (path.endsWith('/set_state') && body.state) states.push(body.state);
        return Promise.resolve({ status: 201, body: { status: 'ACCEPT', state: body.state, details: null } });
      },
      get: () => Promise.reject(new Error('not used')),
    } as unknown as PrefectClient;
    await new FlowRunReporter(client, 'run-1', () => undefined).finish(summary(exitCode), false);
    return states;
  };

  it('names the Failed state after the code: NotPublished (3), Suspect (4), Failed (1, 2); Completed for 0', async () => {
    expect(await proposals(0)).toEqual([expect.objectContaining({ type: 'COMPLETED', name: 'Completed' })]);
    expect(await proposals(notPublished)).toEqual([
      expect.objectContaining({ type: 'FAILED', name: 'NotPublished' }),
    ]);
    expect(await proposals(suspect)).toEqual([expect.objectContaining({ type: 'FAILED', name: 'Suspect' })]);
    expect(await proposals(usage)).toEqual([expect.objectContaining({ type: 'FAILED', name: 'Failed' })]);
    expect(failedStateName(failed)).toBe('Failed');
  });

  it("gives a suspect week's reason in the state message, as a failed or unpublished week's", () => {
    const week = { sourceUrl: 'u', bytes: 0, seconds: 0 };
    const message = stateMessage(
      {
        runId: 'r',
        exitCode: suspect,
        weeks: [
          { ...week, dropDate: '2023-05-27', outcome: 'suspect', detail: 'covers 420 of the 768 booths' },
          { ...week, dropDate: '2023-06-03', outcome: 'not-published', detail: 'HTTP 404' },
        ],
      },
      false,
    );
    expect(message).toBe(
      '2 weeks: 1 suspect, 1 not-published; 2023-05-27 suspect: covers 420 of the 768 booths; 2023-06-03 not-published: HTTP 404',
    );
  });

  it('neither deployment retries in Prefect (the next weekly run catches a late week up)', () => {
    for (const name of ['weekly', 'backfill']) {
      const deployment = JSON.parse(read(`deployments/prefect/deployment-${name}.json`)) as Doc;
      expect(JSON.stringify(deployment), name).not.toMatch(/retries/);
    }
  });
});
