/**
 * Every backend, and the one a URI names. The only place that looks at a URI's scheme: the
 * rest of the tool asks a backend's capabilities. Light to import (no adapter, no SDK): the
 * settings check URIs through it while configuration is resolved.
 */
import { UsageError } from '../errors.ts';
import type { Lake } from '../lake/lake.ts';
import type { LakeBackend, WarehouseBackend } from './backend.ts';
import { localLakeBackend } from './local-backend.ts';
import { gcsLakeBackend } from './gcs-backend.ts';
import { duckdbWarehouseBackend } from './duckdb-backend.ts';
import { bigqueryWarehouseBackend } from './bigquery-backend.ts';

/** In the order the refusal message names them; their URIs never overlap. */
export const LAKE_BACKENDS: readonly LakeBackend[] = [localLakeBackend, gcsLakeBackend];
export const WAREHOUSE_BACKENDS: readonly WarehouseBackend[] = [
  duckdbWarehouseBackend,
  bigqueryWarehouseBackend,
];

/** The lake backend `uri` names; `name` says where the URI came from (a flag, a variable, a block). */
export function lakeBackendFor(uri: string, name = '--lake'): LakeBackend {
  return pick(LAKE_BACKENDS, uri, name);
}

export function warehouseBackendFor(uri: string, name = '--warehouse'): WarehouseBackend {
  return pick(WAREHOUSE_BACKENDS, uri, name);
}

/**
 * Refuses a lake the warehouse cannot load from (a staging destination reads only its own
 * cloud's storage), before anything is uploaded.
 */
export function checkLoadsFrom(warehouse: WarehouseBackend, lake: Lake): void {
  const schemes = warehouse.capabilities.lakeSchemes;
  if (schemes === 'any' || schemes.includes(lake.capabilities.scheme)) return;
  const stores = LAKE_BACKENDS.filter((backend) => schemes.includes(backend.capabilities.scheme));
  throw new UsageError(
    `the ${warehouse.name} warehouse loads from ${orList(stores.map((s) => s.name))}: use a ${orList(schemes.map((s) => `${s}://`))} lake, not ${lake.uri}`,
  );
}

/**
 * The local path of the lake or warehouse `uri` names, or undefined: a cloud backend, or a URI
 * no backend takes (refused where it is resolved and where it is opened).
 */
export function localPathOf(role: 'lake' | 'warehouse', uri: string): string | undefined {
  const backends: readonly (LakeBackend | WarehouseBackend)[] =
    role === 'lake' ? LAKE_BACKENDS : WAREHOUSE_BACKENDS;
  return backends.find((backend) => backend.accepts(uri))?.localPath(uri);
}

function pick<Backend extends { accepts(uri: string): boolean; forms: readonly string[] }>(
  backends: readonly Backend[],
  uri: string,
  name: string,
): Backend {
  const backend = backends.find((candidate) => candidate.accepts(uri));
  if (backend) return backend;
  throw new UsageError(`${name} ${uri}: expected ${orList(backends.flatMap((b) => b.forms))}`);
}

/** "a, b or c". */
function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}
