/**
 * Stage 1, fetch: one week's file from the source, streamed to a spool (see spool.ts).
 *
 * Outcomes are values, not errors: `not-published` (404) and `not-modified` (304 to a
 * conditional request) are ordinary answers. Connection errors, 5xx, 429, stalls and bodies cut
 * mid-stream are retried with exponential backoff, each attempt starting over on a fresh spool.
 * What retrying cannot change fails at once, never stored: what is not a turnstile file (an
 * HTML page, an empty body, an unknown first line), a redirect loop, a TLS certificate refused,
 * an encoding we cannot decode, a 4xx, and a local disk or path fault (LocalResourceError).
 *
 * A body is accepted only when its end is proven (body-decoding.ts): declared length met,
 * chunked terminator, every content coding's trailer. The result says which proved it
 * (`completeness`); a body ended only by the connection closing is `connection-close`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pipeline } from 'node:stream/promises';
// undici's own client and connection pool rather than Node's global ones: Node 24's bundled
// undici (7.x) crashes the process with an uncatchable AssertionError when a server closes the
// connection while the body is paused under backpressure (nodejs/undici#5360, fixed in undici
// 8). Servers that answer with `Connection: close`, as many static file servers do, hit it at
// random. `request()` rather than `fetch()`: fetch decodes content codings leniently (a cut gzip
// stream ends quietly), and hides a `Transfer-Encoding: gzip` body's coding; see body-decoding.ts.
import { Agent, interceptors, request as httpRequest, type Dispatcher } from 'undici';
import { FetchError, MtaIngestError, oneLine } from '../errors.ts';
import { detectLayout, type Layout } from '../convert/layout.ts';
import { Spool, type SpoolSummary } from './spool.ts';
import {
  decodersFor,
  framingOf,
  isCutStream,
  isDecodingError,
  type BodyFraming,
  type Completeness,
} from './body-decoding.ts';
import type { Logger } from '../log.ts';

/** As many redirects as fetch follows (WHATWG Fetch, "HTTP-redirect fetch" step 5). */
export const MAX_REDIRECTS = 20;

const SOURCE_AGENT: Dispatcher = new Agent().compose(
  interceptors.redirect({ maxRedirections: MAX_REDIRECTS }),
);

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
  | ({
      outcome: 'fetched';
      url: string;
      layout: Layout;
      attempts: number;
      /** What proved the body whole; 'connection-close': nothing did (the gate judges it). */
      completeness: Completeness;
      /** The codings the body came in, undone (e.g. 'gzip'); undefined when it came plain. */
      contentEncoding?: string | undefined;
    } & SpoolSummary &
      SourceVersion)
  | { outcome: 'not-published'; url: string; status: number }
  | { outcome: 'not-modified'; url: string };

/** How often (in bytes) a download reports its progress. */
const PROGRESS_STEP = 256 * 1024;

/** First lines longer than this mean the body is not a turnstile file. */
const FIRST_LINE_LIMIT = 64 * 1024;

/** A failure another attempt may not meet; `cut`: the body was cut mid-stream. */
class RetryableError extends Error {
  readonly cut: boolean;
  constructor(message: string, cut = false) {
    super(message);
    this.cut = cut;
  }
}

export async function fetchWeek(request: FetchRequest): Promise<FetchResult> {
  const { url, policy, log } = request;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fetchOnce(request, attempt);
    } catch (error) {
      // FetchError: what retrying cannot change; LocalResourceError: our disk, not the network.
      if (error instanceof MtaIngestError || request.signal?.aborted) throw error;
      const permanent = permanentFailure(url, error);
      if (permanent) throw permanent;
      const reason = oneLine(error instanceof RetryableError ? error : describeNetworkError(error));
      if (attempt >= policy.attempts) {
        const cut = error instanceof RetryableError && error.cut;
        throw new FetchError(`${url}: gave up after ${attempt} attempts: ${reason}`, {
          cause: error,
          kind: cut ? 'incomplete-body' : undefined,
        });
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
  // The codings we decode strictly (body-decoding.ts); a server may send them unasked, too.
  const headers: Record<string, string> = { 'user-agent': 'mta-ingest', 'accept-encoding': 'gzip, deflate' };
  if (request.etag) headers['if-none-match'] = request.etag;
  if (request.lastModified) headers['if-modified-since'] = request.lastModified;
  let spool: Spool | undefined;
  let framing: BodyFraming | undefined;
  let rawBytes = 0;
  let body: { destroy(): unknown } | undefined;
  try {
    const response = await httpRequest(url, { headers, signal, dispatcher: SOURCE_AGENT });
    body = response.body;
    const status = response.statusCode;
    const answer = statusAnswer(url, `${status} ${response.statusText}`.trim(), status, response.headers);
    if (answer !== 'body') {
      await response.body.dump().catch(() => undefined);
      if (answer instanceof Error) throw answer;
      return answer;
    }
    const contentType = single(response.headers['content-type']) ?? '';
    if (/html/i.test(contentType)) {
      await response.body.dump().catch(() => undefined);
      throw new FetchError(`${url}: the server sent an HTML page (${contentType}), not a turnstile file`, {
        kind: 'not-turnstile',
      });
    }
    framing = framingOf(url, response.headers);
    spool = new Spool(request.spoolDir);
    const into = spool;
    const raw = response.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await raw.next();
    const counted = async function* (): AsyncGenerator<Buffer> {
      for (let next = first; !next.done; next = await raw.next()) {
        timer.refresh();
        rawBytes += next.value.length;
        yield next.value;
      }
    };
    let layout: Layout | undefined;
    let reported = 0;
    const consume = async (decoded: AsyncIterable<Buffer>): Promise<void> => {
      for await (const chunk of decoded) {
        timer.refresh();
        await into.write(chunk);
        if (request.onBytes && into.bytesSoFar - reported >= PROGRESS_STEP) {
          reported = into.bytesSoFar;
          request.onBytes(reported);
        }
        layout ??= checkFirstLine(url, into);
      }
    };
    const decoders = decodersFor(framing.codings, first.done ? undefined : first.value[0]);
    // Typed loosely: pipeline's overloads cannot take a list of stages of any length.
    await (pipeline as (...stages: unknown[]) => Promise<void>)(counted, ...decoders, consume);
    const summary = await spool.finish();
    if (summary.bytes === 0) throw new FetchError(`${url}: the body is empty`, { kind: 'not-turnstile' });
    layout ??= checkFirstLine(url, spool, true);
    if (layout === undefined)
      throw new FetchError(`${url}: the body holds no line`, { kind: 'not-turnstile' });
    return {
      outcome: 'fetched',
      url,
      layout,
      attempts: attempt,
      completeness: framing.completeness,
      contentEncoding: framing.contentEncoding,
      etag: single(response.headers.etag),
      lastModified: single(response.headers['last-modified']),
      ...summary,
    };
  } catch (error) {
    // The body was pulled by hand (to peek its first byte): a stage that failed leaves it open.
    body?.destroy();
    await spool?.discard();
    // An abort by our stall timer surfaces as the timer's reason (or a generic AbortError).
    if (stalled.signal.aborted && !(error instanceof MtaIngestError)) throw stalled.signal.reason as Error;
    throw framing ? cutBody(framing, rawBytes, error) : error;
  } finally {
    clearTimeout(timer);
  }
}

/** 'body' for a 200 whose body is the file; otherwise the outcome, or the error to throw. */
function statusAnswer(
  url: string,
  /** The status with its reason phrase, as the message shows it. */
  shown: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
): 'body' | FetchResult | Error {
  if (status === 200) return 'body';
  if (status === 404 || status === 410) return { outcome: 'not-published', url, status };
  if (status === 304) return { outcome: 'not-modified', url };
  if (status >= 500 || status === 429 || status === 408) return new RetryableError(`HTTP ${shown}`);
  if (status >= 300 && status < 400 && headers.location !== undefined) {
    // The redirect interceptor hands a redirect back once it has followed MAX_REDIRECTS.
    return new FetchError(
      `${url}: more than ${MAX_REDIRECTS} redirects (the last to ${oneLine(single(headers.location))})`,
      { kind: 'redirects' },
    );
  }
  return new FetchError(`${url}: HTTP ${shown}`, { kind: 'http-status' });
}

/** The layout once the first line is in; a FetchError as soon as it is clearly not a turnstile file. */
function checkFirstLine(url: string, spool: Spool, atEnd = false): Layout | undefined {
  const firstLine = spool.firstLine;
  if (firstLine === undefined) {
    if (!atEnd && spool.bytesSoFar <= FIRST_LINE_LIMIT) return undefined;
    throw new FetchError(`${url}: the body has no line break in its first ${FIRST_LINE_LIMIT} bytes`, {
      kind: 'not-turnstile',
    });
  }
  const verdict = detectLayout(firstLine);
  if (verdict.layout === undefined) throw new FetchError(`${url}: ${verdict.why}`, { kind: 'not-turnstile' });
  return verdict.layout;
}

/**
 * A body that failed after its head arrived: cut mid-stream (retryable, and said so with what
 * was missing), or corrupt in its coding (retryable: a proxy may have mangled it). Errors of
 * our own (FetchError, LocalResourceError) pass through.
 */
function cutBody(framing: BodyFraming, rawBytes: number, error: unknown): unknown {
  if (error instanceof MtaIngestError || error instanceof RetryableError) return error;
  const coding = framing.contentEncoding ?? 'encoded';
  if (isCutStream(error)) {
    return new RetryableError(
      `the ${coding} stream ends before its trailer (after ${rawBytes} encoded bytes): the body was cut`,
      true,
    );
  }
  if (isDecodingError(error)) return new RetryableError(`the ${coding} body is corrupt: ${oneLine(error)}`);
  const why = oneLine(describeNetworkError(error));
  // (No count of bytes received: undici fails a short body before handing over all it got.)
  if (framing.completeness === 'content-length') {
    return new RetryableError(
      `the body ended before its ${framing.declaredBytes} declared bytes (${why})`,
      true,
    );
  }
  if (framing.completeness === 'chunked') {
    return new RetryableError(`the chunked body ended without its last chunk (${why})`, true);
  }
  return new RetryableError(`the connection failed during the body (${why})`, true);
}

/** TLS failures: a certificate or protocol refused, which no retry changes. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;

/** A network failure that retrying cannot change, as a FetchError; undefined for the rest. */
function permanentFailure(url: string, error: unknown): FetchError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth += 1) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && TLS_CODE.test(code)) {
      return new FetchError(`${url}: TLS failed: ${code} (${oneLine(e)})`, { cause: error, kind: 'tls' });
    }
    // undici's redirect handler refuses a URL it has already visited in this chain.
    if (/redirect loop/i.test(e.message)) {
      return new FetchError(`${url}: the server redirects in a loop`, { cause: error, kind: 'redirects' });
    }
  }
  return undefined;
}

/** Undici hides the useful part of a network error in `cause`. */
function describeNetworkError(error: unknown): Error {
  if (error instanceof Error && error.cause instanceof Error) {
    const code = (error.cause as NodeJS.ErrnoException).code;
    return new Error(`${error.message}: ${code ?? error.cause.message}`);
  }
  return error instanceof Error ? error : new Error(String(error));
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
