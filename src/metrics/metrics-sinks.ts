/**
 * Where a run's metrics go: a file for node-exporter's textfile collector, and a Pushgateway.
 *
 * How each keeps `mta_ingest_last_success_timestamp_seconds` across a failed run:
 * - the file is replaced whole on every run, so the last success is read from the previous file
 *   (readLastSuccess) and written again when this run did not succeed;
 * - the Pushgateway gets a POST, which replaces only the metric names in the body, so a failed
 *   run simply leaves the metric out and the gateway keeps the value of the last good run.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { oneLine } from '../errors.ts';
import { METRIC } from './run-metrics.ts';

/** The textfile collector reads `*.prom` files only, so the temporary file is never half-read. */
export async function writeMetricsFile(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(temp, text, { encoding: 'utf8', mode: 0o644 });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * The last-success timestamp (Unix seconds) in an earlier metrics file, or undefined when there
 * is no file or no such sample. With `job`, a sample labelled with another job does not count.
 * A file that cannot be read (other than missing) throws.
 */
export async function readLastSuccess(path: string, job?: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let found: number | undefined;
  for (const line of text.split('\n')) {
    const sample = parseSample(line);
    if (sample?.name !== METRIC.lastSuccess) continue;
    if (job !== undefined && sample.labels.job !== undefined && sample.labels.job !== job) continue;
    if (Number.isFinite(sample.value)) found = sample.value;
  }
  return found;
}

/** One sample line of the text format (no timestamps are written here, any are ignored). */
function parseSample(
  line: string,
): { name: string; labels: Record<string, string>; value: number } | undefined {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?\s+(\S+)/.exec(
    line.trim(),
  );
  if (!match) return undefined;
  const labels: Record<string, string> = {};
  for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"/g)) {
    labels[name!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return { name: match[1]!, labels, value: Number(match[3]) };
}

export const PUSH_TIMEOUT_MS = 10_000;

/**
 * `<gateway>/metrics/job/<job>`. A job with a slash is sent base64url-encoded (`job@base64`),
 * as the Pushgateway asks: an escaped slash in a path segment is not reliably kept as one.
 */
export function pushUrlFor(gatewayUrl: string, job: string): string {
  const base = gatewayUrl.replace(/\/+$/, '');
  return job.includes('/')
    ? `${base}/metrics/job@base64/${Buffer.from(job).toString('base64url')}`
    : `${base}/metrics/job/${encodeURIComponent(job)}`;
}

/**
 * POSTs the text to the job's group (POST, not PUT: it replaces only the metrics named in the
 * body). Throws an Error with one line on a network error, a timeout or a non-2xx answer.
 */
export async function pushMetrics(gatewayUrl: string, job: string, text: string): Promise<void> {
  const url = pushUrlFor(gatewayUrl, job);
  let res: Response;
  let body: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; version=0.0.4' },
      body: text,
      signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
    });
    body = await res.text();
  } catch (error) {
    // undici says only "fetch failed"; the cause says why (ECONNREFUSED, a DNS error...).
    const cause = error instanceof Error && error.cause !== undefined ? `: ${oneLine(error.cause)}` : '';
    const reason =
      error instanceof DOMException && error.name === 'TimeoutError'
        ? `no answer within ${PUSH_TIMEOUT_MS / 1000} s`
        : `${oneLine(error)}${cause}`;
    throw new Error(`push to ${url} failed: ${reason}`, { cause: error });
  }
  if (!res.ok) {
    const detail = oneLine(body).slice(0, 300);
    throw new Error(`push to ${url} failed: HTTP ${res.status}${detail === '' ? '' : `: ${detail}`}`);
  }
}
