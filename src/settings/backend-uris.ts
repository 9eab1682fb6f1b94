/**
 * The lake and warehouse URIs checked while configuration is resolved, so that one of a scheme no
 * backend takes is refused naming where it came from (a flag, a variable, a block) before any
 * backend is opened. Which backend takes a URI is the registry's to say (backends/registry.ts),
 * and its parser checks the rest (a bucket name, a project and dataset) here too, naming the
 * same source; the parsers import no cloud SDK.
 */
import { lakeBackendFor, warehouseBackendFor } from '../backends/registry.ts';

/** `uri` if it names a lake (a folder, file:// or gs://); `name` says where it came from. */
export function checkLakeUri(name: string, uri: string): string {
  lakeBackendFor(uri, name).parse(uri, name);
  return uri;
}

/** `uri` if it names a warehouse (a DuckDB file, duckdb:PATH or bigquery://). */
export function checkWarehouseUri(name: string, uri: string): string {
  warehouseBackendFor(uri, name).parse(uri, name);
  return uri;
}
