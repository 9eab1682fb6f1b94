/**
 * The demo's source: a loopback HTTP server (127.0.0.1, a free port) serving the sample week
 * shipped in the package (src/reference/demo/) as `/turnstile_230603.txt`, gunzipped on the fly,
 * the way the MTA's server sends a weekly file (text/plain, no Content-Length). Anything else is
 * a 404. It exists so `mta-ingest demo` runs the real pipeline with no network at all.
 */
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';

/** The sample's drop date, and the file name the source serves it under. */
export const DEMO_DROP_DATE = '2023-06-03';
export const DEMO_FILE = 'turnstile_230603.txt';
/** Where the sample lives in the package. */
export const DEMO_SAMPLE_GZ = fileURLToPath(
  new URL('../reference/demo/turnstile_230603.txt.gz', import.meta.url),
);

export interface DemoSource {
  /** Base URL without trailing slash: the week is `<baseUrl>/turnstile_230603.txt`. */
  readonly baseUrl: string;
  /** Stops the server, ending any open connection. */
  close(): Promise<void>;
}

export async function startDemoSource(sampleGz: string = DEMO_SAMPLE_GZ): Promise<DemoSource> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== `/${DEMO_FILE}`) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    if (req.method === 'HEAD') return void res.end();
    // pipeline destroys every stream on an error or a client that goes away; a broken sample
    // then cuts the body short, which the fetcher reports as a failed week.
    pipeline(createReadStream(sampleGz), createGunzip(), res, () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      })),
  };
}
