/**
 * The source server's index page (`turnstile.html`), generated from the files it serves, as the
 * MTA's lists every published file: `served` links every `turnstile_YYMMDD.txt`, newest first,
 * relative to the page (`data/nyct/turnstile/turnstile_230603.txt`, as the MTA's links are);
 * `absent` is a 404; `broken` a 200 HTML page with no file link (a maintenance page); `error` a 503.
 */
export type IndexMode = 'served' | 'absent' | 'broken' | 'error';

export function indexPage(
  mode: IndexMode,
  names: readonly string[],
  basePath: string,
  indexPath: string,
): { status: number; body: string } {
  if (mode === 'absent') return { status: 404, body: '<html><body>Not Found</body></html>\n' };
  if (mode === 'error') return { status: 503, body: '<html><body>Service Unavailable</body></html>\n' };
  if (mode === 'broken') {
    return {
      status: 200,
      body: '<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>\n',
    };
  }
  const folder = indexPath.slice(0, indexPath.lastIndexOf('/') + 1);
  const files = `${basePath}/`;
  const relative = files.startsWith(folder) ? files.slice(folder.length) : files;
  const links = names
    .filter((name) => /^turnstile_\d{6}\.txt$/.test(name))
    .sort()
    .reverse()
    .map((name) => `<a href="${relative}${name}">${name}</a><br/>`);
  return {
    status: 200,
    body: `<html><body><h1>Turnstile Data</h1>\n${links.join('\n')}\n</body></html>\n`,
  };
}
