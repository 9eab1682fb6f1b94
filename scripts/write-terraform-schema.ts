#!/usr/bin/env node
/**
 * Writes terraform/turnstile_readings.schema.json, the schema terraform gives the BigQuery table,
 * from the schema module (src/schema/turnstile-schema.ts), the one owner of the table's columns:
 * the worker refuses an existing table whose schema differs from the module's, so a hand-edited
 * copy would break the first load. test/deploy/terraform.test.ts fails when the committed file is
 * not what this writes.
 *
 *   node scripts/write-terraform-schema.ts     (Node 24: npx node ... on an older machine)
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { bigquerySchema } from '../src/schema/turnstile-schema.ts';

export const TERRAFORM_SCHEMA_FILE = fileURLToPath(
  new URL('../terraform/turnstile_readings.schema.json', import.meta.url),
);

/** The file's exact text: BigQuery's JSON schema (an array of fields), as prettier leaves it. */
export function terraformSchemaJson(): string {
  return `${JSON.stringify(bigquerySchema().fields, null, 2)}\n`;
}

if (import.meta.main) {
  await writeFile(TERRAFORM_SCHEMA_FILE, terraformSchemaJson());
  process.stdout.write(`wrote ${TERRAFORM_SCHEMA_FILE}\n`);
}
