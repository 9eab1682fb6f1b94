/**
 * Stage 1, fetch: one week's file from the source, streamed to a spool (see spool.ts).
 *
 * Outcomes are values, not errors: `not-published` (404) and `not-modified` (304 to a
 * conditional request) are ordinary answers. Connection errors, 5xx, 429 and stalls are retried
 * with exponential backoff, each attempt starting over on a fresh spool. What is not a
 * turnstile file (an HTML page, an empty body, an unknown first line) fails at once, before
 * anything is handed on, and so never reaches the lake.
 */
import { setTimeout as sleep } from 'node:timers/promises';
// undici's own fetch and connection pool rather than Node's global ones: Node 24's bundled
// undici (7.x) crashes the process with an uncatchable AssertionError when a server closes the
// connection while the body is paused under backpressure (nodejs/undici#5360, fixed in undici
// 8). Servers that answer with `Connection: close`, as many static file servers do, hit it at
// random. The package's fetch alone is not enough: it dispatches through the process-wide
// global dispatcher, which Node's bundled undici creates, so the Agent is the package's too.
import { Agent, fetch } from 'undici';

const SOURCE_AGENT = new Agent();
import { FetchError, oneLine } from '../errors.ts';
import { detectLayout, type Layout } from '../convert/layout.ts';
import { Spool, type SpoolSummary } from './spool.ts';
import type { Logger } from '../log.ts';

export interface FetchPolicy {
  /** Longest wait for the response headers, and for each piece of the body. */
  timeoutMs: number;
  /** Tries in all, the first included. */
  attempts: number;
  /** The first retry waits about this long; each further one twice as long (capped at 30 s). */
  backoffMs: number;
}

export interface FetchRequest {
  url: string;
  spoolDir: string;
  policy: FetchPolicy;
  /** Validators from the week's manifest, for a conditional request. */
  etag?: string | undefined;
  lastModified?: string | undefined;
  log: Logger;
  signal?: AbortSignal | undefined;
  /** Called with the bytes received so far, at most every 256 KiB. */
  onBytes?: ((bytes: number) => void) | undefined;
}

export interface SourceVersion {
  etag: string | undefined;
  lastModified: string | undefined;
}

export type FetchResult =
  | ({ outcome: 'fetched'; url: string; layout: Layout; attempts: number } & SpoolSummary & SourceVersion)
  | { outcome: 'not-published'; url: string; status: number }
  | { outcome: 'not-modified'; url: string };

/** How often (in bytes) a download reports its progress. */
const PROGRESS_STEP = 256 * 1024;

/** First lines longer than this mean the body is not a turnstile file. */
const FIRST_LINE_LIMIT = 64 * 1024;

class RetryableError extends Error {}

export async function fetchWeek(request: FetchRequest): Promise<FetchResult> {
  const { url, policy, log } = request;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fetchOnce(request, attempt);
    } catch (error) {
      if (error instanceof FetchError || request.signal?.aborted) throw error;
      const reason = oneLine(error instanceof RetryableError ? error : describeNetworkError(error));
      if (attempt >= policy.attempts) {
        throw new FetchError(`${url}: gave up after ${attempt} attempts: ${reason}`, { cause: error });
      }
      const delay = Math.min(policy.backoffMs * 2 ** (attempt - 1), 30_000) * (0.75 + Math.random() / 2);
      log.warn({ url, attempt, reason, retryInMs: Math.round(delay) }, 'fetch attempt failed, retrying');
      await sleep(delay, undefined, { signal: request.signal });
    }
  }
}

async function fetchOnce(request: FetchRequest, attempt: number): Promise<FetchResult> {
  const { url, policy } = request;
  const stalled = new AbortController();
  const timer = setTimeout(
    () => stalled.abort(new RetryableError(`no data for ${policy.timeoutMs} ms`)),
    policy.timeoutMs,
  );
  const signal = request.signal ? AbortSignal.any([stalled.signal, request.signal]) : stalled.signal;
  const headers: Record<string, string> = { 'user-agent': 'mta-ingest' };
  if (request.etag) headers['if-none-match'] = request.etag;
  if (request.lastModified) headers['if-modified-since'] = request.lastModified;
  let spool: Spool | undefined;
  try {
    const response = await fetch(url, { headers, signal, dispatcher: SOURCE_AGENT });
    if (response.status === 404 || response.status === 410) {
      await response.body?.cancel();
      return { outcome: 'not-published', url, status: response.status };
    }
    if (response.status === 304) return { outcome: 'not-modified', url };
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      await response.body?.cancel();
      throw new RetryableError(`HTTP ${response.status} ${response.statusText}`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new FetchError(`${url}: HTTP ${response.status} ${response.statusText}`);
    }
    const contentType = response.headers.get('content-type') ?? '';
    if (/html/i.test(contentType)) {
      await response.body?.cancel();
      throw new FetchError(`${url}: the server sent an HTML page (${contentType}), not a turnstile file`);
    }
    spool = new Spool(request.spoolDir);
    let layout: Layout | undefined;
    let reported = 0;
    if (response.body) {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        timer.refresh();
        await spool.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (request.onBytes && spool.bytesSoFar - reported >= PROGRESS_STEP) {
          reported = spool.bytesSoFar;
          request.onBytes(reported);
        }
        layout ??= checkFirstLine(url, spool);
      }
    }
    const summary = await spool.finish();
    if (summary.bytes === 0) throw new FetchError(`${url}: the body is empty`);
    layout ??= checkFirstLine(url, spool, true);
    if (layout === undefined) throw new FetchError(`${url}: the body holds no line`);
    return {
      outcome: 'fetched',
      url,
      layout,
      attempts: attempt,
      etag: response.headers.get('etag') ?? undefined,
      lastModified: response.headers.get('last-modified') ?? undefined,
      ...summary,
    };
  } catch (error) {
    await spool?.discard();
    // An abort by our stall timer surfaces as the timer's reason (or a generic AbortError).
    if (stalled.signal.aborted && !(error instanceof FetchError)) throw stalled.signal.reason as Error;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** The layout once the first line is in; a FetchError as soon as it is clearly not a turnstile file. */
function checkFirstLine(url: string, spool: Spool, atEnd = false): Layout | undefined {
  const firstLine = spool.firstLine;
  if (firstLine === undefined) {
    if (!atEnd && spool.bytesSoFar <= FIRST_LINE_LIMIT) return undefined;
    throw new FetchError(`${url}: the body has no line break in its first ${FIRST_LINE_LIMIT} bytes`);
  }
  const verdict = detectLayout(firstLine);
  if (verdict.layout === undefined) throw new FetchError(`${url}: ${verdict.why}`);
  return verdict.layout;
}

/** Undici hides the useful part of a network error in `cause`. */
function describeNetworkError(error: unknown): Error {
  if (error instanceof Error && error.cause instanceof Error) {
    const code = (error.cause as NodeJS.ErrnoException).code;
    return new Error(`${error.message}: ${code ?? error.cause.message}`);
  }
  return error instanceof Error ? error : new Error(String(error));
}
