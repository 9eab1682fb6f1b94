/**
 * Blocks in a Prefect server: each section of a block (blocks.ts) is a block document of the
 * project's own block type for that section (`mta-ingest-source`, `mta-ingest-lake`, ...),
 * named after the block. So `blocks/gcp-prod.json` becomes the documents `mta-ingest-lake/gcp-prod`,
 * `mta-ingest-warehouse/gcp-prod` and so on, which operators see and edit in Prefect's UI, and
 * which a worker in a container reads back with `--block prefect:gcp-prod`.
 *
 * Applying is idempotent: block types and schemas are created when missing (a schema is keyed
 * by its checksum, so the same schema is the same record), documents are created or updated in
 * place (same id), and a document whose section the block no longer has is deleted, so what
 * Prefect holds is exactly the file.
 *
 * Prefect does not check a document's data against its schema, and anyone can edit it in the
 * UI: what is read back is validated by blocks.ts like a file.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  BLOCK_SECTIONS,
  SECTION_NAMES,
  sectionJsonSchema,
  validateSection,
  type BlockDocument,
  type SectionName,
} from '../blocks.ts';
import { UsageError } from '../errors.ts';
import { TOOL } from '../tool.ts';
import { PrefectClient } from './prefect-client.ts';

/** The block type slug of a section: `mta-ingest-lake`. */
export function blockTypeSlug(section: SectionName): string {
  return `mta-ingest-${section}`;
}

/** Prefect allows fewer characters in document names than block files do: no `_`. */
const PREFECT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function checkPrefectBlockName(name: string): void {
  if (!PREFECT_NAME.test(name)) {
    throw new UsageError(
      `--block ${name}: a block kept in Prefect is named with lower-case letters, digits and - only (Prefect refuses _)`,
    );
  }
}

interface BlockTypeRecord {
  id: string;
  description: string | null;
}
interface BlockSchemaRecord {
  id: string;
}
interface BlockDocumentRecord {
  id: string;
  name: string;
  data: Record<string, unknown>;
  block_schema_id: string;
}

/** A section's block type and current schema in the server. */
export interface BlockTypeIds {
  typeId: string;
  schemaId: string;
}

export type DocumentAction = 'created' | 'updated' | 'unchanged' | 'deleted';

export interface AppliedDocument {
  block: string;
  section: SectionName;
  /** `mta-ingest-lake/gcp-prod` */
  reference: string;
  id: string;
  action: DocumentAction;
}

/** Creates (or refreshes) the project's block types and their schemas. */
export async function applyBlockTypes(client: PrefectClient): Promise<Record<SectionName, BlockTypeIds>> {
  const ids = {} as Record<SectionName, BlockTypeIds>;
  for (const section of SECTION_NAMES) {
    const spec = BLOCK_SECTIONS[section];
    const slug = blockTypeSlug(section);
    const found = await client.get<BlockTypeRecord>(`/block_types/slug/${slug}`, [200, 404]);
    let typeId: string;
    if (found.status === 404) {
      const created = await client.post<BlockTypeRecord>('/block_types/', {
        name: spec.title,
        slug,
        description: spec.description,
      });
      typeId = created.body.id;
    } else {
      typeId = found.body.id;
      if (found.body.description !== spec.description) {
        await client.patch(`/block_types/${typeId}`, { description: spec.description });
      }
    }
    // Same fields, same checksum: Prefect answers the existing schema (200) instead of a new one.
    const schema = await client.post<BlockSchemaRecord>('/block_schemas/', {
      block_type_id: typeId,
      fields: sectionJsonSchema(section, slug),
      capabilities: [],
      version: TOOL.version,
    });
    ids[section] = { typeId, schemaId: schema.body.id };
  }
  return ids;
}

/** One block's sections as documents named `name`: created, updated in place, or deleted. */
export async function applyBlock(
  client: PrefectClient,
  name: string,
  block: BlockDocument,
  types: Record<SectionName, BlockTypeIds>,
): Promise<AppliedDocument[]> {
  checkPrefectBlockName(name);
  const applied: AppliedDocument[] = [];
  for (const section of SECTION_NAMES) {
    const slug = blockTypeSlug(section);
    const reference = `${slug}/${name}`;
    const data = block[section] as Record<string, unknown> | undefined;
    const existing = await readDocument(client, section, name);
    const { typeId, schemaId } = types[section];
    if (data === undefined) {
      if (existing !== undefined) {
        await client.delete(`/block_documents/${existing.id}`);
        applied.push({ block: name, section, reference, id: existing.id, action: 'deleted' });
      }
      continue;
    }
    if (existing === undefined) {
      const created = await client.post<BlockDocumentRecord>('/block_documents/', {
        name,
        data,
        block_schema_id: schemaId,
        block_type_id: typeId,
      });
      applied.push({ block: name, section, reference, id: created.body.id, action: 'created' });
    } else if (existing.block_schema_id === schemaId && sameData(existing.data, data)) {
      applied.push({ block: name, section, reference, id: existing.id, action: 'unchanged' });
    } else {
      // merge_existing_data false: a setting removed from the file is removed in Prefect too.
      await client.patch(`/block_documents/${existing.id}`, {
        data,
        block_schema_id: schemaId,
        merge_existing_data: false,
      });
      applied.push({ block: name, section, reference, id: existing.id, action: 'updated' });
    }
  }
  return applied;
}

/** `--block prefect:NAME`: the block's documents from the Prefect server, validated. */
export async function loadPrefectBlock(
  name: string,
  env: Record<string, string | undefined>,
): Promise<BlockDocument> {
  checkPrefectBlockName(name);
  return readPrefectBlock(PrefectClient.fromEnv(env), name);
}

/** The documents named `name` of the project's block types, validated as one block. */
export async function readPrefectBlock(client: PrefectClient, name: string): Promise<BlockDocument> {
  checkPrefectBlockName(name);
  const documents = await Promise.all(SECTION_NAMES.map((section) => readDocument(client, section, name)));
  const block: BlockDocument = {};
  SECTION_NAMES.forEach((section, index) => {
    const document = documents[index];
    if (document === undefined) return;
    const fail = (message: string): never => {
      throw new UsageError(
        `--block prefect:${name}: Prefect's ${blockTypeSlug(section)}/${name}: ${message}`,
      );
    };
    Object.assign(block, { [section]: validateSection(section, document.data, fail) });
  });
  if (Object.keys(block).length === 0) {
    throw new UsageError(
      `--block prefect:${name}: Prefect at ${client.apiUrl} has no block documents named ${name} of the types ${SECTION_NAMES.map(blockTypeSlug).join(', ')} (mta-ingest blocks apply --block ${name} puts them there)`,
    );
  }
  return block;
}

async function readDocument(
  client: PrefectClient,
  section: SectionName,
  name: string,
): Promise<BlockDocumentRecord | undefined> {
  const found = await client.get<BlockDocumentRecord>(
    `/block_types/slug/${blockTypeSlug(section)}/block_documents/name/${encodeURIComponent(name)}`,
    [200, 404],
  );
  return found.status === 404 ? undefined : found.body;
}

/** The same settings (the container's lists and maps compared by value). */
function sameData(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => isDeepStrictEqual(a[key], b[key]));
}
