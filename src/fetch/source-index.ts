/**
 * The MTA's index page (`turnstile.html`), which links every published weekly file
 * (`turnstile_YYMMDD.txt`): read so that catch-up (dates/catch-up.ts) knows which drop dates
 * exist, off-pattern ones such as the Wednesday 2010-05-05 included, and which are not
 * published yet (not listed), without asking for each file.
 *
 * The page is a help, never a requirement: unreachable, not 200, or holding no file link, it is
 * reported as a problem (a warning line) and the run falls back to the Saturday rule and to
 * asking for each file (a 404 is `not-published`).
 */
import type { Dispatcher } from 'undici';
import { isCalendarDate, type IsoDate } from '../dates/drop-dates.ts';
import { oneLine } from '../errors.ts';

/** Where the MTA keeps the files (the default source URL's path) relative to its index page. */
const MTA_FILES_PATH = '/data/nyct/turnstile';
/** Far more than the real page (about 700 links, under 100 KB): a bigger body is not it. */
const MAX_INDEX_BYTES = 4 * 1024 * 1024;

/**
 * The agent, made on first read: undici (about 110 modules) loads only when the page is read,
 * never for a plan or status of given dates.
 */
let indexAgent: Promise<{ agent: Dispatcher; request: typeof import('undici').request }> | undefined;
const loadIndexAgent = (): NonNullable<typeof indexAgent> =>
  (indexAgent ??= import('undici').then(({ Agent, interceptors, request }) => ({
    agent: new Agent().compose(interceptors.redirect({ maxRedirections: 5 })),
    request,
  })));

/**
 * The index page's URL for a source URL: the MTA serves the files from
 * `…/developers/data/nyct/turnstile/` and the page as `…/developers/turnstile.html`; a source
 * laid out otherwise (a mirror) is expected to serve it next to the files.
 */
export function indexUrlFor(sourceUrl: string): string {
  const base = sourceUrl.replace(/\/+$/, '');
  return base.endsWith(MTA_FILES_PATH)
    ? `${base.slice(0, -MTA_FILES_PATH.length)}/turnstile.html`
    : `${base}/turnstile.html`;
}

/**
 * The drop dates a page links, ascending; undefined when it links none (not the index page, or a
 * broken one). Two-digit years are this century's: the first file is from 2010.
 */
export function parseSourceIndex(page: string): IsoDate[] | undefined {
  const dates = new Set<IsoDate>();
  for (const match of page.matchAll(/turnstile_(\d{2})(\d{2})(\d{2})\.txt/g)) {
    const date = `20${match[1]}-${match[2]}-${match[3]}`;
    if (isCalendarDate(date)) dates.add(date);
  }
  return dates.size === 0 ? undefined : [...dates].sort();
}

export type SourceIndex =
  | { url: string; dates: IsoDate[]; problem?: undefined }
  | { url: string; dates?: undefined; problem: string };

/** The index page read once (no retries: the fallback is asking for each file). */
export async function readSourceIndex(
  sourceUrl: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<SourceIndex> {
  const url = indexUrlFor(sourceUrl);
  try {
    const { agent, request } = await loadIndexAgent();
    const response = await request(url, {
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal,
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      return { url, problem: `HTTP ${response.statusCode}` };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_INDEX_BYTES) {
        response.body.destroy();
        return { url, problem: `more than ${MAX_INDEX_BYTES} bytes: not an index page` };
      }
      chunks.push(chunk);
    }
    const dates = parseSourceIndex(Buffer.concat(chunks).toString('latin1'));
    return dates === undefined ? { url, problem: 'it links no turnstile_YYMMDD.txt file' } : { url, dates };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { url, problem: oneLine(error) };
  }
}
