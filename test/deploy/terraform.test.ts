/**
 * The terraform (terraform/): the BigQuery table equal to the schema module, no lifecycle rule
 * deleting live lake data, least-privilege roles, variables and outputs. Parsed as what runs them
 * reads them (see test/support/harnesses/deploy-files.ts for the readers).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_COLUMNS,
  PARTITION_COLUMN,
  TABLE_NAME,
  bigquerySchema,
} from '../../src/schema/turnstile-schema.ts';
import { TERRAFORM_SCHEMA_FILE, terraformSchemaJson } from '../../scripts/write-terraform-schema.ts';
import { ROOT, read, K8S, WORKFLOWS } from '../support/harnesses/deploy-files.ts';

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
