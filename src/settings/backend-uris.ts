/**
 * The lake and warehouse URIs checked while configuration is resolved, so that one of a scheme no
 * backend takes is refused naming where it came from (a flag, a variable, a block) before any
 * backend is opened. Only the scheme is checked here: each backend parses the rest of its own URI
 * when it opens (lake/gcs, warehouse/bigquery), which keeps the cloud SDKs unloaded until chosen.
 */
import { UsageError } from '../errors.ts';

const ANY_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** `uri` if it names a lake (a folder, file:// or gs://); `name` says where it came from. */
export function checkLakeUri(name: string, uri: string): string {
  if (/^gs:\/\//i.test(uri) || uri.startsWith('file://') || !ANY_SCHEME.test(uri)) return uri;
  throw new UsageError(`${name} ${uri}: expected a folder path, a file:// URL or gs://bucket/prefix`);
}

/** `uri` if it names a warehouse (a DuckDB file, duckdb:PATH or bigquery://). */
export function checkWarehouseUri(name: string, uri: string): string {
  if (/^bigquery:\/\//i.test(uri)) return uri;
  const path = uri.replace(/^duckdb:(\/\/)?/i, '');
  if (ANY_SCHEME.test(path) || path === '') {
    throw new UsageError(
      `${name} ${uri}: expected a DuckDB file path (or duckdb:PATH) or bigquery://project/dataset`,
    );
  }
  return uri;
}
