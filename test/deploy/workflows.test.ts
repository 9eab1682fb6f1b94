/**
 * The GitHub Actions workflows (.github/workflows/): CI, release and the weekly run, with the
 * weekly check of its variables run by bash against stand-ins. Parsed as what runs them reads
 * them (see test/support/harnesses/deploy-files.ts for the readers).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ROOT,
  read,
  type Doc,
  yamlDoc,
  at,
  WORKFLOWS,
  dockerfile,
} from '../support/harnesses/deploy-files.ts';

describe('GitHub Actions workflows', () => {
  const release = yamlDoc(`${WORKFLOWS}/release.yml`);
  const weekly = yamlDoc(`${WORKFLOWS}/weekly.yml`);
  const ci = yamlDoc(`${WORKFLOWS}/ci.yml`);
  const steps = (workflow: Doc): Doc[] =>
    Object.values(workflow.jobs as Record<string, Doc>).flatMap(
      (job) => (job.steps as Doc[] | undefined) ?? [],
    );
  const step = (workflow: Doc, action: string): Doc | undefined =>
    steps(workflow).find((s) => typeof s.uses === 'string' && s.uses.startsWith(`${action}@`));

  it('every workflow parses, and every action in it is pinned to a full commit SHA', () => {
    const files = readdirSync(join(ROOT, WORKFLOWS)).filter((name) => /\.ya?ml$/.test(name));
    expect(files.sort()).toEqual(['ci.yml', 'release.yml', 'weekly.yml']);
    for (const workflow of files.map((file) => yamlDoc(`${WORKFLOWS}/${file}`))) {
      expect(workflow.jobs).toEqual(expect.any(Object));
      for (const s of steps(workflow)) {
        if (s.uses !== undefined) expect(s.uses).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
      }
    }
  });

  it('release: on v* tags, logs in with the two secrets and pushes an amd64 + arm64 image', () => {
    // YAML's `on` is a plain key in YAML 1.2 (the yaml package's default).
    expect(at(release, 'on', 'push', 'tags')).toEqual(['v*']);
    for (const action of [
      'actions/checkout',
      'docker/setup-qemu-action',
      'docker/setup-buildx-action',
      'docker/metadata-action',
    ]) {
      expect(step(release, action), action).toBeDefined();
    }
    expect(step(release, 'docker/login-action')?.with).toMatchObject({
      username: '${{ secrets.DOCKERHUB_USERNAME }}',
      password: '${{ secrets.DOCKERHUB_TOKEN }}',
    });
    // The last build pushes (the first, for the smoke test, only loads the image).
    const build = steps(release)
      .filter((s) => String(s.uses).startsWith('docker/build-push-action@'))
      .at(-1)?.with as Doc;
    const platforms = String(build.platforms)
      .split(',')
      .map((p) => p.trim());
    expect(platforms).toEqual(expect.arrayContaining(['linux/amd64', 'linux/arm64']));
    expect(build.push).toBe(true);
    expect(build.tags).toBe('${{ steps.meta.outputs.tags }}');
    // metadata-action's labels would overwrite the Dockerfile's (licenses empty without a
    // LICENSE file): the Dockerfile's LABEL is the only source, filled by the build arguments.
    expect(build.labels).toBeUndefined();
    expect(JSON.stringify(release)).not.toContain('outputs.labels');
    // The Dockerfile's label arguments are filled in.
    const buildArgs = String(build['build-args']);
    for (const arg of dockerfile().args.filter((a) => a === 'VERSION' || a === 'REVISION')) {
      expect(buildArgs).toMatch(new RegExp(`^${arg}=\\S`, 'm'));
    }
  });

  it('weekly: on a Sunday schedule and by hand with backfill inputs, authenticated without keys', () => {
    expect(at(weekly, 'on', 'schedule')).toEqual([{ cron: '0 14 * * 0' }]);
    const inputs = at(weekly, 'on', 'workflow_dispatch', 'inputs') as Doc;
    // The Prefect backfill deployment's parameters, each the run flag of the same name.
    const backfill = JSON.parse(read('deployments/prefect/deployment-backfill.json')) as {
      parameter_openapi_schema: { properties: Record<string, unknown> };
    };
    expect(Object.keys(inputs).sort()).toEqual(
      Object.keys(backfill.parameter_openapi_schema.properties).sort(),
    );
    expect(Object.keys(inputs).sort()).toEqual([
      'date',
      'day',
      'force',
      'from',
      'missing',
      'month',
      'to',
      'week_of',
      'year',
    ]);
    expect(at(inputs, 'force', 'type')).toBe('boolean');
    expect(at(inputs, 'missing', 'type')).toBe('boolean');
    const run = String(steps(weekly).find((s) => s.name === 'Run the image')?.run);
    for (const name of Object.keys(inputs)) {
      const flag = `--${name.replace(/_/g, '-')}`;
      const variable = `$${name.toUpperCase()}`;
      const env = (at(weekly, 'jobs', 'ingest', 'env') as Doc)[name.toUpperCase()];
      expect(env, name).toBe(`\${{ inputs.${name} }}`);
      expect(run, name).toContain(
        at(inputs, name, 'type') === 'boolean' ? `args+=(${flag})` : `args+=(${flag} "${variable}")`,
      );
    }
    expect(at(weekly, 'permissions', 'id-token')).toBe('write');
    const auth = step(weekly, 'google-github-actions/auth')?.with as Doc;
    expect(Object.keys(auth).sort()).toEqual(['service_account', 'workload_identity_provider']);
    const text = read(`${WORKFLOWS}/weekly.yml`);
    expect(text).not.toMatch(/credentials_json|GOOGLE_CREDENTIALS/);
    // Inputs reach the script through env, never pasted into it (script injection).
    const scripts = steps(weekly)
      .map((s) => s.run)
      .filter((run): run is string => typeof run === 'string');
    expect(scripts.join('\n')).not.toMatch(/\$\{\{\s*(github\.event\.)?inputs\./);
    expect(scripts.join('\n')).toMatch(/docker run .*"\$IMAGE" "\$\{args\[@\]\}"/s);
    // Scheduled and manual runs in separate groups: a backfill queued by hand never replaces a
    // pending weekly run (nor the reverse), and each kind runs one at a time.
    expect(at(weekly, 'concurrency')).toEqual({
      group: '${{ github.workflow }}-${{ github.event_name }}',
      'cancel-in-progress': false,
    });
  });

  it('weekly: fails at once (::error::, exit 2) without an image, or without a block or both lake and warehouse', () => {
    const all = steps(weekly);
    const check = all[0]?.run;
    expect(check, 'the first step checks the variables').toEqual(expect.any(String));
    const auth = all.findIndex((s) => String(s.uses).startsWith('google-github-actions/auth@'));
    expect(auth).toBeGreaterThan(0);
    const jobEnv = at(weekly, 'jobs', 'ingest', 'env') as Doc;
    const names = ['IMAGE', 'MTA_INGEST_LAKE', 'MTA_INGEST_WAREHOUSE', 'MTA_INGEST_BLOCK'];
    expect(Object.keys(jobEnv)).toEqual(expect.arrayContaining(names));
    const cases: [Record<string, string>, number][] = [
      [{ IMAGE: 'img' }, 2],
      [{ IMAGE: 'img', MTA_INGEST_LAKE: 'gs://b/p' }, 2],
      [{ IMAGE: 'img', MTA_INGEST_WAREHOUSE: 'bigquery://p/d' }, 2],
      [{ MTA_INGEST_BLOCK: 'gcp-prod' }, 2],
      [{ IMAGE: 'img', MTA_INGEST_BLOCK: 'gcp-prod' }, 0],
      [{ IMAGE: 'img', MTA_INGEST_LAKE: 'gs://b/p', MTA_INGEST_WAREHOUSE: 'bigquery://p/d' }, 0],
    ];
    for (const [vars, status] of cases) {
      // An unset repository variable reaches the step as an empty string.
      const env = { PATH: process.env.PATH, ...Object.fromEntries(names.map((n) => [n, ''])), ...vars };
      // How GitHub runs a `run` step on Linux.
      const result = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', check as string], {
        env,
        encoding: 'utf8',
      });
      expect(result.status, JSON.stringify(vars)).toBe(status);
      if (status !== 0) expect(result.stdout, JSON.stringify(vars)).toMatch(/^::error::\S/m);
    }
  });

  it('ci: runs .ci/run', () => {
    expect(steps(ci).some((s) => s.run === '.ci/run')).toBe(true);
  });
});
