/**
 * A stand-in for the MTA's turnstile file server, for tests: a real HTTP server on 127.0.0.1
 * (random port) serving `GET <basePath>/<name>` the way the real one does (text/plain, chunked,
 * no Content-Length, strong ETag, Last-Modified), plus per-file fault modes so the worker's
 * handling of resets, stalls, truncation and error pages can be exercised over real sockets.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { sendSpecial, type SpecialFault } from './source-framing.ts';
import { indexUrlFor } from '../../../src/fetch/source-index.ts';
import { indexPage, type IndexMode } from './source-index-page.ts';

export type { IndexMode } from './source-index-page.ts';

export type Fault =
  /** Respond with this status and a small text body. */
  | { kind: 'status'; status: number; times?: number }
  /** Send headers and the first afterBytes of the body, then destroy the socket. */
  | { kind: 'reset'; afterBytes: number; times?: number }
  /** Send afterBytes, pause for ms, then carry on (unless the client went away). */
  | { kind: 'stall'; afterBytes: number; ms: number; times?: number }
  /** 200 with an HTML error page, as a misconfigured proxy or CDN would send. */
  | { kind: 'html'; times?: number }
  /** Send only afterBytes, then end the chunked body cleanly: looks complete, is not. */
  | { kind: 'truncate'; afterBytes: number; times?: number }
  /** 200 text/plain with an empty body. */
  | { kind: 'empty'; times?: number }
  /** Framing, encoding and redirect faults: source-framing.ts. */
  | SpecialFault;

/** Exactly one of path (plain file, streamed), gzPath (gunzipped on the fly) or content. */
export interface ServedFile {
  name: string;
  path?: string;
  gzPath?: string;
  content?: string | Buffer;
}

export interface RequestRecord {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The status sent; 0 until the response head is written. */
  status: number;
}

export interface SourceServer {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234/data/nyct/turnstile */
  readonly baseUrl: string;
  /** Every request, in arrival order, with the status sent. */
  readonly requests: RequestRecord[];
  /** Add or replace a file. */
  serve(file: ServedFile): void;
  /** Stop serving a file (later requests get 404); its fault, if any, is kept. */
  remove(name: string): void;
  /** How the index page is served from now on (see IndexMode). */
  index(mode: IndexMode): void;
  /** The index page's path on this server (where the worker derives it from baseUrl). */
  readonly indexPath: string;
  /** Set (or, with undefined, clear) the fault for one file. */
  fault(name: string, fault: Fault | undefined): void;
  requestsFor(name: string): RequestRecord[];
  /** Close the server, destroying open sockets (including stalled responses). */
  close(): Promise<void>;
}

/** Fixed, so conditional-request tests are deterministic. */
const LAST_MODIFIED = 'Sat, 03 Jun 2023 12:00:00 GMT';
/** Slice size for in-memory content, so large buffers are written with backpressure too. */
const CHUNK = 64 * 1024;

interface Entry {
  file: ServedFile;
  /** sha256-based strong ETag, computed once (eagerly for content, lazily for files on disk). */
  etag?: Promise<string>;
}

export async function startSourceServer(
  options: {
    files?: ServedFile[];
    basePath?: string;
    /** Close the connection after each response (`Connection: close`), as many file servers do. */
    connectionClose?: boolean;
    /** The index page (default `served`). */
    index?: IndexMode;
  } = {},
): Promise<SourceServer> {
  const basePath = (options.basePath ?? '/data/nyct/turnstile').replace(/\/+$/, '');
  const indexPath = new URL(indexUrlFor(`http://127.0.0.1${basePath}`)).pathname;
  let indexMode: IndexMode = options.index ?? 'served';
  const files = new Map<string, Entry>();
  const faults = new Map<string, Fault>();
  const requests: RequestRecord[] = [];

  function serve(file: ServedFile): void {
    const sources = [file.path, file.gzPath, file.content].filter((s) => s !== undefined);
    if (sources.length !== 1)
      throw new Error(`serve(${file.name}): give exactly one of path, gzPath, content`);
    const entry: Entry = { file };
    if (file.content !== undefined) entry.etag = Promise.resolve(etagOf(hashOf(toBuffer(file.content))));
    files.set(file.name, entry);
  }

  /** Returns the file's fault for this request, counting `times` down and clearing it when used up. */
  function takeFault(name: string, applies: (f: Fault) => boolean): Fault | undefined {
    const fault = faults.get(name);
    if (!fault || !applies(fault)) return undefined;
    if (fault.times !== undefined) {
      if (fault.times <= 1) faults.delete(name);
      else faults.set(name, { ...fault, times: fault.times - 1 });
    }
    return fault;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: RequestRecord): Promise<void> {
    // Record the status at the moment the head is written, so tests see it as soon as fetch resolves.
    const head = (status: number, headers: Record<string, string>): void => {
      record.status = status;
      res.writeHead(status, options.connectionClose ? { ...headers, connection: 'close' } : headers);
    };
    const text = (status: number, body: string, extra: Record<string, string> = {}): void => {
      head(status, { 'content-type': 'text/plain', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };

    if (req.method !== 'GET' && req.method !== 'HEAD')
      return text(405, 'Method Not Allowed\n', { allow: 'GET, HEAD' });
    if (record.path === indexPath) return sendIndex(req, res, head);
    const prefix = `${basePath}/`;
    const entry = record.path.startsWith(prefix) ? files.get(record.path.slice(prefix.length)) : undefined;
    if (!entry) return text(404, 'Not Found\n');
    const name = entry.file.name;

    // Status and HTML faults replace the whole response (even a would-be 304), like a failing origin.
    const early = takeFault(name, (f) => f.kind === 'status' || f.kind === 'html');
    if (early?.kind === 'status')
      return text(early.status, `${early.status} ${STATUS_CODES[early.status] ?? ''}\n`);
    if (early?.kind === 'html') {
      head(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(req.method === 'HEAD' ? undefined : HTML_ERROR_PAGE);
    }

    const special = takeFault(name, (f) => f.kind === 'framing' || f.kind === 'redirect');
    if (special) return sendSpecial(req, res, record, special as SpecialFault, bodyOf(entry.file));

    let etag: string;
    try {
      etag = await etagFor(entry);
    } catch {
      return text(500, 'Internal Server Error\n');
    }
    const validators = { etag, 'last-modified': LAST_MODIFIED };
    if (matchesEtag(req.headers['if-none-match'], etag)) {
      head(304, validators);
      return void res.end();
    }

    // Explicit chunked encoding: Node would otherwise add Content-Length (e.g. 0 for an empty body).
    // A closing server sends a file's length instead, as simple static file servers do.
    const framing: Record<string, string> =
      options.connectionClose && entry.file.path !== undefined
        ? { 'content-length': String((await stat(entry.file.path)).size) }
        : { 'transfer-encoding': 'chunked' };
    head(200, { 'content-type': 'text/plain', ...framing, ...validators });
    if (req.method === 'HEAD') return void res.end();
    // Body faults are only used up by a request that actually gets a body.
    const fault = takeFault(name, (f) => f.kind !== 'status' && f.kind !== 'html');
    if (fault?.kind === 'empty') return void res.end();
    await sendBody(res, bodyOf(entry.file), fault);
  }

  function sendIndex(
    req: IncomingMessage,
    res: ServerResponse,
    head: (status: number, headers: Record<string, string>) => void,
  ): void {
    const page = indexPage(indexMode, [...files.keys()], basePath, indexPath);
    head(page.status, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : page.body);
  }

  // Before listening, so a bad ServedFile throws without leaving a server open.
  for (const file of options.files ?? []) serve(file);

  const server = createServer((req, res) => {
    const record: RequestRecord = {
      method: req.method ?? '',
      path: pathOf(req.url),
      headers: { ...req.headers },
      status: 0,
    };
    requests.push(record);
    handle(req, res, record).catch(() => res.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://127.0.0.1:${port}${basePath}`,
    requests,
    serve,
    remove: (name) => void files.delete(name),
    index: (mode) => void (indexMode = mode),
    indexPath,
    fault: (name, fault) => void (fault ? faults.set(name, fault) : faults.delete(name)),
    requestsFor: (name) => requests.filter((r) => r.path === `${basePath}/${name}`),
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // close() alone waits for open (e.g. stalled or keep-alive) connections; end them now.
        server.closeAllConnections();
      })),
  };
}

/** Writes the body with backpressure, applying a reset/stall/truncate fault at exactly afterBytes. */
async function sendBody(
  res: ServerResponse,
  body: AsyncIterable<Buffer>,
  fault: Fault | undefined,
): Promise<void> {
  const cutAt = fault && 'afterBytes' in fault ? Math.max(0, fault.afterBytes) : Infinity;
  let sent = 0;
  let stalled = false;

  // Runs the fault once `sent` reaches cutAt; returns true when the response is over.
  const atCut = async (): Promise<boolean> => {
    if (sent !== cutAt || stalled || !fault) return false;
    if (fault.kind === 'truncate') {
      res.end();
      return true;
    }
    // At 0 bytes the head has not gone out yet; the client should still get it.
    res.flushHeaders();
    if (fault.kind === 'reset') {
      await resetSocket(res);
      return true;
    }
    if (fault.kind === 'stall') {
      stalled = true;
      await waitFor(res, 'close', fault.ms);
      return res.destroyed;
    }
    return false;
  };

  if (await atCut()) return;
  // for-await pulls one chunk at a time (so the source is read only as fast as we write) and
  // destroys the source (closing the file / gunzip) if we return early.
  for await (const chunk of body) {
    let rest = chunk;
    while (rest.length > 0) {
      const n = sent < cutAt ? Math.min(rest.length, cutAt - sent) : rest.length;
      const piece = rest.subarray(0, n);
      rest = rest.subarray(n);
      sent += n;
      if (!res.write(piece)) await waitFor(res, 'drain');
      if (res.destroyed) return; // client went away
      if (await atCut()) return;
    }
  }
  // afterBytes at or beyond the end: truncate is then a normal end, reset still cuts before the final chunk.
  if (fault?.kind === 'reset' && sent < cutAt) return resetSocket(res);
  res.end();
}

function bodyOf(file: ServedFile): AsyncIterable<Buffer> {
  if (file.path !== undefined) return createReadStream(file.path);
  if (file.gzPath !== undefined) {
    // pipeline (not pipe) so a read error or bad gzip destroys the gunzip stream and surfaces in for-await.
    return pipeline(createReadStream(file.gzPath), createGunzip(), () => {});
  }
  const buffer = toBuffer(file.content ?? '');
  return Readable.from(
    (function* () {
      for (let i = 0; i < buffer.length; i += CHUNK) yield buffer.subarray(i, i + CHUNK);
    })(),
  );
}

function etagFor(entry: Entry): Promise<string> {
  if (!entry.etag) {
    const hash = createHash('sha256');
    const pending = (async () => {
      for await (const chunk of bodyOf(entry.file)) hash.update(chunk);
      return etagOf(hash.digest('hex'));
    })();
    entry.etag = pending;
    // Do not cache a failure (e.g. the file was not there yet): the next request tries again.
    pending.catch(() => {
      if (entry.etag === pending) entry.etag = undefined;
    });
  }
  return entry.etag;
}

/** If-None-Match uses weak comparison (RFC 9110 13.1.2), so W/ prefixes are ignored. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

/** Resolves on the event, or when the response closes (client gone), or after ms if given. */
function waitFor(res: ServerResponse, event: 'drain' | 'close', ms?: number): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off(event, done);
      res.off('close', done);
      resolve();
    };
    const timer = ms === undefined ? undefined : setTimeout(done, ms);
    res.once(event, done);
    res.once('close', done);
  });
}

/**
 * Destroys the connection without the final chunk. The bytes already written are first let
 * through to the kernel (http corks the socket until the next tick), so the client receives
 * exactly what was written and then sees the connection drop.
 */
async function resetSocket(res: ServerResponse): Promise<void> {
  const socket: Socket | null = res.socket;
  if (!socket) return;
  for (let i = 0; i < 1000 && !socket.destroyed; i++) {
    await sleep(1);
    if (socket.writableLength === 0) break;
  }
  socket.destroy();
}

function pathOf(url: string | undefined): string {
  const { pathname } = new URL(url ?? '/', 'http://localhost');
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

const toBuffer = (content: string | Buffer): Buffer =>
  typeof content === 'string' ? Buffer.from(content) : content;
const hashOf = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const etagOf = (hex: string): string => `"${hex}"`;

const HTML_ERROR_PAGE =
  '<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\n' +
  '<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>\n';
