/**
 * The source stand-in's framing, encoding and redirect faults (source-server.ts hands them
 * here), and the content variants of a well-formed file (BOM, CRLF, an overlong line).
 *
 * Framing faults write the response on the socket by hand, so the test decides every byte:
 * how the body's end is told (Content-Length, chunked, or only by closing the connection), its
 * content or transfer coding, and where it is cut and how (a clean end that hides the cut, or
 * a dropped connection). Node's ServerResponse would add its own framing and refuse a body
 * shorter than its Content-Length.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';

export type Encoding = 'gzip' | 'deflate' | 'deflate-raw' | 'br' | 'compress';

export interface Framing {
  /**
   * How the body's end is told: `length` (Content-Length), `chunked`, or `close` (neither: the
   * server ends the body by closing the connection).
   */
  by: 'length' | 'chunked' | 'close';
  /** The whole body encoded so (`deflate-raw`: raw deflate named "deflate", as some servers send). */
  encoding?: Encoding;
  /** Name the coding in Transfer-Encoding (`gzip, chunked`) rather than Content-Encoding. */
  transfer?: boolean;
  /** Send only the first cutAt bytes of the (encoded) body. */
  cutAt?: number;
  /**
   * After a cut: `clean` ends the response as if whole (Content-Length of the bytes sent, or the
   * chunked terminator): HTTP cannot tell, only the coding's trailer can. `drop` (the default)
   * closes the connection where it stands: short of the declared length, no terminator.
   */
  cut?: 'clean' | 'drop';
}

export type SpecialFault =
  | { kind: 'framing'; framing: Framing; times?: number }
  /**
   * 302 back to the same URL (`self`; a client sees the loop at once), or to the same path with
   * a new query each time (`endless`; only a redirect limit stops it).
   */
  | { kind: 'redirect'; loop: 'self' | 'endless'; times?: number };

/** Answers a request with a special fault; `body` is the served file's content. */
export async function sendSpecial(
  req: IncomingMessage,
  res: ServerResponse,
  record: { status: number },
  fault: SpecialFault,
  body: AsyncIterable<Buffer>,
): Promise<void> {
  if (fault.kind === 'redirect') {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const hop = Number(url.searchParams.get('hop') ?? '0') + 1;
    const location = fault.loop === 'self' ? `${url.pathname}${url.search}` : `${url.pathname}?hop=${hop}`;
    record.status = 302;
    res.writeHead(302, { location, 'content-length': '0' });
    return void res.end();
  }
  const { framing } = fault;
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const encoded = encode(Buffer.concat(chunks), framing.encoding);
  const cutAt = Math.min(framing.cutAt ?? encoded.length, encoded.length);
  const sent = encoded.subarray(0, cutAt);
  const clean = framing.cutAt === undefined || framing.cut === 'clean';
  const head = ['HTTP/1.1 200 OK', 'Content-Type: text/plain'];
  const coding = framing.encoding === 'deflate-raw' ? 'deflate' : framing.encoding;
  if (coding && !framing.transfer) head.push(`Content-Encoding: ${coding}`);
  if (framing.by === 'length') head.push(`Content-Length: ${clean ? sent.length : encoded.length}`);
  if (framing.by === 'chunked')
    head.push(`Transfer-Encoding: ${coding && framing.transfer ? `${coding}, ` : ''}chunked`);
  head.push('Connection: close');
  const socket: Socket = req.socket;
  record.status = 200;
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  if (framing.by === 'chunked') {
    for (let at = 0; at < sent.length; at += 64 * 1024) {
      const piece = sent.subarray(at, at + 64 * 1024);
      socket.write(`${piece.length.toString(16)}\r\n`);
      socket.write(piece);
      socket.write('\r\n');
    }
    if (clean) socket.write('0\r\n\r\n');
  } else {
    socket.write(sent);
  }
  if (clean || framing.by === 'close') return void socket.end();
  // Let what was written reach the client, then drop the connection (no FIN-ended body).
  for (let i = 0; i < 1000 && socket.writableLength > 0; i++) await sleep(1);
  socket.destroy();
}

function encode(body: Buffer, encoding: Encoding | undefined): Buffer {
  switch (encoding) {
    case undefined:
      return body;
    case 'gzip':
      return gzipSync(body);
    case 'deflate':
      return deflateSync(body);
    case 'deflate-raw':
      return deflateRawSync(body);
    case 'br':
      return brotliCompressSync(body);
    case 'compress':
      // A coding no client here decodes (LZW): the bytes only need to be named so.
      return body;
  }
}

/** The file with a UTF-8 byte-order mark in front, as some editors and exports write it. */
export function withBom(text: string): Buffer {
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'latin1')]);
}

/** The file with CRLF line ends. */
export function withCrlf(text: string): Buffer {
  return Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1');
}

/** The file with a line of `bytes` bytes ('9's) inserted as line `lineNumber` (1-based). */
export function withLongLine(text: string, lineNumber: number, bytes: number): Buffer {
  const lines = text.split('\n');
  lines.splice(lineNumber - 1, 0, '9'.repeat(bytes));
  return Buffer.from(lines.join('\n'), 'latin1');
}
