/**
 * The block format's description, one section per kind of thing a block configures: the fields
 * of the source, lake, warehouse and worker sections are the settings table's rows
 * (settings-table.ts); the container section, which no run reads (it is the image a Prefect work
 * pool runs), is described here. Block validation (blocks.ts) and Prefect's block schemas
 * (sectionJsonSchema) both read it.
 */
import { MAX_WHOLE_NUMBER, SETTINGS, type SettingName, type SettingSection } from './settings-table.ts';

export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

export type SectionName = SettingSection | 'container';

/** One field of a section: its JSON type, constraints, and the setting it flattens into. */
export interface FieldSpec {
  /** 'array': of non-empty strings; 'object': string values by name (the container's only). */
  type: 'string' | 'integer' | 'array' | 'object';
  description: string;
  required?: boolean;
  /** The setting this field is (none for the container's fields). */
  setting?: SettingName;
  enum?: readonly string[];
  /** For strings: a regular expression the value must match. */
  pattern?: string;
  minimum?: number;
  maximum?: number;
  default?: string | number;
}

export interface SectionSpec {
  /** Shown by Prefect as the block type's name. */
  title: string;
  description: string;
  fields: Record<string, FieldSpec>;
}

export const HTTP_URL = '^https?://[^/\\s]+';

/** A setting's row as a block field. */
function fieldsOf(section: SettingSection): Record<string, FieldSpec> {
  const fields: Record<string, FieldSpec> = {};
  for (const setting of SETTINGS) {
    if (setting.block?.section !== section) continue;
    const field: FieldSpec = { type: 'string', setting: setting.name, description: setting.help };
    if (setting.block.required) field.required = true;
    if (setting.type === 'http-url') field.pattern = HTTP_URL;
    if (setting.type === 'integer') {
      Object.assign(field, { type: 'integer', minimum: setting.minimum, maximum: MAX_WHOLE_NUMBER });
      field.default = setting.default;
    }
    fields[setting.block.field] = field;
  }
  return fields;
}

/** The one description of the block format: validation, flattening and Prefect's schemas. */
export const BLOCK_SECTIONS: Record<SectionName, SectionSpec> = {
  source: {
    title: 'MTA Ingest Source',
    description: 'Where the weekly turnstile files are fetched from, and how patiently.',
    fields: fieldsOf('source'),
  },
  lake: {
    title: 'MTA Ingest Lake',
    description: 'Where raw files, Parquet and manifests are stored: a folder or gs://bucket/prefix.',
    fields: fieldsOf('lake'),
  },
  warehouse: {
    title: 'MTA Ingest Warehouse',
    description: 'Where weeks are loaded: a DuckDB file or bigquery://project/dataset?location=L.',
    fields: fieldsOf('warehouse'),
  },
  container: {
    title: 'MTA Ingest Container',
    description: "The worker's Docker image, as a Prefect docker work pool runs it.",
    fields: {
      image: {
        type: 'string',
        required: true,
        pattern: '^[^\\s]+$',
        description: 'The image reference, e.g. mtaingest/mta-ingest:0.1.0.',
      },
      pullPolicy: {
        type: 'string',
        enum: PULL_POLICIES,
        default: 'IfNotPresent',
        description: 'When the image is pulled: Always, IfNotPresent or Never.',
      },
      networkMode: {
        type: 'string',
        pattern: '^[A-Za-z0-9_.:-]+$',
        description:
          "The containers' network mode, e.g. host (to reach services on the host's 127.0.0.1) or bridge.",
      },
      volumes: {
        type: 'array',
        pattern: '^[^:\\s]+:/[^:\\s]*(:(ro|rw))?$',
        description:
          'Volumes, HOST:CONTAINER[:ro], e.g. /srv/mta:/work/data (the default lake and warehouse are under /work/data).',
      },
      env: {
        type: 'object',
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        description: 'Environment variables for the containers, by name (never secrets).',
      },
    },
  },
  worker: {
    title: 'MTA Ingest Worker',
    description: 'How the worker runs: where it spools a week, and how many weeks a run catches up.',
    fields: fieldsOf('worker'),
  },
};

export const SECTION_NAMES = Object.keys(BLOCK_SECTIONS) as SectionName[];

/**
 * A section's JSON schema, in the shape Prefect keeps block schemas in (title, properties,
 * required, plus Prefect's own block_type_slug, secret_fields and block_schema_references).
 */
export function sectionJsonSchema(section: SectionName, blockTypeSlug: string): Record<string, unknown> {
  const spec = BLOCK_SECTIONS[section];
  const properties: Record<string, Record<string, unknown>> = {};
  for (const [key, field] of Object.entries(spec.fields)) {
    const property: Record<string, unknown> = {
      title: titleOf(key),
      description: field.description,
      type: field.type,
    };
    if (field.type === 'array') {
      property.items = { type: 'string', ...(field.pattern === undefined ? {} : { pattern: field.pattern }) };
    } else if (field.type === 'object') {
      property.additionalProperties = { type: 'string' };
      if (field.pattern !== undefined) property.propertyNames = { pattern: field.pattern };
    } else if (field.pattern !== undefined) property.pattern = field.pattern;
    if (field.enum !== undefined) property.enum = [...field.enum];
    if (field.minimum !== undefined) property.minimum = field.minimum;
    if (field.maximum !== undefined) property.maximum = field.maximum;
    if (field.default !== undefined) property.default = field.default;
    properties[key] = property;
  }
  return {
    title: spec.title.replace(/\s+/g, ''),
    description: spec.description,
    type: 'object',
    properties,
    required: Object.entries(spec.fields)
      .filter(([, field]) => field.required)
      .map(([key]) => key),
    additionalProperties: false,
    block_type_slug: blockTypeSlug,
    secret_fields: [],
    block_schema_references: {},
  };
}

function titleOf(key: string): string {
  const words = key.replace(/([A-Z])/g, ' $1');
  return words.charAt(0).toUpperCase() + words.slice(1);
}
