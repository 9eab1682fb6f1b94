/**
 * What a backend declares, in the spirit of dlt's destination factories and kysely's dialects:
 * how its URIs look and parse, what it can do (`capabilities`), and how it opens, its module
 * (and any cloud SDK) imported only then. The registry (registry.ts) picks one by its URI;
 * callers ask its capabilities instead of sniffing names or probing for methods.
 */
import type { Lake, LakeCapabilities } from '../lake/lake.ts';
import type { Warehouse, WarehouseCapabilities } from '../warehouse/warehouse.ts';
import type { BackendOverrides, Emulators, WarehouseOpenOptions } from '../backend-options.ts';

/** A URI with a scheme (`gs://`, `bigquery://`, `ftp://`): a plain path has none. */
export const ANY_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

interface BackendDeclaration<Target> {
  /** Its name in messages: "the BigQuery warehouse loads from Cloud Storage". */
  readonly name: string;
  /** How a user writes its URI, for the message that refuses a URI no backend takes. */
  readonly forms: readonly string[];
  /** Whether `uri` names this backend (by its scheme; the default backends: by having none). */
  accepts(uri: string): boolean;
  /** The URI's parts, checked: a UsageError says what is wrong, naming the URI as `name` (a flag, a variable, a block field). */
  parse(uri: string, name?: string): Target;
  /**
   * The path on this machine it keeps its data at (a folder, a DuckDB file), which a run checks
   * before it fetches anything; undefined for a cloud backend, whose access is checked on open.
   */
  localPath(uri: string): string | undefined;
}

export interface LakeOpenContext {
  overrides: BackendOverrides & Emulators;
  /** The run's stop, which ends a file's upload (nothing is half-written: writes are atomic). */
  signal?: AbortSignal | undefined;
}

export interface LakeBackend<Target = unknown> extends BackendDeclaration<Target> {
  readonly capabilities: LakeCapabilities;
  open(uri: string, context: LakeOpenContext): Promise<Lake>;
}

export interface WarehouseBackend<Target = unknown> extends BackendDeclaration<Target> {
  readonly capabilities: WarehouseCapabilities;
  open(uri: string, options: WarehouseOpenOptions): Promise<Warehouse>;
}
