/**
 * The deployment files, read as what runs them reads them: no Docker engine, cluster, GitHub or
 * Google Cloud is here, so each file is parsed and held to the settings that matter (the
 * schedule and its time zone, no overlapping runs, non-root, the fan-out count equal to the
 * completions, the image's entrypoint existing in the package, the terraform table equal to the
 * schema module, no lifecycle rule deleting live lake data, least-privilege roles, an
 * allow-list build context). Shell steps that decide something (the weekly workflow's check of
 * its variables, the Prefect install's venv decision) are run with bash against stand-ins.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  CLUSTER_COLUMNS,
  PARTITION_COLUMN,
  TABLE_NAME,
  bigquerySchema,
} from '../../src/schema/turnstile-schema.ts';
import { resolveDropDates, type DropDateSelection } from '../../src/dates/drop-dates.ts';
import { shareOf, taskShareFromEnv } from '../../src/dates/shard.ts';
import { TERRAFORM_SCHEMA_FILE, terraformSchemaJson } from '../../scripts/write-terraform-schema.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

// ---------------------------------------------------------------------------------------------
// YAML

type Doc = Record<string, unknown>;

/** Every document of a YAML file; fails the test on any parse error or warning. */
function yamlDocs(path: string): Doc[] {
  const docs = parseAllDocuments(read(path));
  if (!Array.isArray(docs)) throw new Error(`${path}: no YAML document`);
  for (const doc of docs) {
    expect(doc.errors, `${path}: ${doc.errors.map((e) => e.message).join('; ')}`).toEqual([]);
    expect(doc.warnings, `${path}: ${doc.warnings.map((w) => w.message).join('; ')}`).toEqual([]);
  }
  return docs.map((doc) => doc.toJS() as Doc);
}

function yamlDoc(path: string): Doc {
  const docs = yamlDocs(path);
  expect(docs, path).toHaveLength(1);
  return docs[0] as Doc;
}

/** A nested value by path, e.g. at(doc, 'spec', 'jobTemplate', 'spec'). */
function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

const K8S = 'deployments/kubernetes';
const WORKFLOWS = '.github/workflows';

describe('Kubernetes manifests', () => {
  const files = readdirSync(join(ROOT, K8S), { recursive: true, encoding: 'utf8' }).filter((name) =>
    /\.ya?ml$/.test(name),
  );
  const cronJob = yamlDoc(`${K8S}/weekly-cronjob.yaml`);
  const backfill = yamlDoc(`${K8S}/backfill/backfill-job.yaml`);
  const configMap = yamlDoc(`${K8S}/configmap.yaml`);
  const serviceAccount = yamlDoc(`${K8S}/serviceaccount.yaml`);
  const cronPod = at(cronJob, 'spec', 'jobTemplate', 'spec', 'template', 'spec') as Doc;
  const backfillPod = at(backfill, 'spec', 'template', 'spec') as Doc;

  it('every manifest parses as YAML with an apiVersion and a kind', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const file of files) {
      for (const doc of yamlDocs(`${K8S}/${file}`)) {
        expect(doc.apiVersion, file).toEqual(expect.any(String));
        expect(doc.kind, file).toEqual(expect.any(String));
      }
    }
  });

  it('the weekly CronJob runs `run` on Sunday 09:00 New York time, never two at once', () => {
    expect(cronJob).toMatchObject({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      spec: { schedule: '0 9 * * 0', timeZone: 'America/New_York', concurrencyPolicy: 'Forbid' },
    });
    expect(at(cronJob, 'spec', 'jobTemplate', 'spec', 'backoffLimit')).toEqual(expect.any(Number));
    expect(cronPod.restartPolicy).toBe('Never');
    const container = at(cronPod, 'containers', 0) as Doc;
    expect(container.args).toEqual(['run']);
    expect(container.command).toBeUndefined(); // the image's entrypoint is the CLI
  });

  it('the backfill is an Indexed Job whose MTA_INGEST_TASK_COUNT equals its completions', () => {
    expect(backfill).toMatchObject({
      apiVersion: 'batch/v1',
      kind: 'Job',
      spec: { completionMode: 'Indexed' },
    });
    const spec = backfill.spec as Doc;
    const completions = spec.completions as number;
    expect(completions).toBeGreaterThan(1);
    expect(spec.parallelism).toBeLessThanOrEqual(completions);
    const container = at(backfillPod, 'containers', 0) as Doc;
    const env = container.env as { name: string; value: string }[];
    const count = env.find((e) => e.name === 'MTA_INGEST_TASK_COUNT');
    expect(count?.value, 'MTA_INGEST_TASK_COUNT').toBe(String(completions));

    // The pods, as Kubernetes starts them (JOB_COMPLETION_INDEX 0..completions-1), take
    // disjoint shares that together are every date the arguments select.
    const args = container.args as string[];
    expect(args[0]).toBe('run');
    const selection = selectionOf(args.slice(1));
    const now = new Date('2026-01-05T12:00:00Z');
    const dates = resolveDropDates(selection, now);
    const taken: string[] = [];
    for (let index = 0; index < completions; index++) {
      const share = taskShareFromEnv({
        JOB_COMPLETION_INDEX: String(index),
        MTA_INGEST_TASK_COUNT: count?.value,
      });
      expect(share).toEqual({ index, count: completions });
      taken.push(...shareOf(dates, share!));
    }
    expect(taken.sort()).toEqual(dates);
  });

  it('pods run as the image’s non-root user, without privileges, within resource limits', () => {
    const dockerUser = dockerfile().user;
    for (const pod of [cronPod, backfillPod]) {
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: Number(dockerUser.split(':')[0]),
      });
      expect((pod.securityContext as Doc).runAsUser).not.toBe(0);
      const container = at(pod, 'containers', 0) as Doc;
      expect(container.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(at(container, 'resources', 'requests', 'memory')).toEqual(expect.any(String));
      expect(at(container, 'resources', 'limits', 'memory')).toEqual(expect.any(String));
      // A read-only root: the spool folder must be a volume.
      expect(container.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/tmp' }));
      expect(container.envFrom).toContainEqual({ configMapRef: { name: at(configMap, 'metadata', 'name') } });
      expect(pod.serviceAccountName).toBe(at(serviceAccount, 'metadata', 'name'));
    }
  });

  it('the ConfigMap names the lake and the warehouse, and no task count (it is shared with the CronJob)', () => {
    const data = configMap.data as Record<string, string>;
    expect(data.MTA_INGEST_LAKE).toMatch(/^gs:\/\//);
    expect(data.MTA_INGEST_WAREHOUSE).toMatch(/^bigquery:\/\//);
    expect(Object.keys(data).filter((key) => /TASK|SECRET|KEY|TOKEN|CREDENTIAL/.test(key))).toEqual([]);
    // With no index, a count alone is refused: the CronJob would fail every week.
    expect(taskShareFromEnv(data)).toBeUndefined();
  });

  it('a pod disrupted by a node drain or preemption is retried without counting against the backoff limits', () => {
    for (const job of [at(cronJob, 'spec', 'jobTemplate', 'spec'), backfill.spec]) {
      const rules = at(job, 'podFailurePolicy', 'rules') as Doc[];
      // The first matching rule wins, so it must come before the exit-code rules.
      expect(rules[0]).toEqual({
        action: 'Ignore',
        onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }],
      });
      expect(rules.length).toBeGreaterThan(1);
    }
  });

  it('the service account maps to a Google service account through Workload Identity', () => {
    expect(at(serviceAccount, 'metadata', 'annotations', 'iam.gke.io/gcp-service-account')).toMatch(
      /^[a-z][a-z0-9-]+@[A-Za-z0-9-]+\.iam\.gserviceaccount\.com$/,
    );
  });

  it('kustomization lists the standing resources, which exist, and not the one-off backfill Job', () => {
    const kustomization = yamlDoc(`${K8S}/kustomization.yaml`);
    const resources = kustomization.resources as string[];
    for (const resource of resources) expect(existsSync(join(ROOT, K8S, resource)), resource).toBe(true);
    expect(resources).toContain('weekly-cronjob.yaml');
    expect(resources.some((resource) => resource.includes('backfill'))).toBe(false);
  });
});

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
    expect(Object.keys(inputs).sort()).toEqual(['day', 'force', 'month', 'year']);
    expect(at(inputs, 'force', 'type')).toBe('boolean');
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

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Dockerfile {
  from: string[];
  user: string;
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  args: string[];
  argDefaults: Record<string, string>;
  env: string[];
  runs: string[];
  copies: string[];
  labels: string;
}

/** The Dockerfile's instructions (continuations joined, comments dropped). */
function dockerfile(): Dockerfile {
  const instructions = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, keyword = '', rest = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
      return { keyword: keyword.toUpperCase(), rest };
    });
  const all = (keyword: string): string[] =>
    instructions.filter((i) => i.keyword === keyword).map((i) => i.rest);
  const last = (keyword: string): string => all(keyword).at(-1) ?? '';
  const argDefaults: Record<string, string> = {};
  for (const arg of all('ARG')) {
    const [name = '', value] = arg.split('=', 2);
    if (value !== undefined && !(name in argDefaults)) argDefaults[name] = value.replace(/^"|"$/g, '');
  }
  return {
    from: all('FROM'),
    user: last('USER'),
    entrypoint: JSON.parse(last('ENTRYPOINT')) as string[],
    cmd: JSON.parse(last('CMD')) as string[],
    workdir: last('WORKDIR'),
    args: all('ARG').map((arg) => arg.split('=')[0] ?? ''),
    argDefaults,
    env: all('ENV'),
    runs: all('RUN'),
    copies: all('COPY'),
    labels: all('LABEL').join(' '),
  };
}

/**
 * Whether Docker leaves `path` (relative to the context) out of the build context: the last
 * .dockerignore pattern that matches the path or one of its parent folders decides, `!` keeps.
 * `*` and `?` stay within a path segment, `**` spans any number of them.
 */
function dockerIgnored(patterns: string[], path: string): boolean {
  const parts = path.split('/');
  let ignored = false;
  for (const line of patterns) {
    const keep = line.startsWith('!');
    const pattern = (keep ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const source = pattern
      .split(/(\*\*\/?|\*|\?)/)
      .map((token) => {
        if (token === '**/') return '(?:.*/)?';
        if (token === '**') return '.*';
        if (token === '*') return '[^/]*';
        if (token === '?') return '[^/]';
        return token.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      })
      .join('');
    const regex = new RegExp(`^${source}$`);
    if (parts.some((_, i) => regex.test(parts.slice(0, i + 1).join('/')))) ignored = !keep;
  }
  return ignored;
}

describe('Dockerfile', () => {
  const docker = dockerfile();
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; files: string[] };
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string }> };

  it('builds on slim Debian (glibc) Node, pinned to the Node the tests run on', () => {
    const nodeVersion = docker.argDefaults.NODE_VERSION;
    // The `node` dev dependency gives dev machines and tests their Node; the image runs the same.
    expect(nodeVersion).toBe(lock.packages['node_modules/node']?.version);
    expect(nodeVersion).toMatch(/^24\.\d+\.\d+$/);
    expect(docker.from.length).toBeGreaterThanOrEqual(3); // multi-stage
    for (const from of docker.from) {
      expect(from).toMatch(
        /^(--platform=\$BUILDPLATFORM )?(node:\$\{NODE_VERSION\}-bookworm-slim|base) AS \w+$/,
      );
    }
    expect(docker.from.at(-1)).toBe('base AS runtime');
  });

  it('installs production dependencies only, from the lock file; dev ones only to build the package', () => {
    expect(docker.copies).toContain('package.json package-lock.json ./');
    // The deps stage: production dependencies, which alone reach the image.
    expect(docker.runs.some((run) => /(^|&& )npm ci --omit=dev --ignore-scripts\b/.test(run))).toBe(true);
    expect(docker.copies.filter((c) => c.includes('node_modules'))).toEqual([
      '--from=deps /app/node_modules /app/node_modules',
    ]);
    // The package stage: every dependency (TypeScript builds dist/), without their install scripts,
    // then `npm pack` with the package's own scripts (prepare builds dist/).
    expect(docker.runs.some((run) => /(^|&& )npm ci --ignore-scripts\b/.test(run))).toBe(true);
    expect(docker.runs.some((run) => /^npm pack\b/.test(run) && !run.includes('--ignore-scripts'))).toBe(
      true,
    );
    expect(docker.runs.join('\n')).not.toMatch(/npm (install|i)\b/);
  });

  it('takes the build-time CA only as a secret mount, never as an argument or environment', () => {
    const installs = docker.runs.filter((r) => /\bnpm ci\b/.test(r));
    expect(installs).toHaveLength(2);
    for (const run of installs) expect(run).toMatch(/^--mount=type=secret,id=ca /);
    expect(docker.args.join(' ')).not.toMatch(/CA|CERT/i);
    expect(docker.env.join(' ')).not.toMatch(/CA_CERTS|SSL_CERT/);
  });

  it('runs as a non-root user, tini then the CLI as entrypoint and the weekly `run` as default command', () => {
    expect(docker.user).toBe('1000:1000');
    expect(docker.entrypoint).toEqual(['tini', '--', 'node', '/app/dist/cli.js']);
    expect(docker.runs.some((run) => /apt-get install -y --no-install-recommends tini=/.test(run))).toBe(
      true,
    );
    expect(docker.cmd).toEqual(['run']);
    expect(docker.workdir).toBe('/work');
    // The entrypoint's script is the package's bin, inside the package (copied to /app), built
    // from its source by `npm pack` in the image build.
    const script = docker.entrypoint[3]?.replace(/^\/app\//, '');
    expect(script).toBe(pkg.bin['mta-ingest']);
    expect(pkg.files.some((entry) => script?.startsWith(entry))).toBe(true);
    const source = script?.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts');
    expect(existsSync(join(ROOT, source ?? ''))).toBe(true);
  });

  it('sets NODE_ENV=production and never METADATA_SERVER_DETECTION or any setting', () => {
    expect(docker.env).toEqual(['NODE_ENV=production']);
    expect(read('Dockerfile')).not.toMatch(/^\s*ENV\s+.*METADATA_SERVER_DETECTION/m);
  });

  it('carries the OCI labels, version and revision from build arguments', () => {
    for (const label of ['title', 'description', 'licenses', 'source', 'created']) {
      expect(docker.labels).toContain(`org.opencontainers.image.${label}=`);
    }
    expect(docker.labels).toContain('org.opencontainers.image.version="${VERSION}"');
    expect(docker.labels).toContain('org.opencontainers.image.revision="${REVISION}"');
    expect(docker.args).toEqual(expect.arrayContaining(['VERSION', 'REVISION']));
  });

  it('.dockerignore is an allow-list: the package and lock file in, secrets and everything else out', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(patterns[0]).toBe('*');
    const ignored = (path: string): boolean => dockerIgnored(patterns, path);
    // What the Dockerfile copies from the context, and what `npm pack` (COPY . .) reads and
    // builds dist/ from (the sources, the tsconfig files, scripts/).
    const kept = ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json'];
    for (const dir of ['src', 'scripts']) {
      kept.push(dir);
      for (const file of readdirSync(join(ROOT, dir), { recursive: true }))
        kept.push(`${dir}/${String(file)}`);
    }
    for (const copy of docker.copies.filter((c) => !c.startsWith('--from'))) {
      kept.push(
        ...copy
          .split(/\s+/)
          .slice(0, -1)
          .filter((source) => source !== '.'),
      );
    }
    // dist/ is built inside the image build, from the sources: a host's dist/ stays out.
    for (const entry of pkg.files.filter((f) => f !== 'dist/')) {
      const dir = entry.replace(/\/$/, '');
      kept.push(dir);
      for (const file of readdirSync(join(ROOT, dir), { recursive: true }))
        kept.push(`${dir}/${String(file)}`);
    }
    expect(kept.length).toBeGreaterThan(20);
    for (const path of kept) expect(ignored(path), `${path} is left out of the build context`).toBe(false);
    const leaked = [
      'key.json',
      '.env',
      '.env.production',
      '.npmrc',
      'gha-creds-0123456789abcdef.json',
      'secrets/key.json',
      'node_modules/@duckdb/node-bindings-linux-x64/duckdb.node',
      'data/warehouse.duckdb',
      '.git/config',
      '.github/workflows/ci.yml',
      '.ci/.cache/bin/fake-gcs-server',
      'coverage/index.html',
      'test/deploy/deploy-files.test.ts',
      'terraform/main.tf',
      'deployments/kubernetes/backfill/backfill-job.yaml',
      'deployments/cron/README.md',
      'Dockerfile',
      'mta-ingest-0.1.0.tgz',
      'src/node_modules/x/index.js',
      'src/.env',
      'blocks/.npmrc',
      'npm-debug.log',
      'dist/cli.js',
    ];
    for (const path of leaked) expect(ignored(path), `${path} reaches the build context`).toBe(true);
    // Everything at the top of this checkout but the allowed names stays out.
    const allowed = new Set([
      'package.json',
      'package-lock.json',
      'README.md',
      'tsconfig.json',
      'tsconfig.build.json',
      'scripts',
      'src',
      'blocks',
      'deployments',
    ]);
    for (const name of readdirSync(ROOT)) {
      if (!allowed.has(name)) expect(ignored(name), `${name} reaches the build context`).toBe(true);
    }
  });

  it('.gitignore keeps the auth action’s credential files out of git', () => {
    expect(read('.gitignore').split('\n')).toContain('gha-creds-*.json');
  });
});

// ---------------------------------------------------------------------------------------------
// terraform

/** The body of each `kind "label" ... {` block at the top level of `text`, by its labels. */
function hclBlocks(text: string, kind: string, type?: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const header = new RegExp(`^${kind}((?:\\s+"[^"]*")*)\\s*\\{`, 'gm');
  for (const match of text.matchAll(header)) {
    const labels = [...(match[1] ?? '').matchAll(/"([^"]*)"/g)].map((m) => m[1]);
    if (type !== undefined && labels[0] !== type) continue;
    blocks.set(labels.join('.'), bodyFrom(text, (match.index ?? 0) + match[0].length));
  }
  return blocks;
}

/** The text up to the brace closing the one opened just before `start` (strings skipped). */
function bodyFrom(text: string, start: number): string {
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return text.slice(start, i);
  }
  throw new Error('unbalanced braces');
}

/** The bodies of the blocks named `name` at any depth of `body` (plain or `dynamic "name"`). */
function nestedBlocks(body: string, name: string): string[] {
  const header = new RegExp(`(?:^|\\s)(?:dynamic\\s+"${name}"|${name})\\s*\\{`, 'g');
  return [...body.matchAll(header)].map((match) => bodyFrom(body, (match.index ?? 0) + match[0].length));
}

/** `name = value` at any depth of a body, values as written. */
function attributes(body: string, name: string): string[] {
  return [...body.matchAll(new RegExp(`^\\s*${name}\\s*=\\s*(.+?)\\s*$`, 'gm'))].map((m) => m[1] ?? '');
}

const attribute = (body: string, name: string): string | undefined => attributes(body, name)[0];

describe('terraform', () => {
  const tf = readdirSync(join(ROOT, 'terraform'))
    .filter((name) => name.endsWith('.tf'))
    .map((name) => read(`terraform/${name}`))
    .join('\n');
  const main = read('terraform/main.tf');
  const resource = (type: string, name: string): string => {
    const body = hclBlocks(tf, 'resource', type).get(`${type}.${name}`);
    if (body === undefined) throw new Error(`no resource ${type}.${name}`);
    return body;
  };

  it('the committed table schema is exactly what scripts/write-terraform-schema.ts writes from the module', () => {
    const committed = readFileSync(TERRAFORM_SCHEMA_FILE, 'utf8');
    expect(committed).toBe(terraformSchemaJson());
    expect(JSON.parse(committed)).toEqual(bigquerySchema().fields);
  });

  it("main.tf's table is the module's: name, schema file, DAY partitions on the partition column, clustering", () => {
    const table = hclBlocks(main, 'resource', 'google_bigquery_table').get(
      'google_bigquery_table.turnstile_readings',
    );
    expect(table).toBeDefined();
    expect(attribute(table!, 'table_id')).toBe(JSON.stringify(TABLE_NAME));
    expect(attribute(table!, 'schema')).toBe('file("${path.module}/turnstile_readings.schema.json")');
    const [partitioning, ...more] = nestedBlocks(table!, 'time_partitioning');
    expect(partitioning).toBeDefined();
    expect(more).toEqual([]);
    expect(attribute(partitioning!, 'type')).toBe('"DAY"');
    expect(attribute(partitioning!, 'field')).toBe(JSON.stringify(PARTITION_COLUMN));
    expect(JSON.parse(attribute(table!, 'clustering') ?? 'null')).toEqual(CLUSTER_COLUMNS);
    expect(attribute(table!, 'deletion_protection')).toBe('true');
  });

  it('enables the APIs the worker, Cloud Run, the scheduler and the token exchanges call', () => {
    const apis = resource('google_project_service', 'apis');
    const services = [...apis.matchAll(/"([a-z]+\.googleapis\.com)"/g)].map((m) => m[1]);
    expect(services.sort()).toEqual([
      'bigquery.googleapis.com',
      'cloudscheduler.googleapis.com',
      'iam.googleapis.com',
      // google-github-actions/auth with service_account, and GKE Workload Identity, mint the
      // worker's tokens through IAM Credentials; STS exchanges GitHub's OIDC token.
      'iamcredentials.googleapis.com',
      'run.googleapis.com',
      'storage.googleapis.com',
      'sts.googleapis.com',
    ]);
    expect(attribute(apis, 'disable_on_destroy')).toBe('false');
  });

  it('the bucket: uniform access, versioning, public access prevented, and no rule deleting live objects', () => {
    const bucket = resource('google_storage_bucket', 'lake');
    expect(attribute(bucket, 'uniform_bucket_level_access')).toBe('true');
    expect(attribute(bucket, 'public_access_prevention')).toBe('"enforced"');
    expect(attribute(bucket, 'force_destroy')).toBe('false');
    expect(bucket).toMatch(/versioning\s*\{\s*enabled\s*=\s*true\s*\}/);
    // Every lifecycle rule that deletes applies only to noncurrent (ARCHIVED) versions by their
    // noncurrent age; no condition on a live object's age, date or count.
    const rules = nestedBlocks(bucket, 'lifecycle_rule');
    expect(rules.length).toBeLessThanOrEqual(1);
    for (const rule of rules) {
      if (!/type\s*=\s*"Delete"/.test(rule)) continue;
      expect(attribute(rule, 'with_state')).toBe('"ARCHIVED"');
      expect(attribute(rule, 'days_since_noncurrent_time')).toBeDefined();
      expect(rule).not.toMatch(/^\s*(age|created_before|num_newer_versions|custom_time_before)\s*=/m);
    }
    expect(tf).not.toMatch(
      /google_storage_bucket_object|google_storage_bucket_iam_binding|allUsers|allAuthenticatedUsers/,
    );
  });

  it('the worker has least privilege: objects in this bucket, data in this dataset, jobs in the project', () => {
    const granted = (type: string): { role: string; scope: string }[] =>
      [...hclBlocks(tf, 'resource', type).values()].map((body) => ({
        role: attribute(body, 'role') ?? '',
        scope: attribute(body, 'bucket') ?? attribute(body, 'dataset_id') ?? attribute(body, 'project') ?? '',
      }));
    expect(granted('google_storage_bucket_iam_member')).toEqual([
      { role: '"roles/storage.objectUser"', scope: 'google_storage_bucket.lake.name' },
      { role: '"roles/storage.legacyBucketReader"', scope: 'google_storage_bucket.lake.name' },
    ]);
    expect(granted('google_bigquery_dataset_iam_member')).toEqual([
      { role: '"roles/bigquery.dataEditor"', scope: 'google_bigquery_dataset.warehouse.dataset_id' },
    ]);
    expect(granted('google_project_iam_member')).toEqual([
      { role: '"roles/bigquery.jobUser"', scope: 'var.project_id' },
      { role: 'google_project_iam_custom_role.job_reader.name', scope: 'var.project_id' },
    ]);
    for (const body of hclBlocks(tf, 'resource', 'google_project_iam_member').values()) {
      expect(attribute(body, 'member')).toBe('google_service_account.worker.member');
    }
    // jobUser shows the worker only its own jobs; it gets load jobs by id that another identity
    // may have started (the manifest's job, the job behind a 409): jobs.get, and nothing else.
    const roles = hclBlocks(tf, 'resource', 'google_project_iam_custom_role');
    expect([...roles.keys()]).toEqual(['google_project_iam_custom_role.job_reader']);
    const jobReader = resource('google_project_iam_custom_role', 'job_reader');
    expect(attribute(jobReader, 'project')).toBe('var.project_id');
    expect(attribute(jobReader, 'permissions')).toBe('["bigquery.jobs.get"]');
    expect(attribute(jobReader, 'role_id')).toMatch(/^"[a-zA-Z0-9_.]{3,64}"$/);
    expect(tf).not.toMatch(
      /roles\/(owner|editor|storage\.admin|bigquery\.admin|iam\.serviceAccountTokenCreator)"/,
    );
    expect(tf).not.toMatch(/google_service_account_key/);
  });

  it('Cloud Run: a one-task weekly job and a fan-out backfill job, both as the worker', () => {
    const weekly = resource('google_cloud_run_v2_job', 'weekly');
    const backfill = resource('google_cloud_run_v2_job', 'backfill');
    expect(attribute(weekly, 'task_count')).toBe('1');
    expect(attribute(weekly, 'args')).toBe('["run"]');
    expect(attribute(backfill, 'task_count')).toBe('var.backfill_task_count');
    expect(attribute(backfill, 'parallelism')).toBe('var.backfill_parallelism');
    for (const job of [weekly, backfill]) {
      expect(attribute(job, 'service_account')).toBe('google_service_account.worker.email');
      expect(attribute(job, 'image')).toBe('var.image');
      expect(attributes(job, 'name')).toEqual(
        expect.arrayContaining(['"MTA_INGEST_LAKE"', '"MTA_INGEST_WAREHOUSE"']),
      );
      expect(job).not.toMatch(/METADATA_SERVER_DETECTION|MTA_INGEST_TASK/);
    }
  });

  it('Cloud Scheduler runs the weekly job on Sunday 09:00 New York time as a service account allowed only that', () => {
    const scheduler = resource('google_cloud_scheduler_job', 'weekly');
    expect(attribute(scheduler, 'time_zone')).toBe('"America/New_York"');
    expect(attribute(scheduler, 'schedule')).toBe('var.weekly_schedule');
    expect(variables().get('weekly_schedule')?.default).toBe('"0 9 * * 0"');
    expect(attribute(scheduler, 'http_method')).toBe('"POST"');
    expect(attribute(scheduler, 'uri')).toBe(
      '"https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.weekly.name}:run"',
    );
    expect(attribute(scheduler, 'service_account_email')).toBe('google_service_account.scheduler.email');
    const invoker = resource('google_cloud_run_v2_job_iam_member', 'scheduler_runs_weekly');
    expect(attribute(invoker, 'role')).toBe('"roles/run.invoker"');
    expect(attribute(invoker, 'name')).toBe('google_cloud_run_v2_job.weekly.name');
    expect(attribute(invoker, 'member')).toBe('google_service_account.scheduler.member');
  });

  /** Variables by name, with their description, type and default as written. */
  function variables(): Map<string, { description?: string; type?: string; default?: string }> {
    const found = new Map<string, { description?: string; type?: string; default?: string }>();
    for (const [name, body] of hclBlocks(read('terraform/variables.tf'), 'variable')) {
      const top = body.split(/\n\s*validation\s*\{/)[0] ?? '';
      found.set(name, {
        description: attribute(top, 'description'),
        type: attribute(top, 'type'),
        default: attribute(top, 'default'),
      });
    }
    return found;
  }

  it('every variable has a description and a type, and every one is used; every output has a description', () => {
    const vars = variables();
    expect(vars.size).toBeGreaterThan(10);
    for (const [name, variable] of vars) {
      expect(variable.description, name).toMatch(/^".{10,}"$/);
      expect(variable.type, name).toBeDefined();
      expect(tf.includes(`var.${name}`), `var.${name} is never used`).toBe(true);
    }
    const outputs = hclBlocks(read('terraform/outputs.tf'), 'output');
    expect(outputs.size).toBeGreaterThan(3);
    for (const [name, body] of outputs) expect(attribute(body, 'description'), name).toBeDefined();
  });

  it('the deployment files name only terraform variables and outputs that exist', () => {
    const vars = variables();
    const outputs = hclBlocks(read('terraform/outputs.tf'), 'output');
    const files = [
      ...readdirSync(join(ROOT, K8S), { recursive: true, encoding: 'utf8' })
        .filter((name) => name.endsWith('.yaml'))
        .map((name) => `${K8S}/${name}`),
      ...readdirSync(join(ROOT, WORKFLOWS)).map((name) => `${WORKFLOWS}/${name}`),
    ];
    let mentions = 0;
    for (const file of files) {
      const text = read(file);
      for (const [, name] of text.matchAll(/\bvar\.(\w+)/g)) {
        expect(vars.has(name ?? ''), `${file}: var.${name} is no terraform variable`).toBe(true);
        mentions++;
      }
      for (const [, name] of text.matchAll(/\bterraform output (\w+)/g)) {
        expect(outputs.has(name ?? ''), `${file}: terraform output ${name} does not exist`).toBe(true);
        mentions++;
      }
    }
    expect(mentions).toBeGreaterThan(1);
    expect(read(`${K8S}/serviceaccount.yaml`)).toMatch(/\bvar\.workload_identity_members\b/);
  });

  it('versions.tf pins Terraform and the google provider', () => {
    const versions = read('terraform/versions.tf');
    expect(versions).toMatch(/required_version\s*=\s*">= 1\.\d+\.\d+"/);
    expect(versions).toMatch(/source\s*=\s*"hashicorp\/google"\s*\n\s*version\s*=\s*"~> \d+\.\d+"/);
  });
});

// ---------------------------------------------------------------------------------------------
// .ci/install-test-servers

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
    // Up to the image tools' script, which the section is followed by.
    const end = script.indexOf('\n# buildah, podman', start);
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

/** `--year 2022` style arguments as a selection. */
function selectionOf(args: string[]): DropDateSelection {
  const selection: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i] ?? '';
    expect(flag).toMatch(/^--(year|month|day|date|from|to)$/);
    selection[flag.slice(2)] = args[i + 1] ?? '';
  }
  return selection;
}
