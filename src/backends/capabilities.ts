/**
 * What each backend can do, declared once. A leaf module (it imports only the port types), so
 * that both a backend's declaration (src/backends/<backend>-backend.ts) and its adapter
 * (src/lake/…, src/warehouse/…) read the same values without importing each other.
 */
import type { LakeCapabilities } from '../lake/lake.ts';
import type { WarehouseCapabilities } from '../warehouse/warehouse.ts';

export const LOCAL_LAKE_CAPABILITIES: LakeCapabilities = {
  scheme: 'file',
  // Writes go to a temporary name, then are renamed: a killed writer leaves the temporary.
  leavesTemporaries: true,
  knowsLocation: false,
};

export const GCS_LAKE_CAPABILITIES: LakeCapabilities = {
  scheme: 'gs',
  // An object appears whole or not at all.
  leavesTemporaries: false,
  knowsLocation: true,
};

export const DUCKDB_WAREHOUSE_CAPABILITIES: WarehouseCapabilities = {
  loadsFrom: 'local-file',
  lakeSchemes: 'any',
  loadState: 'same-transaction',
  exclusivePerProcess: true,
  listsWeeks: true,
  answersQueries: true,
  readsWeekFacts: true,
};

export const BIGQUERY_WAREHOUSE_CAPABILITIES: WarehouseCapabilities = {
  loadsFrom: 'lake-uri',
  lakeSchemes: ['gs'],
  loadState: 'after-load',
  exclusivePerProcess: false,
  listsWeeks: true,
  answersQueries: true,
  // Counting a partition is a billed query job: runs trust the load record, verify reads.
  readsWeekFacts: false,
};
