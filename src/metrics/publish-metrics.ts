/**
 * `run --metrics-file / --pushgateway`: after a run, whatever its outcome, its metrics go to a
 * textfile for node-exporter and/or a Pushgateway.
 *
 * A metrics failure never changes the exit code: the exit code tells whether the data landed,
 * and a scheduler retrying a run that loaded its weeks only because the Pushgateway was down
 * would refetch for nothing. Each failed sink is one line on stderr instead
 * (`mta-ingest: metrics: <reason>`), and the metrics' own staleness (the last-run timestamp
 * stops moving) is what an alert sees.
 *
 * The timestamps are the wall clock when the run ended, not MTA_INGEST_NOW: a backfill run "as
 * of" an old date still succeeded now, and alerts compare these with time().
 */
import type { RunSummary } from '../pipeline/week-result.ts';
import { UsageError, oneLine } from '../errors.ts';
import { pushMetrics, readLastSuccess, writeMetricsFile } from './metrics-sinks.ts';
import { renderRunMetrics } from './run-metrics.ts';

export const DEFAULT_METRICS_JOB = 'mta_ingest';

export const METRICS_ENV = {
  metricsFile: 'MTA_INGEST_METRICS_FILE',
  pushgateway: 'MTA_INGEST_PUSHGATEWAY',
} as const;

/** The run command's metrics flags, as commander gives them. */
export interface MetricsFlags {
  metricsFile?: string | undefined;
  pushgateway?: string | undefined;
  metricsJob?: string | undefined;
}

export interface MetricsTargets {
  /** A file for node-exporter's textfile collector (should end in .prom). */
  file?: string | undefined;
  /** The Pushgateway's base URL, without trailing slash. */
  pushgateway?: string | undefined;
  job: string;
}

/** Whether the run's metrics go anywhere (then the run reads its lag for them). */
export function hasMetricsTarget(targets: MetricsTargets): boolean {
  return targets.file !== undefined || targets.pushgateway !== undefined;
}

/** Flags, then environment. Checked before the run, so a bad value is a usage error (exit 2). */
export function metricsTargetsOf(
  flags: MetricsFlags,
  env: Record<string, string | undefined>,
): MetricsTargets {
  const file = flags.metricsFile ?? nonEmpty(env[METRICS_ENV.metricsFile]);
  const gateway = flags.pushgateway ?? nonEmpty(env[METRICS_ENV.pushgateway]);
  const job = flags.metricsJob ?? DEFAULT_METRICS_JOB;
  if (file === '') throw new UsageError('--metrics-file is empty');
  if (job.trim() === '') throw new UsageError('--metrics-job is empty');
  if (gateway !== undefined && (!/^https?:\/\/[^/\s]+/i.test(gateway) || !URL.canParse(gateway))) {
    const named = flags.pushgateway !== undefined ? '--pushgateway' : METRICS_ENV.pushgateway;
    throw new UsageError(`${named} ${gateway} is not an http(s) URL`);
  }
  return { file, pushgateway: gateway?.replace(/\/+$/, ''), job };
}

/**
 * Writes and pushes the run's metrics to the targets given, both at once. Never throws: returns
 * one line per sink that failed (empty when all went well or there is no target).
 */
export async function publishRunMetrics(
  summary: RunSummary,
  targets: MetricsTargets,
  now: Date = new Date(),
  /** The warehouse's lag after the run (commands/freshness.ts), when it was read. */
  weeksBehind?: number,
): Promise<string[]> {
  const { file, pushgateway, job } = targets;
  const tasks: Promise<void>[] = [];
  if (file !== undefined) {
    tasks.push(
      (async () => {
        try {
          const previousLastSuccess = await readLastSuccess(file, job);
          await writeMetricsFile(
            file,
            renderRunMetrics(summary, { job, now, previousLastSuccess, weeksBehind }),
          );
        } catch (error) {
          throw new Error(`cannot write ${file}: ${oneLine(error)}`, { cause: error });
        }
      })(),
    );
  }
  if (pushgateway !== undefined) {
    // No previous last success: POST keeps the gateway's own when this run leaves it out.
    tasks.push(
      pushMetrics(
        pushgateway,
        job,
        renderRunMetrics(summary, { job, now, target: 'pushgateway', weeksBehind }),
      ),
    );
  }
  const results = await Promise.allSettled(tasks);
  return results.flatMap((r) => (r.status === 'rejected' ? [oneLine(r.reason)] : []));
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
