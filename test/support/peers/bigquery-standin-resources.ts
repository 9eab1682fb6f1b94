/**
 * The BigQuery stand-in's datasets and tables (bigquery-standin.ts): insert, get, patch, delete, as
 * BigQuery checks them (404 notFound, 409 duplicate, 400 invalid, 412 on an If-Match that is not the
 * etag). Locations are stored in canonical form (canonicalLocation); a patch merges top-level fields.
 * A view's query must transpile and bind (400 invalid otherwise), as BigQuery checks it; every change
 * to the tables is then synced to the SQL engine (bigquery-standin-sql.ts).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  checkIfMatch,
  duplicate,
  HttpError,
  invalid,
  nonEmpty,
  notFound,
  objectBody,
} from './bigquery-standin-http.ts';
import { canonicalLocation } from './bigquery-standin-rules.ts';
import type { StandinState } from './bigquery-standin-state.ts';
import type { DatasetResource, TableResource } from './bigquery-standin-types.ts';

const newEtag = (): string => randomBytes(12).toString('base64');

export function requireDataset(
  state: StandinState,
  project: string,
  dataset: string,
): { location: string; resource: DatasetResource } {
  const found = state.datasets.get(`${project}.${dataset}`);
  if (!found) throw notFound(`Not found: Dataset ${project}:${dataset}`);
  return found;
}

export function requireTable(
  state: StandinState,
  project: string,
  dataset: string,
  table: string,
): TableResource {
  requireDataset(state, project, dataset);
  const found = state.tables.get(`${project}.${dataset}.${table}`);
  if (!found) throw notFound(`Not found: Table ${project}:${dataset}.${table}`);
  return found;
}

// ---- datasets ----

export function insertDataset(state: StandinState, project: string, body: unknown): DatasetResource {
  const posted = objectBody<DatasetResource>(body);
  const datasetId = posted.datasetReference?.datasetId;
  if (!nonEmpty(datasetId)) throw invalid('Required parameter is missing: datasetReference.datasetId');
  const key = `${project}.${datasetId}`;
  if (state.datasets.has(key)) throw duplicate(`Already Exists: Dataset ${project}:${datasetId}`);
  // Stored and reported in BigQuery's canonical form (US, EU; us-central1): see canonicalLocation.
  const location = canonicalLocation(nonEmpty(posted.location) ? posted.location : 'US');
  const created = String(state.now());
  const resource: DatasetResource = {
    ...posted,
    kind: 'bigquery#dataset',
    id: `${project}:${datasetId}`,
    datasetReference: { projectId: project, datasetId },
    location,
    creationTime: created,
    lastModifiedTime: created,
    etag: newEtag(),
  };
  state.datasets.set(key, { location, resource });
  return resource;
}

export function patchDataset(
  state: StandinState,
  req: IncomingMessage,
  project: string,
  dataset: string,
  body: unknown,
): DatasetResource {
  const entry = requireDataset(state, project, dataset);
  checkIfMatch(req, entry.resource.etag);
  entry.resource = {
    ...entry.resource,
    ...objectBody<DatasetResource>(body),
    id: entry.resource.id,
    datasetReference: entry.resource.datasetReference,
    location: entry.location,
    creationTime: entry.resource.creationTime,
    lastModifiedTime: String(state.now()),
    etag: newEtag(),
  };
  return entry.resource;
}

/** 400 resourceInUse if the dataset has tables, unless deleteContents=true (then they go too). */
export async function deleteDataset(
  state: StandinState,
  project: string,
  dataset: string,
  query: Record<string, string>,
): Promise<void> {
  requireDataset(state, project, dataset);
  const prefix = `${project}.${dataset}.`;
  const own = [...state.tables.keys()].filter((k) => k.startsWith(prefix));
  if (own.length > 0 && query.deleteContents !== 'true')
    throw new HttpError(400, 'resourceInUse', `Dataset ${project}:${dataset} is still in use`);
  for (const k of own) state.tables.delete(k);
  state.datasets.delete(`${project}.${dataset}`);
  await state.sql.sync();
}

// ---- tables ----

/** The resource of a new table: as posted, plus id, tableReference, type, location, times, etag. */
export function tableResource(
  state: StandinState,
  project: string,
  dataset: string,
  tableId: string,
  posted: TableResource,
): TableResource {
  const now = String(state.now());
  return {
    ...posted,
    kind: 'bigquery#table',
    id: `${project}:${dataset}.${tableId}`,
    tableReference: { projectId: project, datasetId: dataset, tableId },
    type: posted.view ? 'VIEW' : 'TABLE',
    location: requireDataset(state, project, dataset).location,
    creationTime: now,
    lastModifiedTime: now,
    numRows: '0',
    etag: newEtag(),
  };
}

/** tables.insert: the view checked, the table created (createTable), the SQL engine synced. */
export async function insertTable(
  state: StandinState,
  project: string,
  dataset: string,
  body: unknown,
): Promise<TableResource> {
  requireDataset(state, project, dataset);
  // A view's query must transpile and bind (400 invalid otherwise), as BigQuery checks it.
  const tableId = String((body as TableResource | undefined)?.tableReference?.tableId);
  await state.sql.checkView(`${project}.${dataset}.${tableId}`, body);
  const inserted = createTable(state, project, dataset, body);
  await state.sql.sync();
  return inserted;
}

/** 400 without tableReference.tableId or with a decorator in it, 409 if the table exists. */
function createTable(state: StandinState, project: string, dataset: string, body: unknown): TableResource {
  requireDataset(state, project, dataset);
  const posted = objectBody<TableResource>(body);
  const tableId = posted.tableReference?.tableId;
  if (!nonEmpty(tableId)) throw invalid('Required parameter is missing: tableReference.tableId');
  if (tableId.includes('$')) throw invalid(`Invalid table ID "${tableId}".`);
  const key = `${project}.${dataset}.${tableId}`;
  if (state.tables.has(key)) throw duplicate(`Already Exists: Table ${project}:${dataset}.${tableId}`);
  const resource = tableResource(state, project, dataset, tableId, posted);
  state.tables.set(key, resource);
  return resource;
}

/** tables.patch/update: the view checked, If-Match, top-level fields merged, the SQL engine synced. */
export async function patchTable(
  state: StandinState,
  req: IncomingMessage,
  project: string,
  dataset: string,
  table: string,
  body: unknown,
): Promise<TableResource> {
  requireTable(state, project, dataset, table);
  await state.sql.checkView(`${project}.${dataset}.${table}`, body);
  // Read again: the table may have changed while the view was checked.
  const current = requireTable(state, project, dataset, table);
  checkIfMatch(req, current.etag);
  const resource: TableResource = {
    ...current,
    ...objectBody<TableResource>(body),
    id: current.id,
    tableReference: current.tableReference,
    location: current.location,
    creationTime: current.creationTime,
    lastModifiedTime: String(state.now()),
    etag: newEtag(),
  };
  state.tables.set(`${project}.${dataset}.${table}`, resource);
  await state.sql.sync();
  return resource;
}

export async function deleteTable(
  state: StandinState,
  project: string,
  dataset: string,
  table: string,
): Promise<void> {
  requireTable(state, project, dataset, table);
  state.tables.delete(`${project}.${dataset}.${table}`);
  await state.sql.sync();
}
