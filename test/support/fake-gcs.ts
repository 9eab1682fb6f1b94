/**
 * A real Google Cloud Storage emulator for tests: fake-gcs-server (github.com/fsouza/fake-gcs-server,
 * installed into .ci/.cache/bin by .ci/install-test-servers) run as a child process on 127.0.0.1,
 * plain HTTP, in-memory backend, on a free port, with the given buckets created.
 *
 * Point @google-cloud/storage at it with `new Storage({ apiEndpoint: gcs.url, projectId: 'test' })`:
 * a custom endpoint makes the client skip authentication (see test/fake-gcs.test.ts).
 *
 * The server is started through a small `sh` watchdog that holds a pipe from this process and kills
 * the server when the pipe closes, so it cannot outlive the test process even when that process is
 * SIGKILLed (vitest SIGTERMs, then SIGKILLs, its fork workers, and neither runs 'exit' handlers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FakeGcs {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  /** Kill the server and wait until it has exited. Idempotent. */
  stop(): Promise<void>;
}

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** How much of the server's output to keep for error messages. */
const OUTPUT_TAIL = 16 * 1024;

/**
 * Runs "$@" (the server) in the background, and a watcher that blocks reading the shell's stdin (kept
 * on fd 3: a background job's own stdin would be /dev/null), a pipe whose only writer is the test
 * process. EOF means stop() closed it or the test process died, and the watcher then terminates the
 * server. The shell waits for the server and exits with its status, so it exits when the server does,
 * for whatever reason (the watcher's `cat`, left behind in the process group, is killed by the caller).
 */
const WATCHDOG = `exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
(cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null) &
exec 3<&-
wait "$server"`;

/** <repo>/.ci/.cache/bin/fake-gcs-server; throws if it has not been installed. */
export function fakeGcsBinary(): string {
  const binary = `${REPO_ROOT}.ci/.cache/bin/fake-gcs-server`;
  if (!existsSync(binary)) {
    throw new Error(
      `fake-gcs-server is not installed (looked for ${binary}). ` +
        `Run .ci/install-test-servers (needs Go) to install it.`,
    );
  }
  return binary;
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not get a free port');
  return address.port;
}

/** Live servers, killed (whole process group) if this process exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // detached: the watchdog leads its own process group, which the server shares.
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) killGroup(child, 'SIGKILL');
  });
}

export interface FakeGcsOptions {
  /** Buckets to create once the server is up. */
  buckets?: string[];
  /** Location of those buckets, and the server's default (-location); default 'US'. */
  location?: string;
  /** The executable to run instead of fakeGcsBinary(): for testing this helper. */
  binary?: string;
}

export async function startFakeGcs(options: FakeGcsOptions = {}): Promise<FakeGcs> {
  const binary = options.binary ?? fakeGcsBinary();
  // The port can be taken between freePort() and the server's bind: try a few times.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await startOn(binary, port, options);
    } catch (error) {
      lastError = error;
      if (!(error instanceof PortInUseError)) throw error;
    }
  }
  throw lastError;
}

class PortInUseError extends Error {}

async function startOn(binary: string, port: number, options: FakeGcsOptions): Promise<FakeGcs> {
  const url = `http://127.0.0.1:${port}`;
  const args = [
    '-scheme',
    'http',
    '-host',
    '127.0.0.1',
    '-port',
    String(port),
    // Resumable upload Location URLs are built from -external-url (else from -public-host).
    '-public-host',
    `127.0.0.1:${port}`,
    '-external-url',
    url,
    '-backend',
    'memory',
    '-log-level',
    'error',
    // Location reported for buckets created without one.
    '-location',
    options.location ?? 'US',
  ];
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'fake-gcs-watchdog', binary, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  installExitHook();

  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  // Do not keep the test process alive for the server: stop() (or exit) ends it.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void }).unref?.();
  }
  // The pipe's read end can be gone when the server already died: ignore EPIPE.
  child.stdin.on('error', () => {});

  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      live.delete(child);
      // The server was the watchdog's only other group member; make sure of it.
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
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitCode === undefined) {
        child.stdin.end();
        const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS, true)]);
        if (timedOut) {
          killGroup(child, 'SIGKILL');
          await exited;
        }
      }
    })();
    return stopping;
  };

  const describe = (): string =>
    `fake-gcs-server (${binary} ${args.join(' ')})` +
    (exitCode !== undefined ? ` exited with code ${exitCode}` : '') +
    `; its output:\n${output.trim() || '(none)'}`;

  try {
    await waitReady(url, () => exitCode !== undefined, describe);
    for (const bucket of options.buckets ?? []) await createBucket(url, bucket, options.location);
  } catch (error) {
    await stop();
    if (/address already in use/i.test(output)) throw new PortInUseError(describe());
    throw error;
  }
  return { url, port, stop };
}

async function waitReady(url: string, hasExited: () => boolean, describe: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastProblem = 'no answer yet';
  while (Date.now() < deadline) {
    if (hasExited()) throw new Error(`fake-gcs-server did not start: ${describe()}`);
    try {
      const res = await fetch(`${url}/storage/v1/b`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      lastProblem = `GET /storage/v1/b answered ${res.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(50);
  }
  throw new Error(
    `fake-gcs-server not ready within ${READY_TIMEOUT_MS} ms at ${url} (${lastProblem}): ${describe()}`,
  );
}

/** Create a bucket through the JSON API, as a client would. */
export async function createBucket(url: string, name: string, location?: string): Promise<void> {
  const res = await fetch(`${url}/storage/v1/b?project=test`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(location ? { name, location } : { name }),
  });
  const body = await res.text();
  if (res.status !== 200) {
    throw new Error(`fake-gcs-server: creating bucket ${name} failed: ${res.status} ${body}`);
  }
}
