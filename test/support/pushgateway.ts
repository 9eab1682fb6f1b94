/**
 * A real Prometheus Pushgateway for tests: Debian's prometheus-pushgateway (installed by
 * .ci/install-test-servers) run as a child process on 127.0.0.1, on a free port, metrics in
 * memory only (the Debian build persists to /var/lib/prometheus/pushgateway.data by default;
 * `--persistence.file=` turns that off).
 *
 * Started through the same kind of `sh` watchdog as fake-gcs.ts: it holds a pipe from this
 * process and kills the server when the pipe closes, so the server cannot outlive the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './fake-gcs.ts';

export const PUSHGATEWAY_BINARY = '/usr/bin/prometheus-pushgateway';

export interface Pushgateway {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** The gateway's /metrics page (what Prometheus scrapes). */
  scrape(): Promise<string>;
  /** Kill the server and wait until it has exited. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const OUTPUT_TAIL = 16 * 1024;

/** See fake-gcs.ts: the watcher's EOF on fd 3 (our pipe) terminates the server. */
const WATCHDOG = `exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
(cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null) &
exec 3<&-
wait "$server"`;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

export async function startPushgateway(): Promise<Pushgateway> {
  if (!existsSync(PUSHGATEWAY_BINARY)) {
    throw new Error(
      `${PUSHGATEWAY_BINARY} is not installed: run .ci/install-test-servers (apt-get install prometheus-pushgateway)`,
    );
  }
  let lastError: unknown;
  // The port can be taken between freePort() and the server's bind: try a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOn(await freePort());
    } catch (error) {
      lastError = error;
      if (!(error instanceof Error && /address already in use/i.test(error.message))) throw error;
    }
  }
  throw lastError;
}

async function startOn(port: number): Promise<Pushgateway> {
  const url = `http://127.0.0.1:${port}`;
  const args = [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=warn'];
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'pushgateway-watchdog', PUSHGATEWAY_BINARY, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) killGroup(c, 'SIGKILL');
    });
  }

  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void }).unref?.();
  }
  child.stdin.on('error', () => {});

  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      live.delete(child);
      killGroup(child, 'SIGKILL');
      resolve();
    });
    child.once('error', (error) => {
      collect(Buffer.from(`spawn failed: ${error.message}\n`));
      exitCode = -1;
      live.delete(child);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (exitCode !== undefined) return;
      child.stdin.end();
      const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS, true)]);
      if (timedOut) {
        killGroup(child, 'SIGKILL');
        await exited;
      }
    })());

  const describe = (): string =>
    `prometheus-pushgateway (${args.join(' ')})` +
    (exitCode !== undefined ? ` exited with code ${exitCode}` : '') +
    `; its output:\n${output.trim() || '(none)'}`;

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastProblem = 'no answer yet';
  for (;;) {
    if (exitCode !== undefined || Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus-pushgateway did not get ready at ${url} (${lastProblem}): ${describe()}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      lastProblem = `GET /-/ready answered ${res.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(50);
  }

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET ${url}/metrics answered ${res.status}: ${text}`);
    return text;
  };
  return { url, scrape, stop };
}
