/**
 * The settings as flags give them, before resolution (config.ts): a leaf module, so that the
 * block files (blocks.ts), which name the same settings, and config.ts, which reads blocks, do
 * not import each other.
 */
/** Settings as given by flags; undefined means "not given". */
export interface ConfigFlags {
  sourceUrl?: string | undefined;
  lake?: string | undefined;
  warehouse?: string | undefined;
  workDir?: string | undefined;
  fetchTimeoutMs?: string | undefined;
  fetchAttempts?: string | undefined;
  fetchBackoffMs?: string | undefined;
  gcsEmulator?: string | undefined;
  bigqueryEmulator?: string | undefined;
  lockWaitMs?: string | undefined;
}
