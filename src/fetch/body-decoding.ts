/**
 * How a response body is framed and encoded, and the strict decoders that undo its codings.
 *
 * Completeness: HTTP proves a body whole in two ways only, a declared Content-Length that was
 * met or a chunked body that reached its last (zero-size) chunk. undici's `request()` fails the
 * body with "other side closed" when either is cut (measured on undici 8.13.1 against a raw
 * socket that sent half the declared bytes, and a chunked body without its terminator). A body
 * that is neither ends when the server closes the connection, and a cut there looks exactly like
 * an end: it is accepted but marked `connection-close`, for the plausibility gate to judge.
 *
 * Codings are decoded here, not by undici's fetch: fetch inflates with `Z_SYNC_FLUSH` as its
 * finish flush (lib/web/fetch/index.js in undici 8.13.1), so a gzip stream cut before its
 * trailer ends quietly with the bytes so far; measured: a 12,000-byte body whose gzip stream
 * lost its last 10 bytes came out as 11,881 bytes and no error. Node's zlib streams with their
 * default `Z_FINISH` fail such a stream ("unexpected end of file"), as they do a brotli stream
 * and zlib or raw deflate cut anywhere. A transfer coding other than chunked (`Transfer-Encoding:
 * gzip, chunked`) reaches us undecoded (undici strips only `chunked`): it is undone here too.
 */
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import { FetchError } from '../errors.ts';

/** What proved the body's end: 'connection-close' means nothing did (see above). */
export type Completeness = 'content-length' | 'chunked' | 'connection-close';

export interface BodyFraming {
  completeness: Completeness;
  /** Content-Length, when declared (of the encoded body). */
  declaredBytes: number | undefined;
  /** Codings to undo, in the order to undo them (the last one applied first). */
  codings: Coding[];
  /** The codings as the server named them, in the order applied (content, then transfer but chunked). */
  contentEncoding: string | undefined;
}

type Coding = 'gzip' | 'deflate' | 'br';

const CODINGS: Readonly<Record<string, Coding>> = {
  gzip: 'gzip',
  'x-gzip': 'gzip',
  deflate: 'deflate',
  br: 'br',
};

type Headers = Record<string, string | string[] | undefined>;

/** The body's framing and codings; a FetchError (never retried) for a coding we cannot undo. */
export function framingOf(url: string, headers: Headers): BodyFraming {
  const transfer = listOf(headers['transfer-encoding']);
  const chunked = transfer.at(-1) === 'chunked';
  const transferCodings = transfer.filter((coding) => coding !== 'chunked');
  const contentCodings = listOf(headers['content-encoding']);
  // Each list names codings in the order they were applied, and transfer codings were applied
  // after the content codings: undone, transfer codings first, each list from its end.
  const undo = [...transferCodings.toReversed(), ...contentCodings.toReversed()];
  const codings = undo.map((name) => {
    const coding = CODINGS[name];
    if (coding === undefined) {
      throw new FetchError(
        `${url}: the server sent the body in an encoding this worker cannot decode (${name}); it asks for gzip or deflate`,
        { kind: 'content-encoding' },
      );
    }
    return coding;
  });
  const length = single(headers['content-length']);
  const named = [...contentCodings, ...transferCodings];
  return {
    completeness: chunked ? 'chunked' : length !== undefined ? 'content-length' : 'connection-close',
    declaredBytes: length === undefined ? undefined : Number(length),
    codings,
    contentEncoding: named.length > 0 ? named.join(', ') : undefined,
  };
}

/**
 * The decoders for `codings`, outermost first. `first` is the body's first byte: HTTP's
 * "deflate" is the zlib format (RFC 9110 8.4.1.2), but some servers send raw deflate; as
 * undici's fetch does, a first byte whose low nibble is 8 (the zlib CM field) means zlib.
 * Only the outermost coding can be told so; inner deflate layers are taken as zlib.
 */
export function decodersFor(codings: readonly Coding[], first: number | undefined): Transform[] {
  return codings.map((coding, index) => {
    if (coding === 'gzip') return createGunzip();
    if (coding === 'br') return createBrotliDecompress();
    const raw = index === 0 && first !== undefined && (first & 0x0f) !== 0x08;
    return raw ? createInflateRaw() : createInflate();
  });
}

/** A zlib error that means the stream stopped before its end (not corrupt data). */
export function isCutStream(error: unknown): boolean {
  const { code, message } = error as NodeJS.ErrnoException;
  return code === 'Z_BUF_ERROR' && /unexpected end of file/i.test(message);
}

/** A zlib error of any kind (corrupt or cut). */
export function isDecodingError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_BROTLI'));
}

function listOf(value: string | string[] | undefined): string[] {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return text
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== '' && part !== 'identity');
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
