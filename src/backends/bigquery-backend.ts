/**
 * The warehouse in BigQuery (`bigquery://project/dataset`): a staging destination, which loads
 * the lake's Parquet objects itself and so needs a Cloud Storage lake (`lakeSchemes`). The SDK
 * loads only when chosen.
 */
import { parseBigQueryUri, type BigQueryTarget } from './bigquery-uri.ts';
import type { WarehouseBackend } from './backend.ts';
import { BIGQUERY_WAREHOUSE_CAPABILITIES } from './capabilities.ts';

export const bigqueryWarehouseBackend: WarehouseBackend<BigQueryTarget> = {
  name: 'BigQuery',
  forms: ['bigquery://project/dataset'],
  capabilities: BIGQUERY_WAREHOUSE_CAPABILITIES,
  accepts: (uri) => /^bigquery:\/\//i.test(uri),
  parse: parseBigQueryUri,
  localPath: () => undefined,
  async open(uri, options) {
    const { BigQueryWarehouse, emulatorBigQuery } =
      await import('../warehouse/bigquery/bigquery-warehouse.ts');
    const emulator = options.overrides?.bigqueryEmulator;
    return BigQueryWarehouse.open(uri, {
      readOnly: options.readOnly,
      lake: options.lake,
      client:
        options.overrides?.bigquery ??
        (emulator === undefined ? undefined : await emulatorBigQuery(uri, emulator)),
      pollIntervalMs: options.overrides?.bigqueryPollIntervalMs,
      signal: options.signal,
    });
  },
};
