/** The warehouse as a DuckDB file (a path or `duckdb:PATH`): the default. */
import { UsageError } from '../errors.ts';
import { ANY_SCHEME, type WarehouseBackend } from './backend.ts';
import { DUCKDB_WAREHOUSE_CAPABILITIES } from './capabilities.ts';

/** The file a DuckDB warehouse URI names ('' when it names none). */
function pathOf(uri: string): string {
  return uri.replace(/^duckdb:(\/\/)?/i, '');
}

export const duckdbWarehouseBackend: WarehouseBackend<{ path: string }> = {
  name: 'DuckDB',
  forms: ['a DuckDB file path (or duckdb:PATH)'],
  capabilities: DUCKDB_WAREHOUSE_CAPABILITIES,
  accepts(uri) {
    const path = pathOf(uri);
    return path !== '' && !ANY_SCHEME.test(path);
  },
  parse(uri, name = '--warehouse') {
    if (!this.accepts(uri)) throw new UsageError(`${name} ${uri}: expected a DuckDB file path`);
    return { path: pathOf(uri) };
  },
  localPath(uri) {
    return this.parse(uri).path;
  },
  async open(uri, options) {
    const { DuckDBWarehouse } = await import('../warehouse/duckdb/duckdb-warehouse.ts');
    return DuckDBWarehouse.open(this.parse(uri).path, options);
  },
};
