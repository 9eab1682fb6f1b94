// Unit tests of the BigQuery stand-in's rules (test/support/peers/bigquery-standin-rules.ts): each
// rule's accepted and refused cases, so that removing or loosening a rule fails here as well as in
// the client-driven tests of bigquery-standin.test.ts.
import { describe, expect, it } from 'vitest';
import {
  bigQueryTypeOf,
  canonicalLocation,
  canonicalType,
  DEFAULT_JOB_RETENTION_MS,
  decoratorError,
  isMultiRegion,
  jobExpired,
  jobVisibleAt,
  loadLocationError,
  NULL_PARTITION,
  parquetSchemaError,
  type ParquetColumn,
} from '../support/peers/bigquery-standin-rules.ts';

const DAY = 24 * 3600 * 1000;

describe('job retention', () => {
  it('keeps a job for 180 days (six months) and no longer', () => {
    expect(DEFAULT_JOB_RETENTION_MS).toBe(180 * DAY);
    const created = 1_700_000_000_000;
    expect(jobExpired(created, created)).toBe(false);
    expect(jobExpired(created, created + 180 * DAY)).toBe(false);
    expect(jobExpired(created, created + 180 * DAY + 1)).toBe(true);
    expect(jobExpired(created, created + 11, 10)).toBe(true);
    expect(jobExpired(created, created + 10, 10)).toBe(false);
  });
});

describe('locations', () => {
  it('canonical form: multi-regions upper case, regions lower case', () => {
    expect(canonicalLocation('us')).toBe('US');
    expect(canonicalLocation('Eu')).toBe('EU');
    expect(canonicalLocation('US')).toBe('US');
    expect(canonicalLocation('ASIA-NORTHEAST1')).toBe('asia-northeast1');
    expect(canonicalLocation('Us-Central1')).toBe('us-central1');
    expect(isMultiRegion('US')).toBe(true);
    expect(isMultiRegion('EU')).toBe(true);
    expect(isMultiRegion('us-central1')).toBe(false);
  });

  it('jobs.get without location finds only US and EU jobs; with one, only the exact canonical form', () => {
    expect(jobVisibleAt('US', undefined)).toBe(true);
    expect(jobVisibleAt('EU', undefined)).toBe(true);
    expect(jobVisibleAt('asia-northeast1', undefined)).toBe(false);
    expect(jobVisibleAt('us-central1', undefined)).toBe(false);
    expect(jobVisibleAt('asia-northeast1', 'asia-northeast1')).toBe(true);
    expect(jobVisibleAt('asia-northeast1', 'ASIA-NORTHEAST1')).toBe(false);
    expect(jobVisibleAt('US', 'us')).toBe(false);
    expect(jobVisibleAt('US', 'EU')).toBe(false);
    expect(jobVisibleAt('US', 'US')).toBe(true);
  });

  it('a load job finds no dataset outside its own location', () => {
    expect(loadLocationError('p', 'd', 'US', 'US')).toBeUndefined();
    expect(loadLocationError('p', 'd', 'EU', 'US')).toEqual({
      reason: 'notFound',
      message: 'Not found: Dataset p:d was not found in location US',
    });
    expect(loadLocationError('p', 'd', 'asia-northeast1', 'US')?.reason).toBe('notFound');
  });
});

describe('partition decorators', () => {
  it('accepts rows of the decorated day only; other days and NULL dates are refused', () => {
    expect(decoratorError('20230603', ['20230603'])).toBeUndefined();
    expect(decoratorError('20230603', [])).toBeUndefined();
    expect(decoratorError('20230603', ['20230603', '20230604'])).toEqual({
      reason: 'invalid',
      message: "Some rows belong to partitions 20230604, not to the decorator's 20230603",
    });
    expect(decoratorError('20230603', ['20230603', NULL_PARTITION])?.message).toContain('__NULL__');
  });
});

const column = (over: Partial<ParquetColumn> & { name: string }): ParquetColumn => ({
  type: 'INT64',
  repetition_type: 'OPTIONAL',
  logical_type: null,
  converted_type: null,
  ...over,
});

describe('Parquet conversions', () => {
  it('maps physical + logical/converted types to BigQuery types', () => {
    expect(bigQueryTypeOf(column({ name: 'n' }))).toBe('INT64');
    expect(bigQueryTypeOf(column({ name: 'n', converted_type: 'INT_64' }))).toBe('INT64');
    expect(bigQueryTypeOf(column({ name: 'n', logical_type: 'IntType(bitWidth=64, isSigned=1)' }))).toBe(
      'INT64',
    );
    expect(bigQueryTypeOf(column({ name: 'n', type: 'INT32' }))).toBe('INT64');
    expect(bigQueryTypeOf(column({ name: 'd', type: 'INT32', converted_type: 'DATE' }))).toBe('DATE');
    expect(bigQueryTypeOf(column({ name: 's', type: 'BYTE_ARRAY', converted_type: 'UTF8' }))).toBe('STRING');
    expect(bigQueryTypeOf(column({ name: 's', type: 'BYTE_ARRAY', logical_type: 'StringType()' }))).toBe(
      'STRING',
    );
    expect(bigQueryTypeOf(column({ name: 'b', type: 'BYTE_ARRAY' }))).toBe('BYTES');
    expect(bigQueryTypeOf(column({ name: 'f', type: 'DOUBLE' }))).toBe('FLOAT64');
    expect(bigQueryTypeOf(column({ name: 'f', type: 'FLOAT' }))).toBe('FLOAT64');
    expect(bigQueryTypeOf(column({ name: 'b', type: 'BOOLEAN' }))).toBe('BOOL');
    const naive =
      'TimestampType(isAdjustedToUTC=0, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))';
    const utc =
      'TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))';
    expect(
      bigQueryTypeOf(column({ name: 't', logical_type: naive, converted_type: 'TIMESTAMP_MICROS' })),
    ).toBe('DATETIME');
    expect(bigQueryTypeOf(column({ name: 't', logical_type: utc, converted_type: 'TIMESTAMP_MICROS' }))).toBe(
      'TIMESTAMP',
    );
    expect(bigQueryTypeOf(column({ name: 't', converted_type: 'TIMESTAMP_MICROS' }))).toBe('TIMESTAMP');
    expect(bigQueryTypeOf(column({ name: 'x', type: 'INT96' }))).toBeUndefined();
    expect(
      bigQueryTypeOf(column({ name: 'u', logical_type: 'IntType(bitWidth=64, isSigned=0)' })),
    ).toBeUndefined();
  });

  it('reads field types in their standard SQL names', () => {
    expect(canonicalType('INTEGER')).toBe('INT64');
    expect(canonicalType('FLOAT')).toBe('FLOAT64');
    expect(canonicalType('BOOLEAN')).toBe('BOOL');
    expect(canonicalType('string')).toBe('STRING');
    expect(canonicalType(undefined)).toBe('STRING');
  });
});

describe('Parquet schema against the load schema', () => {
  const F = 'gs://b/f.parquet';
  const T = 'p:d.t';
  const optional = [
    column({ name: 'station', type: 'BYTE_ARRAY', converted_type: 'UTF8' }),
    column({ name: 'entries' }),
  ];
  const required = optional.map((c) => ({ ...c, repetition_type: 'REQUIRED' }));
  const nullable = [
    { name: 'station', type: 'STRING', mode: 'NULLABLE' },
    { name: 'entries', type: 'INTEGER' },
  ];
  const requiredFields = nullable.map((f) => ({ ...f, mode: 'REQUIRED' }));

  it('accepts equal modes: OPTIONAL with NULLABLE, REQUIRED with REQUIRED (provided schema or not)', () => {
    for (const provided of [true, false]) {
      expect(parquetSchemaError(F, optional, nullable, provided, T)).toBeUndefined();
      expect(parquetSchemaError(F, required, requiredFields, provided, T)).toBeUndefined();
    }
  });

  it('refuses an OPTIONAL column for a REQUIRED field (google-cloud-python#8093), provided schema or not', () => {
    for (const provided of [true, false]) {
      expect(parquetSchemaError(F, optional, requiredFields, provided, T)).toEqual({
        reason: 'invalid',
        message:
          'Provided Schema does not match Table p:d.t. Field station has changed mode from REQUIRED to NULLABLE',
      });
    }
  });

  it('refuses a REQUIRED column for a NULLABLE field (java-bigquery#13), provided schema or not', () => {
    for (const provided of [true, false]) {
      expect(parquetSchemaError(F, required, nullable, provided, T)).toEqual({
        reason: 'invalid',
        message:
          "Error while reading data, error message: Provided schema is not compatible with the file 'gs://b/f.parquet'. Field 'station' is specified as NULLABLE in provided schema which does not match REQUIRED as specified in the file.",
      });
    }
  });

  it('refuses a type that is not the field type, with the cpp_type message', () => {
    const swapped = [
      { name: 'station', type: 'INT64', mode: 'NULLABLE' },
      { name: 'entries', type: 'STRING', mode: 'NULLABLE' },
    ];
    expect(parquetSchemaError(F, optional, swapped, true, T)).toEqual({
      reason: 'invalid',
      message:
        "Error while reading data, error message: Parquet column 'station' has type BYTE_ARRAY which does not match the target cpp_type INT64.",
    });
    expect(parquetSchemaError(F, [optional[1]!, optional[0]!], swapped.slice(1), true, T)?.message).toContain(
      "Parquet column 'entries' has type INT64 which does not match the target cpp_type STRING.",
    );
    const naive = column({
      name: 'reading_at',
      logical_type:
        'TimestampType(isAdjustedToUTC=0, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))',
    });
    expect(
      parquetSchemaError(F, [naive], [{ name: 'reading_at', type: 'DATETIME' }], false, T),
    ).toBeUndefined();
    expect(
      parquetSchemaError(F, [naive], [{ name: 'reading_at', type: 'TIMESTAMP' }], false, T)?.message,
    ).toContain(
      "Parquet column 'reading_at' has type INT64 which does not match the target cpp_type TIMESTAMP.",
    );
  });

  it('refuses a schema field the file lacks, NULLABLE or REQUIRED', () => {
    const extra = [...nullable, { name: 'exits', type: 'INT64', mode: 'NULLABLE' }];
    expect(parquetSchemaError(F, optional, extra, true, T)).toEqual({
      reason: 'invalid',
      message:
        "Error while reading data, error message: Field 'exits' of the provided schema is missing from the file 'gs://b/f.parquet'.",
    });
    expect(parquetSchemaError(F, optional, extra, false, T)?.message).toContain(
      "Field 'exits' of the table p:d.t",
    );
  });
});
