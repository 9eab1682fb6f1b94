/**
 * The lake port: where a week's raw file, Parquet, rejects and manifest are kept. Backends:
 * `local/` (a folder, the default) and `gcs/`. Keys are '/'-separated paths built by
 * lake-layout.ts from validated dates only.
 *
 * What differs between the backends is declared in `capabilities` (src/backends/), never
 * guessed from the URI or from which methods an object happens to have.
 *
 * Every write is atomic for readers: they see no object, the old one, or the whole new one,
 * never a part. The pipeline writes the manifest last; a week without a manifest is not loaded.
 */

export interface StoredObject {
  key: string;
  /** Full address, e.g. file:///data/lake/turnstile/... or gs://bucket/prefix/turnstile/... */
  uri: string;
  /** Backend-specific version (a GCS generation); absent for the local folder. */
  generation?: string | undefined;
  /** CRC32C as GCS reports it (base64), where the backend has one. */
  crc32c?: string | undefined;
}

/** What differs between lake backends, declared by each (src/backends/capabilities.ts). */
export interface LakeCapabilities {
  /** The URI scheme of its objects (`file`, `gs`): what a staging warehouse checks it can read. */
  readonly scheme: string;
  /**
   * Whether a killed writer can leave temporaries beside the objects (a local folder writes
   * under a temporary name, then renames), which a run removes when it begins a week.
   */
  readonly leavesTemporaries: boolean;
  /** Whether it can say where its data lives (a bucket's location), for colocation checks. */
  readonly knowsLocation: boolean;
}

export interface Lake {
  /** The lake's root, as the user gave it (normalised). */
  readonly uri: string;
  readonly capabilities: LakeCapabilities;
  /**
   * Where the lake's data lives (a GCS bucket's location); undefined where it has no such
   * place (`capabilities.knowsLocation` false: a local folder).
   */
  location(): Promise<string | undefined>;
  /** Copies a local file into the lake under `key`. */
  putFile(key: string, localPath: string, contentType: string): Promise<StoredObject>;
  /**
   * Writes a small text object (manifests). With `ifGeneration`, only if the object is still
   * the one read with that generation (`'0'`: must not exist); otherwise a LakeError and
   * nothing is written (a concurrent writer is never silently overwritten).
   */
  putText(
    key: string,
    text: string,
    contentType: string,
    precondition?: { ifGeneration: string },
  ): Promise<StoredObject>;
  /** A small text object, or undefined when there is none. */
  getText(key: string): Promise<string | undefined>;
  /**
   * A small text object with its generation (GCS's; a content hash for a local folder), for a
   * read-modify-write under `putText`'s precondition; undefined when there is none.
   */
  getTextWithGeneration(key: string): Promise<{ text: string; generation: string } | undefined>;
  /** An object's size in bytes, or undefined when there is none. */
  sizeOf(key: string): Promise<number | undefined>;
  /** Copies an object to a local file (for a warehouse that loads local files). */
  getFile(key: string, localPath: string): Promise<void>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /**
   * Removes what killed writers left beside these keys (a local folder's temporaries), and
   * returns how many; writes still in progress are left alone. Backends whose writes leave
   * nothing behind (`capabilities.leavesTemporaries` false; GCS: an object appears whole or not
   * at all) remove nothing.
   */
  removeStaleTemporaries(keys: readonly string[]): Promise<number>;
  uriOf(key: string): string;
}
