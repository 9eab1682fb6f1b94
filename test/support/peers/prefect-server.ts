/**
 * A real Prefect server for tests: `prefect server start` from the virtualenv that
 * .ci/install-test-servers makes (.ci/.cache/prefect-venv, pinned Prefect), on 127.0.0.1 and a free
 * port, with its own temporary PREFECT_HOME and SQLite database, no UI, no analytics and no
 * background services (the scheduler, late runs...): tests drive every state change themselves.
 *
 * Started through the `sh` watchdog of watched-process.ts (as fake-gcs.ts is), so the server cannot
 * outlive the tests. It takes about 10 s to start (database migrations): one per test file.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOnFreePort, startWatched, waitUntilReady } from './watched-process.ts';

export const PREFECT_VENV = fileURLToPath(new URL('../../../.ci/.cache/prefect-venv/', import.meta.url));
export const PREFECT_BINARY = join(PREFECT_VENV, 'bin', 'prefect');

export interface PrefectServer {
  /** The API's base URL, what PREFECT_API_URL holds: http://127.0.0.1:41234/api */
  readonly apiUrl: string;
  /** How long the server took to answer /api/health, in milliseconds. */
  readonly startMs: number;
  /** A JSON request to the API; throws on a status outside `accept` (default 2xx). */
  api<T = unknown>(method: string, path: string, body?: unknown, accept?: number[]): Promise<T>;
  /** The answer's status and body, whatever the status. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** Stop the server, wait until it has exited, and remove its home. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 50_000;

export async function startPrefectServer(): Promise<PrefectServer> {
  if (!existsSync(PREFECT_BINARY)) {
    throw new Error(`${PREFECT_BINARY} is not installed: run .ci/install-test-servers (pip install prefect)`);
  }
  return startOnFreePort(startOn);
}

async function startOn(port: number): Promise<PrefectServer> {
  const home = await mkdtemp(join(tmpdir(), 'prefect-test-'));
  const started = Date.now();
  const settings = [
    `PREFECT_HOME=${join(home, 'home')}`,
    `PREFECT_API_DATABASE_CONNECTION_URL=sqlite+aiosqlite:///${join(home, 'prefect.db')}`,
    'PREFECT_SERVER_ANALYTICS_ENABLED=false',
    'PREFECT_SERVER_UI_ENABLED=false',
    'DO_NOT_TRACK=1',
  ];
  const args = ['--host', '127.0.0.1', '--port', String(port), '--no-ui', '--analytics-off', '--no-services'];
  // env(1) gives the server its settings (startWatched passes this process's environment), and
  // drops any PREFECT_API_URL/KEY of the developer's, which the server must not follow.
  const server = startWatched('prefect', '/usr/bin/env', [
    '-u',
    'PREFECT_API_URL',
    '-u',
    'PREFECT_API_KEY',
    ...settings,
    PREFECT_BINARY,
    'server',
    'start',
    ...args,
  ]);
  const stop = async (): Promise<void> => {
    await server.stop();
    await rm(home, { recursive: true, force: true });
  };
  const apiUrl = `http://127.0.0.1:${port}/api`;

  const describe = (): string =>
    `prefect server start ${args.join(' ')}` +
    (server.exitCode() !== undefined ? ` exited with code ${server.exitCode()}` : '') +
    `; its output:\n${server.output().trim() || '(none)'}`;

  try {
    await waitUntilReady({
      label: 'the Prefect server',
      url: apiUrl,
      server,
      describe,
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 100,
      probe: async () => {
        const res = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        const text = await res.text();
        return (res.status === 200 && text === 'true') || `GET /api/health answered ${res.status} ${text}`;
      },
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const startMs = Date.now() - started;

  const request = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${apiUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
  };
  const api = async <T>(method: string, path: string, body?: unknown, accept?: number[]): Promise<T> => {
    const answer = await request(method, path, body);
    const ok = accept ? accept.includes(answer.status) : answer.status >= 200 && answer.status < 300;
    if (!ok) throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    return answer.body as T;
  };
  return { apiUrl, startMs, api, request, stop };
}
