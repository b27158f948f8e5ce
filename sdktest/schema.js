// Response-schema checks against the Letta OpenAPI document
// (api/testdata/letta-openapi.json, OpenAPI 3.1: components.schemas are
// JSON Schema 2020-12).
//
// responseValidator(method, path, status, contentType) finds the schema the
// document declares for that operation and status, compiles it once, and
// returns a function that validates a parsed JSON body and returns a list of
// error strings (empty when the body conforms).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
export const OPENAPI_PATH =
  process.env.LETTA_OPENAPI ?? path.join(here, '..', 'api', 'testdata', 'letta-openapi.json');

const DOC_ID = 'https://kelpie.test/letta-openapi.json';

let state = null;

function load() {
  if (state) return state;
  const doc = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));
  const ajv = new Ajv2020({
    // The document is not a schema at its root (openapi, info, paths), and
    // uses OpenAPI-only keywords; both are ignored, not errors.
    strict: false,
    validateSchema: false,
    allErrors: true,
    verbose: false,
  });
  addFormats(ajv);
  // OpenAPI-only keywords and formats: accepted, never checked.
  ajv.addVocabulary(['discriminator', 'example', 'xml', 'externalDocs']);
  ajv.addFormat('binary', true);
  ajv.addSchema({ ...doc, $id: DOC_ID });

  // Templated paths, matched segment by segment; literal segments beat
  // parameters, so /v1/runs/active wins over /v1/runs/{run_id}.
  const templates = Object.keys(doc.paths).map((p) => ({
    template: p,
    segments: trimSlash(p).split('/'),
  }));
  // Discriminator mappings (propertyName -> value -> schema pointer), used
  // only to explain failures of unions.
  const discriminators = new Map();
  (function walk(o) {
    if (!o || typeof o !== 'object') return;
    const d = o.discriminator;
    if (d && typeof d.propertyName === 'string' && d.mapping && typeof d.mapping === 'object') {
      const m = discriminators.get(d.propertyName) ?? new Map();
      for (const [value, ref] of Object.entries(d.mapping)) {
        if (typeof ref === 'string' && ref.startsWith('#/') && !m.has(value)) m.set(value, ref);
      }
      discriminators.set(d.propertyName, m);
    }
    for (const v of Object.values(o)) walk(v);
  })(doc.components);
  state = { doc, ajv, templates, discriminators, compiled: new Map() };
  return state;
}

function trimSlash(p) {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** matchPath maps a request path to the OpenAPI path template, or null. */
export function matchPath(requestPath) {
  const { templates } = load();
  const segs = trimSlash(requestPath).split('/');
  let best = null;
  let bestScore = -1;
  for (const t of templates) {
    if (t.segments.length !== segs.length) continue;
    let score = 0;
    let ok = true;
    for (let i = 0; i < segs.length; i++) {
      const s = t.segments[i];
      if (/^\{[^}]+\}$/.test(s)) continue;
      if (s !== decodeURIComponent(segs[i])) {
        ok = false;
        break;
      }
      // Earlier literal segments weigh more.
      score += 2 ** (segs.length - i);
    }
    if (ok && score > bestScore) {
      best = t.template;
      bestScore = score;
    }
  }
  return best;
}

function pointer(...parts) {
  return '#/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

/**
 * responseSchema describes what the document declares for a response:
 * { template, declared: bool, ref: JSON pointer | null, reason }.
 */
export function responseSchema(method, requestPath, status, mediaType = 'application/json') {
  const { doc } = load();
  const template = matchPath(requestPath);
  if (!template) return { template: null, declared: false, ref: null, reason: 'path not in the OpenAPI document' };
  const op = doc.paths[template][method.toLowerCase()];
  if (!op) return { template, declared: false, ref: null, reason: `${method} not declared for ${template}` };
  const responses = op.responses ?? {};
  const code = String(status);
  const key = code in responses ? code : `${code[0]}XX` in responses ? `${code[0]}XX` : 'default' in responses ? 'default' : null;
  if (!key) return { template, declared: false, ref: null, reason: `status ${status} not declared` };
  const content = responses[key].content ?? {};
  if (!content[mediaType]?.schema) {
    return { template, declared: false, ref: null, reason: `no ${mediaType} schema for status ${key}` };
  }
  return {
    template,
    declared: true,
    ref: pointer('paths', template, method.toLowerCase(), 'responses', key, 'content', mediaType, 'schema'),
  };
}

/** compile returns the validator for a JSON pointer into the document. */
export function compile(ref) {
  const { ajv, compiled } = load();
  let v = compiled.get(ref);
  if (!v) {
    v = ajv.compile({ $ref: DOC_ID + ref });
    compiled.set(ref, v);
  }
  return v;
}

/** componentRef is the pointer of components.schemas[name]. */
export function componentRef(name) {
  return pointer('components', 'schemas', name);
}

/** validate checks body against the schema at ref; returns error strings. */
export function validate(ref, body) {
  const v = compile(ref);
  if (v(body)) return [];
  return formatErrors(v.errors, body);
}

function formatErrors(errors, body) {
  // With anyOf/oneOf (the message union) ajv reports every branch, which
  // buries the one that matters. Where a union failed on an object that
  // names its kind by a discriminator (message_type, type, …), validate it
  // against the schema the discriminator maps to and report that instead.
  const { discriminators } = load();
  const unionPaths = [
    ...new Set((errors ?? []).filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath)),
  ].sort((a, b) => a.length - b.length);
  const out = [];
  const explained = [];
  for (const ip of unionPaths) {
    if (explained.some((p) => ip === p || ip.startsWith(p + '/'))) continue;
    const inst = getPointer(body, ip);
    if (!inst || typeof inst !== 'object' || Array.isArray(inst)) continue;
    for (const [prop, mapping] of discriminators) {
      const ref = mapping.get(inst[prop]);
      if (!ref) continue;
      const v = compile(ref);
      if (!v(inst)) {
        for (const e of v.errors) out.push(line(ip + e.instancePath, e, ` (as ${ref.split('/').pop()})`));
      }
      explained.push(ip);
      break;
    }
  }
  for (const e of errors ?? []) {
    if (explained.some((p) => e.instancePath === p || e.instancePath.startsWith(p + '/'))) continue;
    out.push(line(e.instancePath, e, ''));
  }
  return out.length > 40 ? [...out.slice(0, 40), `… and ${out.length - 40} more`] : out;
}

function line(instancePath, e, note) {
  let msg = `${instancePath || '/'}${note} ${e.message}`;
  if (e.params && Object.keys(e.params).length) msg += ` ${JSON.stringify(e.params)}`;
  return msg;
}

function getPointer(obj, ptr) {
  if (!ptr) return obj;
  let cur = obj;
  for (const raw of ptr.split('/').slice(1)) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = cur[k];
  }
  return cur;
}

/** An error body without a declared schema must at least be {"detail": …}. */
export function checkDetailBody(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return [`error body is not a JSON object: ${JSON.stringify(body)}`];
  }
  if (!('detail' in body)) return [`error body has no "detail": ${JSON.stringify(body)}`];
  return [];
}
