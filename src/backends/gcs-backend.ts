/** The lake in a Cloud Storage bucket (`gs://bucket/prefix`); the SDK loads only when chosen. */
import { parseGcsUri } from './gcs-uri.ts';
import type { LakeBackend } from './backend.ts';
import { GCS_LAKE_CAPABILITIES } from './capabilities.ts';

export const gcsLakeBackend: LakeBackend<{ bucket: string; prefix: string }> = {
  name: 'Cloud Storage',
  forms: ['gs://bucket/prefix'],
  capabilities: GCS_LAKE_CAPABILITIES,
  accepts: (uri) => /^gs:\/\//i.test(uri),
  parse: parseGcsUri,
  localPath: () => undefined,
  async open(uri, { overrides, signal }) {
    const { GcsLake, emulatorStorage } = await import('../lake/gcs/gcs-lake.ts');
    const emulator = overrides.gcsEmulator;
    return new GcsLake(
      uri,
      overrides.storage ?? (emulator === undefined ? undefined : emulatorStorage(emulator)),
      signal,
    );
  },
};
