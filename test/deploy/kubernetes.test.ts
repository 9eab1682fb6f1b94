/**
 * The Kubernetes manifests (deployments/kubernetes/): the weekly CronJob and the backfill Job,
 * their schedule, time zone, non-root pods, the fan-out count equal to the completions, and the
 * kustomizations. Parsed as what runs them reads them (see test/support/harnesses/deploy-files.ts
 * for the readers).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveDropDates, type DropDateSelection } from '../../src/dates/drop-dates.ts';
import { shareOf, taskShareFromEnv } from '../../src/dates/shard.ts';
import { ROOT, type Doc, yamlDocs, yamlDoc, at, K8S, dockerfile } from '../support/harnesses/deploy-files.ts';

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
