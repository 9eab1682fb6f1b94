/**
 * How the person who ran this would type the tool again, for the hints we print (`look with:
 * mta-ingest status …`): `mta-ingest` when a shell finds it on PATH (a global install, the
 * image), else `npx mta-ingest` (after `npm ci` the bin lives in node_modules/.bin only).
 * npm puts node_modules/.bin on PATH for what it runs (npx, npm exec, npm run), and tells it so
 * in `npm_command`: on that PATH the bin is found, but not in the user's own shell.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TOOL } from '../tool.ts';

export function typedCommand(
  env: Record<string, string | undefined>,
  isExecutable: (path: string) => boolean = executable,
): string {
  const bin = TOOL.name;
  if (env.npm_command) return `npx ${bin}`;
  const onPath = (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, bin)));
  return onPath ? bin : `npx ${bin}`;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
