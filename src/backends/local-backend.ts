/** The lake as a folder on this machine (a path or a file:// URL): the default. */
import { fileURLToPath } from 'node:url';
import { ANY_SCHEME, type LakeBackend } from './backend.ts';
import { LOCAL_LAKE_CAPABILITIES } from './capabilities.ts';

export const localLakeBackend: LakeBackend<{ path: string }> = {
  name: 'local folder',
  forms: ['a folder path', 'a file:// URL'],
  capabilities: LOCAL_LAKE_CAPABILITIES,
  accepts: (uri) => uri.startsWith('file://') || !ANY_SCHEME.test(uri),
  parse: (uri) => ({ path: uri.startsWith('file://') ? fileURLToPath(uri) : uri }),
  localPath(uri) {
    return this.parse(uri).path;
  },
  async open(uri, { signal }) {
    const { LocalLake } = await import('../lake/local/local-lake.ts');
    return new LocalLake(this.parse(uri).path, signal);
  },
};
