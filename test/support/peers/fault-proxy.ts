/**
 * An HTTP proxy for tests, on 127.0.0.1 (random port), forwarding every request to a target base URL
 * (method, path and query, headers, body streamed both ways) with programmable faults, so a client's
 * retry and resume logic can be exercised over real sockets against a real server (fake-gcs-server).
 *
 * Nothing is rewritten except the `Location` (and `X-Goog-Upload-URL`) response header when it points
 * at the target: fake-gcs-server builds resumable-upload session URLs from its own address, and a
 * client that followed them would bypass the proxy for the rest of the upload.
 *
 * With `resumableStatus`, the proxy also answers, itself, the status query a client sends to a
 * resumable session after a fault (see FaultProxyOptions): fake-gcs-server gets that one wrong.
 */
import {
  createServer,
  request as httpRequest,
  STATUS_CODES,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
}

export type ProxyFault =
  /**
   * Answer `status` (e.g. 503, 429) with a JSON error body `{ error: { code, message } }` instead of
   * forwarding. The request body is read (and dropped) first, then the answer is sent.
   */
  | { kind: 'status'; status: number; times: number; match?: (req: ProxiedRequest) => boolean }
  /**
   * Forward the request, but destroy the client's socket (and abort the forwarded request) once
   * `afterBytes` bytes of the request body have been received (default 0: at once, before anything is
   * forwarded): a connection broken mid-upload. The first `afterBytes` bytes are forwarded. When the
   * body ends before `afterBytes`, the whole request is forwarded and the socket is destroyed instead
   * of relaying the response: the server processed the request but its answer was lost.
   */
  | { kind: 'reset'; times: number; afterBytes?: number; match?: (req: ProxiedRequest) => boolean };

export interface ProxyRequestRecord extends ProxiedRequest {
  /** The status sent to the client; 0 while in flight, or when no response was sent (reset). */
  status: number;
  /** The fault applied to this request, if any. */
  fault?: ProxyFault['kind'];
  /** Answered by the proxy as GCS would, not forwarded (`resumableStatus`). */
  statusQuery?: true;
}

export interface FaultProxyOptions {
  /**
   * Answer a resumable upload's status query (a PUT with no body whose Content-Range names
   * only the total, no bytes) the way GCS does, 308 with the `Range` the server last acknowledged (none: nothing kept),
   * for sessions into which a fault was injected. fake-gcs-server takes that query for the end
   * of the upload and commits what it has, so a client that resumes correctly after a fault
   * (query, then send the rest) would fail against it; everything else still goes to it.
   */
  resumableStatus?: boolean;
}

export interface FaultProxy {
  /** The proxy's base URL, e.g. http://127.0.0.1:41234 (the target's path prefix, if any, is implied). */
  readonly url: string;
  /** Every request, in arrival order. */
  readonly requests: ProxyRequestRecord[];
  /**
   * Set (or, with undefined, clear) the fault. `times` counts down once per matching request; the
   * fault clears itself when it reaches 0. `match` defaults to every request.
   */
  fault(f: ProxyFault | undefined): void;
  /** Stop listening and destroy open connections (client and upstream). */
  close(): Promise<void>;
}

/** Response headers that carry an absolute URL the client will use for later requests. */
const URL_HEADERS = ['location', 'x-goog-upload-url'];

/** A status query's Content-Range: no bytes, only the total (known or not). */
const STATUS_QUERY_RANGE = /^bytes \*\/(\d+|\*)$/;

export async function startFaultProxy(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const targetBase = target.replace(/\/+$/, '');
  // Validate early: a bad target is a test bug.
  const targetUrl = new URL(targetBase);
  if (targetUrl.protocol !== 'http:') throw new Error(`fault proxy: only http targets (${target})`);

  const requests: ProxyRequestRecord[] = [];
  const upstreams = new Set<ClientRequest>();
  let current: ProxyFault | undefined;
  let proxyBase = '';
  /** Resumable sessions (upload_id) a fault was injected into, with the Range last acknowledged. */
  const faulted = new Map<string, string | undefined>();

  /** The fault for this request, if it matches; counts the fault down. */
  function takeFault(req: ProxiedRequest): ProxyFault | undefined {
    const f = current;
    if (!f || f.times <= 0) return undefined;
    if (f.match && !f.match(req)) return undefined;
    f.times -= 1;
    if (f.times <= 0 && current === f) current = undefined;
    return f;
  }

  function rewriteUrlHeader(value: string): string {
    if (!value.startsWith(targetBase)) return value;
    const rest = value.slice(targetBase.length);
    return rest === '' || /^[/?#]/.test(rest) ? proxyBase + rest : value;
  }

  function answerStatus(
    req: IncomingMessage,
    res: ServerResponse,
    record: ProxyRequestRecord,
    status: number,
  ) {
    const message = `${STATUS_CODES[status] ?? 'Error'} (injected by the fault proxy)`;
    const body = JSON.stringify({ error: { code: status, message } });
    const send = (): void => {
      if (res.headersSent || res.destroyed) return;
      record.status = status;
      res.writeHead(status, {
        'content-type': 'application/json; charset=UTF-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    };
    req.on('end', send);
    req.on('error', () => {});
    req.resume();
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    record: ProxyRequestRecord,
    resetAfter: number | undefined,
  ): void {
    const client = req.socket;
    /** Both connections were broken on purpose. */
    let reset = false;
    /** resetAfter bytes arrived: waiting for them to reach the server before breaking. */
    let breaking = false;
    let received = 0;
    const breakConnection = (): void => {
      if (reset) return;
      reset = true;
      record.status = 0;
      client.destroy();
      upstream.destroy();
    };

    if (resetAfter === 0) {
      reset = true;
      client.destroy();
      return;
    }

    const headers: OutgoingHttpHeaders = { ...req.headers };
    const upstream = httpRequest(`${targetBase}${req.url ?? '/'}`, { method: req.method, headers });
    upstreams.add(upstream);
    upstream.on('close', () => upstreams.delete(upstream));

    upstream.on('response', (upRes) => {
      if (reset) return void upRes.destroy();
      const session = uploadIdOf(req.url);
      if (session !== undefined && faulted.has(session) && upRes.statusCode === 308) {
        faulted.set(session, typeof upRes.headers.range === 'string' ? upRes.headers.range : undefined);
      }
      if (resetAfter !== undefined) {
        // The body ended before resetAfter bytes: the server got it all; lose its answer.
        upRes.destroy();
        breakConnection();
        return;
      }
      const outHeaders: OutgoingHttpHeaders = { ...upRes.headers };
      for (const name of URL_HEADERS) {
        const value = outHeaders[name];
        if (typeof value === 'string') outHeaders[name] = rewriteUrlHeader(value);
      }
      const status = upRes.statusCode ?? 502;
      record.status = status;
      res.writeHead(status, upRes.statusMessage, outHeaders);
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
      upRes.on('aborted', () => res.destroy());
    });

    upstream.on('error', (error) => {
      if (reset) return;
      if (breaking) return breakConnection();
      if (!res.headersSent) {
        const body = JSON.stringify({
          error: { code: 502, message: `fault proxy: upstream request failed: ${error.message}` },
        });
        record.status = 502;
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.destroy();
      }
    });

    // The client went away before the exchange completed: abort the upstream side too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });

    // Request body, client -> upstream, with backpressure and byte counting.
    req.on('data', (chunk: Buffer) => {
      if (reset || breaking) return;
      if (resetAfter !== undefined && received + chunk.length >= resetAfter) {
        breaking = true;
        req.pause();
        const part = chunk.subarray(0, resetAfter - received);
        received = resetAfter;
        // Let the first resetAfter bytes reach the server, then break both connections.
        if (part.length > 0) upstream.write(part, () => breakConnection());
        else breakConnection();
        return;
      }
      received += chunk.length;
      if (!upstream.write(chunk)) req.pause();
    });
    upstream.on('drain', () => {
      if (!breaking) req.resume();
    });
    req.on('end', () => {
      if (!reset && !breaking) upstream.end();
    });
    req.on('error', () => upstream.destroy());
  }

  /** GCS's answer to a status query: 308, with the Range the server acknowledged, if any. */
  function answerStatusQuery(req: IncomingMessage, res: ServerResponse, record: ProxyRequestRecord): void {
    const range = faulted.get(uploadIdOf(req.url) ?? '');
    record.status = 308;
    record.statusQuery = true;
    req.resume();
    res.writeHead(308, { 'content-length': 0, ...(range === undefined ? {} : { range }) });
    res.end();
  }

  const server = createServer((req, res) => {
    const info: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/' };
    const record: ProxyRequestRecord = { ...info, status: 0 };
    requests.push(record);
    const session = uploadIdOf(info.url);
    const contentRange = req.headers['content-range'] ?? '';
    if (
      options.resumableStatus &&
      session !== undefined &&
      faulted.has(session) &&
      req.method === 'PUT' &&
      STATUS_QUERY_RANGE.test(contentRange) &&
      Number(req.headers['content-length'] ?? 0) === 0
    ) {
      return answerStatusQuery(req, res, record);
    }
    const f = takeFault(info);
    if (f) record.fault = f.kind;
    if (f && session !== undefined && !faulted.has(session)) faulted.set(session, undefined);
    if (f?.kind === 'status') return answerStatus(req, res, record, f.status);
    forward(req, res, record, f?.kind === 'reset' ? (f.afterBytes ?? 0) : undefined);
  });
  // Sockets we destroy on purpose raise errors on the server side; they are expected.
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  proxyBase = `http://127.0.0.1:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url: proxyBase,
    requests,
    fault(f) {
      // A copy: times is counted down here, not in the caller's object.
      current = f ? { ...f } : undefined;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const upstream of upstreams) upstream.destroy();
      });
      return closing;
    },
  };
}

/** The resumable session a request belongs to (its `upload_id`), if any. */
function uploadIdOf(url: string | undefined): string | undefined {
  return new URL(url ?? '/', 'http://proxy').searchParams.get('upload_id') ?? undefined;
}
