/**
 * The index page as the worker reads it (fetch/source-index.ts) from the test source server,
 * which generates it from the files it serves: listed, absent, broken, failing, slow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSourceIndex } from '../../src/fetch/source-index.ts';
import { startSourceServer, type SourceServer } from '../support/peers/source-server.ts';

let server: SourceServer;

beforeAll(async () => {
  server = await startSourceServer({
    files: [
      { name: 'turnstile_230603.txt', content: 'x' },
      { name: 'turnstile_100505.txt', content: 'x' },
      { name: 'notes.txt', content: 'x' },
    ],
  });
});
afterAll(() => server.close());

describe('the source index page', () => {
  it("lists the served weekly files as drop dates, from the page at the MTA's place", async () => {
    server.index('served');
    expect(server.indexPath).toBe('/turnstile.html');
    const index = await readSourceIndex(server.baseUrl, 5000);
    expect(index).toEqual({
      url: server.baseUrl.replace('/data/nyct/turnstile', '/turnstile.html'),
      dates: ['2010-05-05', '2023-06-03'],
    });
    // Its links are relative, as the MTA's: they resolve to the files.
    const page = await (await fetch(index.url)).text();
    const link = /href="([^"]+turnstile_230603\.txt)"/.exec(page)?.[1];
    expect(new URL(link!, index.url).href).toBe(`${server.baseUrl}/turnstile_230603.txt`);
    expect(await (await fetch(new URL(link!, index.url))).text()).toBe('x');
  });

  it('reports a problem, never throws, when the page is absent, broken or failing', async () => {
    for (const [mode, problem] of [
      ['absent', 'HTTP 404'],
      ['error', 'HTTP 503'],
      ['broken', 'it links no turnstile_YYMMDD.txt file'],
    ] as const) {
      server.index(mode);
      expect(await readSourceIndex(server.baseUrl, 5000), mode).toMatchObject({ problem });
    }
    const unreachable = await readSourceIndex('http://127.0.0.1:9/data/nyct/turnstile', 5000);
    expect(unreachable.problem).toMatch(/ECONNREFUSED|connect/);
    server.index('served');
  });

  it('serves the page next to the files when they are not at the MTA path', async () => {
    const mirror = await startSourceServer({
      basePath: '/mirror',
      files: [{ name: 'turnstile_230527.txt', content: 'x' }],
    });
    try {
      expect(mirror.indexPath).toBe('/mirror/turnstile.html');
      expect((await readSourceIndex(mirror.baseUrl, 5000)).dates).toEqual(['2023-05-27']);
    } finally {
      await mirror.close();
    }
  });
});
