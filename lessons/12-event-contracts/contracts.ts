import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { CATALOG, dataschemaOf, isMessageName, knownVersions, parseType, schemaFile, typeOf, type MessageName } from './catalog.ts';
import type { CloudEvent } from './events.ts';

/** What reading a message found: a message that keeps its contract, or why it cannot be handled. */
export type Checked =
  | { ok: true; message: CloudEvent; name: MessageName; version: number }
  | { ok: false; problem: Problem; reason: string };

export type Problem = 'not-json' | 'invalid-envelope' | 'unknown-type' | 'unknown-version' | 'invalid-payload';

// ajv-formats is CommonJS. TypeScript types its default import as the whole module, whose `.default`
// is the plugin; at run time the plugin is its own `.default`, so this works under tsx and Node alike.
const addFormats = addFormatsPlugin.default;

// One validator per schema, compiled once when the module loads: compiling is the expensive part,
// validating a message with a compiled schema takes microseconds. allErrors: report every problem
// of a message, not only the first.
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);

function loadSchema(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`./contracts/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;
}

const envelopeSchema = ajv.compile(loadSchema('cloudevent.json'));

/** The compiled contract of each known type, e.g. `com.example.orders.order-placed.v1`. */
const payloadSchemas = new Map<string, ValidateFunction>();
for (const name of Object.keys(CATALOG) as MessageName[]) {
  for (const version of knownVersions(name)) {
    const schema = loadSchema(schemaFile(name, version)!);
    // A contract file that does not describe what the catalog says it does is a bug: fail at start-up.
    if (schema.$id !== dataschemaOf(name, version)) {
      throw new Error(`contracts/${schemaFile(name, version)} has $id ${String(schema.$id)}, expected ${dataschemaOf(name, version)}`);
    }
    payloadSchemas.set(typeOf(name, version), ajv.compile(schema));
  }
}

/**
 * ajv's errors as one line that names each failing field by its JSON Pointer, e.g.
 * `/data/total/amountMinor must be integer; /data/orderId is required`. `at` is prefixed to every
 * path, so errors of a payload validated on its own can be reported where they are in the message.
 */
export function describeErrors(errors: readonly ErrorObject[] | null | undefined, at = ''): string {
  const lines = (errors ?? []).flatMap((error): string[] => {
    const path = `${at}${error.instancePath}`;
    if (error.keyword === 'required') return [`${path}/${String(error.params.missingProperty)} is required`];
    // An attribute name that breaks the naming rule: ajv reports it twice, once with the name.
    if (error.keyword === 'propertyNames') return [];
    if (error.propertyName !== undefined) {
      return [`${path}/${error.propertyName} is not a valid attribute name: CloudEvents attribute names are lowercase letters and digits`];
    }
    if (error.keyword === 'pattern' && path === '/type') {
      return ['/type must be a reverse-DNS name ending in its version, e.g. com.example.orders.order-placed.v3'];
    }
    if (error.keyword === 'const') return [`${path || '/'} must be ${JSON.stringify(error.params.allowedValue)}`];
    return [`${path || '/'} ${error.message ?? 'is invalid'}`];
  });
  return lines.join('; ') || 'invalid';
}

/**
 * Checks a parsed message against the envelope and then against the contract its type names.
 * Never throws: a message that cannot be handled comes back with the problem and a reason that
 * names the failing field.
 */
export function checkMessage(json: unknown): Checked {
  // TODO: check the message in two steps and report the first step that fails:
  // 1. the envelope (envelopeSchema): problem 'invalid-envelope', with describeErrors(envelopeSchema.errors);
  // 2. the payload: parse the type (parseType). A name not in the catalog is 'unknown-type'. A version
  //    with no compiled contract in payloadSchemas is 'unknown-version': say which version and which
  //    ones this code reads, and do not guess. Otherwise validate message.data with that contract:
  //    'invalid-payload', with describeErrors(validate.errors, '/data') so the reason names the field
  //    where it is in the message.
  // A message that passes both comes back as { ok: true, message, name, version }.
  throw new Error('TODO: checkMessage');
}

/** Reads an AMQP message body in structured content mode: JSON first, then checkMessage. */
export function readMessage(content: Buffer): Checked {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, problem: 'not-json', reason: `body is not JSON: ${JSON.stringify(content.toString('utf8').slice(0, 60))}` };
  }
  return checkMessage(json);
}
