import { describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import {
  DEFAULT_LAKE,
  DEFAULT_SOURCE_URL,
  DEFAULT_WAREHOUSE,
  ENV,
  resolveConfig,
  type Config,
  type ConfigFlags,
} from '../../src/config.ts';
import { UsageError } from '../../src/errors.ts';

type Setting = keyof typeof ENV;

/** For each setting: a flag value, a different env value, where it lands, and its default. */
const SETTINGS: {
  name: Setting;
  flag: string;
  env: string;
  read: (config: Config) => unknown;
  parsed: (text: string) => unknown;
  fallback: unknown;
}[] = [
  {
    name: 'sourceUrl',
    flag: 'https://flag.example/data',
    env: 'http://env.example/data',
    read: (c) => c.sourceUrl,
    parsed: (t) => t,
    fallback: DEFAULT_SOURCE_URL,
  },
  {
    name: 'lake',
    flag: '/flag/lake',
    env: '/env/lake',
    read: (c) => c.lake,
    parsed: (t) => t,
    fallback: DEFAULT_LAKE,
  },
  {
    name: 'warehouse',
    flag: '/flag/w.duckdb',
    env: '/env/w.duckdb',
    read: (c) => c.warehouse,
    parsed: (t) => t,
    fallback: DEFAULT_WAREHOUSE,
  },
  {
    name: 'workDir',
    flag: '/flag/work',
    env: '/env/work',
    read: (c) => c.workDir,
    parsed: (t) => t,
    fallback: tmpdir(),
  },
  {
    name: 'gcsEmulator',
    flag: 'http://127.0.0.1:4443',
    env: 'http://127.0.0.1:4444',
    read: (c) => c.gcsEmulator,
    parsed: (t) => t,
    fallback: undefined,
  },
  {
    name: 'bigqueryEmulator',
    flag: 'http://127.0.0.1:9050',
    env: 'http://127.0.0.1:9051',
    read: (c) => c.bigqueryEmulator,
    parsed: (t) => t,
    fallback: undefined,
  },
  {
    name: 'lockWaitMs',
    flag: '250',
    env: '0',
    read: (c) => c.lockWaitMs,
    parsed: Number,
    fallback: 600_000,
  },
  {
    name: 'catchUpWeeks',
    flag: '3',
    env: '52',
    read: (c) => c.catchUpWeeks,
    parsed: Number,
    fallback: 12,
  },
  {
    name: 'fetchTimeoutMs',
    flag: '1234',
    env: '5678',
    read: (c) => c.fetch.timeoutMs,
    parsed: Number,
    fallback: 60_000,
  },
  {
    name: 'fetchAttempts',
    flag: '2',
    env: '9',
    read: (c) => c.fetch.attempts,
    parsed: Number,
    fallback: 5,
  },
  {
    name: 'fetchBackoffMs',
    flag: '0',
    env: '250',
    read: (c) => c.fetch.backoffMs,
    parsed: Number,
    fallback: 1000,
  },
];

/** Expects a UsageError whose message is one line and contains `named`. */
function expectUsageError(flags: ConfigFlags, env: Record<string, string | undefined>, named: string): void {
  let caught: unknown;
  try {
    resolveConfig(flags, env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UsageError);
  const message = (caught as UsageError).message;
  expect(message).not.toContain('\n');
  expect(message).toContain(named);
}

describe('resolveConfig precedence', () => {
  it('uses the defaults when nothing is given', () => {
    expect(resolveConfig({}, {})).toEqual({
      sourceUrl: DEFAULT_SOURCE_URL,
      lake: DEFAULT_LAKE,
      warehouse: DEFAULT_WAREHOUSE,
      workDir: tmpdir(),
      lockWaitMs: 600_000,
      catchUpWeeks: 12,
      fetch: { timeoutMs: 60_000, attempts: 5, backoffMs: 1000 },
    });
  });

  it('names one distinct environment variable per setting', () => {
    // The log's two are resolved apart (cli/log-options.ts): the logger exists before the config.
    expect(Object.keys(ENV).sort()).toEqual([...SETTINGS.map((s) => s.name), 'logFormat', 'logLevel'].sort());
    expect(new Set(Object.values(ENV)).size).toBe(Object.keys(ENV).length);
    for (const variable of Object.values(ENV)) expect(variable).toMatch(/^MTA_INGEST_[A-Z_]+$/);
  });

  describe.each(SETTINGS)('$name', (setting) => {
    it('a flag beats the environment', () => {
      const config = resolveConfig({ [setting.name]: setting.flag }, { [ENV[setting.name]]: setting.env });
      expect(setting.read(config)).toEqual(setting.parsed(setting.flag));
    });

    it('the environment beats the default', () => {
      const config = resolveConfig({}, { [ENV[setting.name]]: setting.env });
      expect(setting.read(config)).toEqual(setting.parsed(setting.env));
    });

    it('the default applies when neither is given', () => {
      expect(setting.read(resolveConfig({}, {}))).toEqual(setting.fallback);
    });

    it('an undefined flag falls through to the environment', () => {
      const config = resolveConfig({ [setting.name]: undefined }, { [ENV[setting.name]]: setting.env });
      expect(setting.read(config)).toEqual(setting.parsed(setting.env));
    });

    it.each(['', ' ', '  \t ', '\n'])('an empty or blank env value (%j) is ignored', (blank) => {
      expect(setting.read(resolveConfig({}, { [ENV[setting.name]]: blank }))).toEqual(setting.fallback);
    });

    it('a setting does not leak into the others', () => {
      const config = resolveConfig({ [setting.name]: setting.flag }, {});
      for (const other of SETTINGS.filter((s) => s.name !== setting.name)) {
        expect(other.read(config)).toEqual(other.fallback);
      }
    });
  });

  it('ignores unrelated environment variables', () => {
    expect(resolveConfig({}, { LAKE: '/x', MTA_INGEST_OTHER: 'y' })).toEqual(resolveConfig({}, {}));
  });
});

describe('resolveConfig source URL', () => {
  it.each([
    ['http://example.org/data/', 'http://example.org/data'],
    ['https://example.org/data///', 'https://example.org/data'],
    ['http://example.org/', 'http://example.org'],
    ['HTTPS://example.org:8080/a/b', 'HTTPS://example.org:8080/a/b'],
    ['http://127.0.0.1:9/x', 'http://127.0.0.1:9/x'],
  ])('%s becomes %s', (given, expected) => {
    expect(resolveConfig({ sourceUrl: given }, {}).sourceUrl).toBe(expected);
    expect(resolveConfig({}, { [ENV.sourceUrl]: given }).sourceUrl).toBe(expected);
  });

  it.each(['ftp://x', 'not a url', 'file:///data', 'example.org/data', 'http//example.org', 'http://a b/c'])(
    '%s is refused with a one-line UsageError naming it',
    (bad) => {
      expectUsageError({ sourceUrl: bad }, {}, bad);
      expectUsageError({}, { [ENV.sourceUrl]: bad }, bad);
    },
  );

  it.each(['http://', 'https:///', 'http:///x'])(
    '%s (no host) is refused, naming the value as given',
    (bad) => {
      expectUsageError({ sourceUrl: bad }, {}, `--source-url ${bad} `);
      expectUsageError({}, { [ENV.sourceUrl]: bad }, `${ENV.sourceUrl} ${bad} `);
    },
  );

  it('an empty --source-url flag is refused (a flag is taken as given, unlike an env value)', () => {
    expect(() => resolveConfig({ sourceUrl: '' }, {})).toThrow(UsageError);
  });
});

describe('resolveConfig numeric settings', () => {
  const NUMERIC: { name: Setting; flag: string; field: keyof Config['fetch'] }[] = [
    { name: 'fetchTimeoutMs', flag: '--fetch-timeout-ms', field: 'timeoutMs' },
    { name: 'fetchAttempts', flag: '--fetch-attempts', field: 'attempts' },
    { name: 'fetchBackoffMs', flag: '--fetch-backoff-ms', field: 'backoffMs' },
  ];

  describe.each(NUMERIC)('$name', ({ name, flag, field }) => {
    it.each(['-1', '1.5', 'abc', '', ' 5', '5 ', '1e3', '0x10', '+3', '9999999999'])(
      'refuses %j from a flag with a one-line UsageError naming the flag',
      (bad) => {
        expectUsageError({ [name]: bad }, {}, flag);
        if (bad !== '') expectUsageError({ [name]: bad }, {}, bad);
      },
    );

    it.each(['-1', '1.5', 'abc'])('refuses %j from the environment too, naming the variable', (bad) => {
      expectUsageError({}, { [ENV[name]]: bad }, `${ENV[name]} ${bad} `);
    });

    it('accepts leading zeros and the 9-digit maximum', () => {
      expect(resolveConfig({ [name]: '007' }, {}).fetch[field]).toBe(7);
      expect(resolveConfig({ [name]: '999999999' }, {}).fetch[field]).toBe(999_999_999);
    });
  });

  it("refuses '0' attempts and a '0' timeout, but allows a '0' backoff", () => {
    expectUsageError({ fetchAttempts: '0' }, {}, '--fetch-attempts 0');
    expectUsageError({ fetchTimeoutMs: '0' }, {}, '--fetch-timeout-ms 0');
    expect(resolveConfig({ fetchBackoffMs: '0' }, {}).fetch.backoffMs).toBe(0);
  });
});

describe('resolveConfig control characters', () => {
  const values = ['a\u0000b', 'http://host/turn\nstile', 'x\ry', 'esc\u001b[31m', 'line\u2028sep'];
  it.each(SETTINGS.map((s) => [s.name] as const))(
    'refuses one in %s, from a flag, a variable or a block',
    (name) => {
      for (const value of values) {
        expectUsageError({ [name]: value }, {}, 'holds a control character');
        expect(() => resolveConfig({}, { [ENV[name]]: value })).toThrow(
          `${ENV[name]} holds a control character`,
        );
        expect(() => resolveConfig({}, {}, { [name]: value })).toThrow(
          `the block's ${name} holds a control character`,
        );
      }
    },
  );
});
