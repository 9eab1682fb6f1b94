/**
 * A real Google Cloud Storage emulator for tests: fake-gcs-server (github.com/fsouza/fake-gcs-server,
 * installed into .ci/.cache/bin by .ci/install-test-servers) run as a child process on 127.0.0.1,
 * plain HTTP, in-memory backend, on a free port, with the given buckets created.
 *
 * Point @google-cloud/storage at it with `new Storage({ apiEndpoint: gcs.url, projectId: 'test' })`:
 * a custom endpoint makes the client skip authentication (see test/backends/fake-gcs.test.ts).
 *
 * The server is started through the `sh` watchdog of watched-process.ts, so it cannot outlive the
 * test process even when that process is SIGKILLed.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, startOnFreePort, startWatched, waitUntilReady } from './watched-process.ts';

// Tests import freePort from here (it lives in watched-process.ts, next to the watchdog).
export { freePort };

export interface FakeGcs {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  /** Kill the server and wait until it has exited. Idempotent. */
  stop(): Promise<void>;
}

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const READY_TIMEOUT_MS = 15_000;

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
  return startOnFreePort((port) => startOn(binary, port, options));
}

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
  const server = startWatched('fake-gcs', binary, args);
  const { stop } = server;

  const describe = (): string =>
    `fake-gcs-server (${binary} ${args.join(' ')})` +
    (server.exitCode() !== undefined ? ` exited with code ${server.exitCode()}` : '') +
    `; its output:\n${server.output().trim() || '(none)'}`;

  try {
    await waitUntilReady({
      label: 'fake-gcs-server',
      url,
      server,
      describe,
      timeoutMs: READY_TIMEOUT_MS,
      probe: async () => {
        const res = await fetch(`${url}/storage/v1/b`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        return res.status === 200 || `GET /storage/v1/b answered ${res.status}`;
      },
    });
    for (const bucket of options.buckets ?? []) await createBucket(url, bucket, options.location);
  } catch (error) {
    await stop();
    if (/address already in use/i.test(server.output())) {
      throw new Error(`address already in use: ${describe()}`, { cause: error });
    }
    throw error;
  }
  return { url, port, stop };
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
