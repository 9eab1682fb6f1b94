/**
 * The BigQuery stand-in's HTTP plumbing (bigquery-standin.ts): errors in BigQuery's shape,
 * `{error:{code, message, errors:[{message, domain, reason}], status}}` (each entry of `errors`
 * carries the message too, as BigQuery's do; without it the client's ApiError would read
 * "Multiple errors occurred ... 2. undefined"), request parsing, If-Match, and the answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StandinRequest } from './bigquery-standin-types.ts';

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  500: 'INTERNAL',
};

/** An error answered with BigQuery's HTTP code and reason (see errorBody). */
export class HttpError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

export const notFound = (message: string): HttpError => new HttpError(404, 'notFound', message);
export const invalid = (message: string): HttpError => new HttpError(400, 'invalid', message);
export const duplicate = (message: string): HttpError => new HttpError(409, 'duplicate', message);

export function errorBody(code: number, reason: string, message: string): object {
  return {
    error: {
      code,
      message,
      errors: [{ message, domain: 'global', reason }],
      status: STATUS_NAMES[code] ?? 'UNKNOWN',
    },
  };
}

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON object body, or 400. Its fields are checked where they matter; the rest is stored as sent. */
export function objectBody<T extends object>(body: unknown): T {
  if (!isObject(body)) throw invalid('Request body must be a JSON object.');
  return body as T;
}

export const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** 412 conditionNotMet unless the request's If-Match (if any) is `*` or the resource's etag. */
export function checkIfMatch(req: IncomingMessage, etag: string | undefined): void {
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== etag)
    throw new HttpError(412, 'conditionNotMet', 'Precondition check failed.');
}

/** Reads the request whole: its record, and whether a non-empty body was JSON. */
export async function readRequest(
  req: IncomingMessage,
): Promise<{ record: StandinRequest; parsed: boolean }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  let parsed = true;
  if (raw !== '') {
    try {
      body = JSON.parse(raw);
    } catch {
      body = raw;
      parsed = false;
    }
  }
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    path = url.pathname;
  }
  const record: StandinRequest = {
    method: req.method ?? 'GET',
    path,
    query: Object.fromEntries(url.searchParams),
    body,
  };
  if (req.headers.authorization !== undefined) record.authorization = req.headers.authorization;
  return { record, parsed };
}

/** Answers `body` as JSON, or no content when it is undefined. */
export function send(res: ServerResponse, status: number, body: object | undefined): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
