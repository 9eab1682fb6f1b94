/**
 * `gs://bucket[/prefix]` parsed, without loading the Cloud Storage SDK (the backend registry
 * parses URIs before any backend is opened).
 */
import { UsageError } from '../errors.ts';

/** `name`: where the URI came from (a flag, a variable, a block), for the message. */
export function parseGcsUri(uri: string, name = '--lake'): { bucket: string; prefix: string } {
  const match = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!match?.[1])
    throw new UsageError(`${name} ${uri}: not a gs://bucket[/prefix] URI with a valid bucket name`);
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((part) => part === '.' || part === '..')) {
    throw new UsageError(`${name} ${uri}: the prefix may not contain '.' or '..' segments`);
  }
  // GCS refuses CR and LF in object names and warns against other control characters; a NUL
  // or an escape sequence in a prefix is a mistake, never a place.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(prefix)) {
    throw new UsageError(`${name} ${JSON.stringify(uri)}: the prefix may not contain control characters`);
  }
  return { bucket: match[1], prefix: prefix === '' ? '' : `${prefix}/` };
}
