/**
 * Opens the lake and the warehouse a configuration names, through the backend registry
 * (backends/registry.ts). Each backend module is imported only when chosen, so a run on the
 * local defaults never loads a cloud SDK.
 */
import type { Lake } from './lake/lake.ts';
import type { Warehouse, WarehouseCapabilities } from './warehouse/warehouse.ts';
import type { Config } from './config.ts';
import type { BackendOverrides, Emulators, WarehouseOpenOptions } from './backend-options.ts';
import { checkLoadsFrom, lakeBackendFor, warehouseBackendFor } from './backends/registry.ts';

export type { BackendOverrides, Emulators, WarehouseOpenOptions } from './backend-options.ts';

/** The overrides a configuration itself implies (emulators), under the caller's own. */
export function overridesFor(config: Config, overrides: BackendOverrides = {}): BackendOverrides & Emulators {
  const emulators: Emulators = {};
  if (config.gcsEmulator !== undefined) emulators.gcsEmulator = config.gcsEmulator;
  if (config.bigqueryEmulator !== undefined) emulators.bigqueryEmulator = config.bigqueryEmulator;
  return { ...emulators, ...overrides };
}

/** `signal`: the run's stop, which ends a file's upload (nothing is half-written: writes are atomic). */
export async function openLake(
  uri: string,
  overrides: BackendOverrides & Emulators = {},
  signal?: AbortSignal,
): Promise<Lake> {
  return lakeBackendFor(uri).open(uri, { overrides, signal });
}

/** What the warehouse `uri` names can do, known before it is opened. */
export function warehouseCapabilities(uri: string): WarehouseCapabilities {
  return warehouseBackendFor(uri).capabilities;
}

/**
 * With `lake` and for writing, the lake is first checked to be one the warehouse can load
 * from (a staging destination such as BigQuery reads only Cloud Storage).
 */
export async function openWarehouse(uri: string, options: WarehouseOpenOptions): Promise<Warehouse> {
  const backend = warehouseBackendFor(uri);
  if (options.lake !== undefined && options.readOnly !== true) checkLoadsFrom(backend, options.lake);
  return backend.open(uri, options);
}
