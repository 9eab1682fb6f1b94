/**
 * A small client for Prefect's REST API, on the built-in fetch: the worker is not a Python
 * program and takes no Prefect SDK, so the few endpoints it needs (blocks, flows, work pools,
 * deployments, flow-run states, artifacts) are plain JSON requests.
 *
 * `PREFECT_API_KEY`, when set, is sent as a bearer token (Prefect Cloud) and appears nowhere
 * else: not in errors, not in logs. Transient failures (connection errors, 429, 502, 503, 504)
 * are retried a few times with a short backoff, as Prefect's own client does.
 */
import { MtaIngestError, UsageError, oneLine } from '../errors.ts';
import { StoppedError, sleepUnlessStopped, throwIfStopped } from '../util/abort.ts';

export const PREFECT_ENV = {
  apiUrl: 'PREFECT_API_URL',
  apiKey: 'PREFECT_API_KEY',
  flowRunId: 'PREFECT__FLOW_RUN_ID',
} as const;

/** The API version whose orchestration rules this client expects (Prefect 3's server). */
const API_VERSION = '0.8.4';
const REQUEST_TIMEOUT_MS = 15_000;
const ATTEMPTS = 3;
const RETRY_STATUSES = new Set([429, 502, 503, 504]);

/** A Prefect API request that failed, or answered what the caller did not expect. */
export class PrefectApiError extends MtaIngestError {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export interface PrefectResponse<T = unknown> {
  status: number;
  body: T;
}

export interface PrefectClientOptions {
  /** The API's base URL, e.g. http://127.0.0.1:4200/api. */
  apiUrl: string;
  apiKey?: string | undefined;
  /** Wait before the first retry (doubles after); tests shorten it. */
  backoffMs?: number;
  /** The command's stop: a request in flight is aborted, and none is retried or begun after it. */
  signal?: AbortSignal | undefined;
}

export class PrefectClient {
  readonly apiUrl: string;
  readonly #apiKey: string | undefined;
  readonly #backoffMs: number;
  readonly #signal: AbortSignal | undefined;

  constructor(options: PrefectClientOptions) {
    this.apiUrl = options.apiUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.#backoffMs = options.backoffMs ?? 500;
    this.#signal = options.signal;
  }

  /**
   * From PREFECT_API_URL (or `apiUrl`, a flag) and PREFECT_API_KEY. A missing or malformed URL is
   * a usage error naming where it came from.
   */
  static fromEnv(
    env: Record<string, string | undefined>,
    apiUrl?: string,
    signal?: AbortSignal,
  ): PrefectClient {
    const url = apiUrl ?? env[PREFECT_ENV.apiUrl];
    const named = apiUrl !== undefined ? '--prefect-api-url' : PREFECT_ENV.apiUrl;
    if (url === undefined || url.trim() === '') {
      throw new UsageError(
        `a Prefect server is needed: set ${PREFECT_ENV.apiUrl} (or --prefect-api-url), e.g. http://127.0.0.1:4200/api`,
      );
    }
    if (!/^https?:\/\/[^/\s]+/i.test(url) || !URL.canParse(url)) {
      throw new UsageError(`${named} ${url} is not an http(s) URL`);
    }
    return new PrefectClient({ apiUrl: url, apiKey: env[PREFECT_ENV.apiKey], signal });
  }

  get<T>(path: string, accept: readonly number[] = [200]): Promise<PrefectResponse<T>> {
    return this.request<T>('GET', path, undefined, accept);
  }

  post<T>(path: string, body: unknown, accept: readonly number[] = [200, 201]): Promise<PrefectResponse<T>> {
    return this.request<T>('POST', path, body, accept);
  }

  patch(path: string, body: unknown): Promise<PrefectResponse> {
    return this.request('PATCH', path, body, [200, 204]);
  }

  delete(path: string): Promise<PrefectResponse> {
    return this.request('DELETE', path, undefined, [200, 204, 404]);
  }

  /**
   * One request, retried on transient failures. Answers whose status is in `accept` are returned
   * (with the JSON body, or null when there is none); any other is a PrefectApiError carrying
   * Prefect's own `detail`.
   */
  async request<T>(
    method: string,
    path: string,
    body: unknown,
    accept: readonly number[],
  ): Promise<PrefectResponse<T>> {
    const url = `${this.apiUrl}${path}`;
    const headers: Record<string, string> = {
      accept: 'application/json',
      'x-prefect-api-version': API_VERSION,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    let problem = '';
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      if (attempt > 1) await sleepUnlessStopped(this.#backoffMs * 2 ** (attempt - 2), this.#signal);
      throwIfStopped(this.#signal);
      let response: Response;
      let text: string;
      try {
        response = await fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: this.#signal
            ? AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), this.#signal])
            : AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        text = await response.text();
      } catch (error) {
        if (this.#signal?.aborted) throw new StoppedError(this.#signal);
        problem = describeFetchError(error);
        continue;
      }
      if (RETRY_STATUSES.has(response.status) && !accept.includes(response.status)) {
        problem = `HTTP ${response.status}${detailOf(text)}`;
        continue;
      }
      if (!accept.includes(response.status)) {
        throw new PrefectApiError(
          `Prefect ${method} ${path} answered HTTP ${response.status}${detailOf(text)}`,
          response.status,
        );
      }
      return { status: response.status, body: (text === '' ? null : JSON.parse(text)) as T };
    }
    throw new PrefectApiError(`Prefect ${method} ${url} failed after ${ATTEMPTS} attempts: ${problem}`);
  }
}

/** fetch's errors hide the reason in `cause` (ECONNREFUSED, a timeout...). */
function describeFetchError(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  const cause =
    error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? oneLine(error);
}

/** Prefect's `detail` (a string, or FastAPI's validation list), shortened to one line. */
function detailOf(text: string): string {
  let detail: unknown = text;
  try {
    const parsed = JSON.parse(text) as { detail?: unknown; exception_detail?: unknown };
    detail = parsed.detail ?? parsed.exception_detail ?? text;
  } catch {
    // Not JSON: the text itself.
  }
  const line = oneLine(typeof detail === 'string' ? detail : JSON.stringify(detail)).slice(0, 500);
  return line === '' ? '' : `: ${line}`;
}
