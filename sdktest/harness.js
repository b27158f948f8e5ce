// The harness: runs a fake model and a Kelpie server for one test file,
// gives tests a Letta SDK client whose every response is checked against
// the Letta OpenAPI document, and stops both processes at the end.
//
//   import { setup, conformance } from './harness.js';
//   const k = setup();                          // before/after hooks
//   conformance('name', async () => { await k.client.agents.list(); });
//
// It builds nothing: KELPIE_BIN names the kelpie binary (default ../kelpie,
// which scripts/test.sh builds into its temporary directory and passes in).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after, test } from 'node:test';
import Letta from '@letta-ai/letta-client';
import { responseSchema, validate, checkDetailBody, componentRef } from './schema.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const KELPIE_BIN = path.resolve(here, process.env.KELPIE_BIN ?? path.join('..', 'kelpie'));

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

// ---- processes -------------------------------------------------------------

// Every child the harness started, so that an unexpected exit of the test
// process still ends them.
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

/** A child process with its combined output kept for error messages. */
class Child {
  constructor(name, args, env) {
    this.name = name;
    this.output = '';
    this.proc = spawn(KELPIE_BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.proc);
    const keep = (chunk) => {
      this.output += chunk.toString();
      if (this.output.length > 256 * 1024) this.output = this.output.slice(-128 * 1024);
      if (process.env.KELPIE_SDKTEST_VERBOSE) process.stderr.write(`[${name}] ${chunk}`);
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        children.delete(this.proc);
        resolve({ code, signal });
      });
      this.proc.on('error', (err) => {
        children.delete(this.proc);
        resolve({ code: null, signal: null, error: err });
      });
    });
    this.exit = null;
    this.exited.then((e) => (this.exit = e));
  }

  tail(n = 40) {
    return this.output.trimEnd().split('\n').slice(-n).join('\n');
  }

  /** stop sends SIGTERM and waits (then SIGKILL); returns the exit status. */
  async stop() {
    if (this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }
}

async function waitFor(what, child, deadline, probe) {
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (child.exit) {
      throw new Error(`${child.name} exited (${JSON.stringify(child.exit)}) before ${what}; its output:\n${child.tail()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${START_TIMEOUT_MS / 1000}s waiting for ${what}; ${child.name} output:\n${child.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * startKelpie starts `kelpie fake-llm` and `kelpie serve` (SQLite in a new
 * temporary directory) and waits until /v1/health answers.
 */
export async function startKelpie({ password } = {}) {
  if (!existsSync(KELPIE_BIN)) {
    throw new Error(`kelpie binary not found at ${KELPIE_BIN}: build it (go build -o ${KELPIE_BIN} ./cmd/kelpie) or set KELPIE_BIN`);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kelpie-sdktest-'));
  const running = { fake: null, serve: null, dataDir };
  try {
    // A 32,000-token window: the model list says so, and usage counts
    // what the window is checked against (compaction.test.js).
    running.fake = new Child('fake-llm', ['fake-llm', '--addr', '127.0.0.1:0', '--context-window', '32000'], {});
    const fakeURL = await waitFor('the fake LLM to listen', running.fake, deadline, async () => {
      const m = running.fake.output.match(/fake LLM listening on (http:\/\/\S+\/v1)/);
      return m?.[1];
    });

    // A free port can be taken between the probe and the bind; retry then.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const baseURL = `http://127.0.0.1:${port}`;
      const env = {
        OPENAI_BASE_URL: fakeURL,
        OPENAI_API_KEY: 'unused',
        KELPIE_SERVER_PASSWORD: password ?? '',
      };
      // The server must not pick up a provider or storage from the
      // environment the tests run in.
      for (const k of ['ANTHROPIC_API_KEY', 'KELPIE_STORAGE', 'KELPIE_ADDR', 'KELPIE_DATA_DIR', 'KELPIE_EMBEDDING_MODEL']) env[k] = '';
      running.serve = new Child('kelpie serve', ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir], env);
      try {
        await waitFor(`${baseURL}/v1/health`, running.serve, deadline, async () => {
          try {
            const r = await fetch(`${baseURL}/v1/health`, { signal: AbortSignal.timeout(2000) });
            return r.ok;
          } catch {
            return false;
          }
        });
        return {
          baseURL,
          fakeURL,
          dataDir,
          password,
          serverOutput: () => running.serve.tail(80),
          stop: () => stopAll(running),
        };
      } catch (err) {
        if (attempt < 3 && running.serve.exit && /address already in use/i.test(running.serve.output)) {
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    await stopAll(running).catch(() => {});
    throw err;
  }
}

async function stopAll(running) {
  const [serve, fake] = await Promise.all([running.serve?.stop(), running.fake?.stop()]);
  await rm(running.dataDir, { recursive: true, force: true });
  return { serve, fake, serveOutput: running.serve?.tail(80) ?? '' };
}

// ---- response capture and schema checks ------------------------------------

/**
 * Recorder wraps fetch: it passes every request through and checks each
 * response body against the OpenAPI document. Checks of streamed bodies
 * finish asynchronously; settle() waits for them.
 */
export class Recorder {
  constructor() {
    this.exchanges = [];
    this.pending = new Set();
    this.fetch = this.fetch.bind(this);
  }

  async fetch(input, init = {}) {
    const url = new URL(typeof input === 'string' ? input : input.url ?? String(input));
    const method = (init.method ?? input.method ?? 'GET').toUpperCase();
    const res = await fetch(input, init);
    const ex = {
      method,
      path: url.pathname,
      query: url.search,
      request: typeof init.body === 'string' ? init.body : undefined,
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      body: undefined,
      violations: [],
    };
    this.exchanges.push(ex);
    if (process.env.KELPIE_SDKTEST_VERBOSE) process.stderr.write(`[sdk] ${method} ${url.pathname}${url.search} -> ${res.status}\n`);
    const copy = res.clone();
    const check = this.#check(ex, copy).catch((err) => ex.violations.push(`could not check the response: ${err.stack ?? err}`));
    this.pending.add(check);
    check.finally(() => this.pending.delete(check));
    if (!ex.contentType.includes('text/event-stream')) await check;
    return res;
  }

  async #check(ex, res) {
    const text = await res.text();
    if (ex.contentType.includes('text/event-stream')) {
      ex.body = text;
      // Each SSE data line is one LettaStreamingResponse (or [DONE]).
      let n = 0;
      for (const line of text.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '' || data === '[DONE]') continue;
        n++;
        let ev;
        try {
          ev = JSON.parse(data);
        } catch {
          ex.violations.push(`SSE event ${n} is not JSON: ${data.slice(0, 200)}`);
          continue;
        }
        const ref =
          responseSchema(ex.method, ex.path, ex.status, 'text/event-stream').ref ??
          componentRef('LettaStreamingResponse');
        for (const v of validate(ref, ev)) ex.violations.push(`SSE event ${n}: ${v}`);
      }
      return;
    }
    if (ex.status === 204) {
      // No Content: an empty body, on an operation that declares 204.
      if (text !== '') ex.violations.push(`204 with a body: ${text.slice(0, 300)}`);
      const decl = responseSchema(ex.method, ex.path, ex.status);
      if (decl.template === null) ex.violations.push(`${ex.method} ${ex.path} is not a path of the Letta OpenAPI document`);
      else if (decl.declared || /not declared/.test(decl.reason)) ex.violations.push(`${ex.method} ${ex.path} does not declare an empty 204`);
      return;
    }
    if (!ex.contentType.includes('application/json')) {
      ex.violations.push(`Content-Type is ${JSON.stringify(ex.contentType)}, want application/json; body: ${text.slice(0, 300)}`);
    }
    try {
      ex.body = JSON.parse(text);
    } catch {
      ex.violations.push(`body is not JSON: ${text.slice(0, 300)}`);
      return;
    }
    const decl = responseSchema(ex.method, ex.path, ex.status);
    if (decl.template === null && ex.status < 400) {
      ex.violations.push(`${ex.method} ${ex.path} is not a path of the Letta OpenAPI document`);
    }
    ex.schema = decl.declared ? decl.ref : null;
    if (decl.declared) {
      ex.violations.push(...validate(decl.ref, ex.body));
    } else if (ex.status >= 400) {
      ex.violations.push(...checkDetailBody(ex.body));
    } else {
      ex.violations.push(`status ${ex.status} has no declared schema (${decl.reason})`);
    }
  }

  async settle() {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /** violationsSince returns a report of violations from exchanges[from:]. */
  violationsSince(from) {
    const bad = this.exchanges.slice(from).filter((e) => e.violations.length);
    if (!bad.length) return null;
    return bad
      .map((e) => {
        const body = JSON.stringify(e.body) ?? '';
        return (
          `${e.method} ${e.path}${e.query} -> ${e.status}` +
          (e.schema ? ` (schema ${decodeURIComponent(e.schema)})` : '') +
          (e.request ? `\n  request: ${e.request.slice(0, 500)}` : '') +
          `\n  body: ${body.length > 800 ? body.slice(0, 800) + '…' : body}` +
          `\n  violations:\n    ${e.violations.join('\n    ')}`
        );
      })
      .join('\n');
  }
}

// ---- test wiring -------------------------------------------------------------

/**
 * setup registers before/after hooks that start Kelpie for this file and
 * returns a handle whose fields are set once it runs: baseURL, client (an
 * SDK client recording through rec), rec, newClient(opts). A failed start
 * fails every test of the file (no skipping).
 */
export function setup({ password } = {}) {
  const k = { rec: new Recorder(), client: null, baseURL: null, server: null };
  k.newClient = (opts = {}) =>
    new Letta({
      baseURL: k.baseURL,
      apiKey: password ?? null,
      fetch: k.rec.fetch,
      // Retries would hide a wrong status (409 and 5xx are retried).
      maxRetries: 0,
      timeout: 30_000,
      ...opts,
    });
  before(async () => {
    k.server = await startKelpie({ password });
    k.baseURL = k.server.baseURL;
    k.client = k.newClient();
  });
  after(async () => {
    if (!k.server) return;
    const { serve, serveOutput } = await k.server.stop();
    // A SIGTERM is a graceful shutdown: kelpie serve must exit 0.
    if (serve && serve.code !== 0) {
      throw new Error(`kelpie serve did not exit cleanly on SIGTERM: ${JSON.stringify(serve)}\n${serveOutput}`);
    }
  });
  return k;
}

/**
 * conformance declares a test that also fails when any response it caused
 * violates the OpenAPI document. options are node:test's (todo, skip, …).
 */
export function conformance(name, k, options, fn) {
  if (typeof options === 'function') {
    fn = options;
    options = {};
  }
  return test(name, { timeout: 60_000, ...options }, async (t) => {
    if (!k.client) throw new Error('Kelpie did not start (see the before hook failure)');
    const from = k.rec.exchanges.length;
    let failure = null;
    try {
      await fn(t);
    } catch (err) {
      failure = err;
    }
    await k.rec.settle();
    const report = k.rec.violationsSince(from);
    if (report) {
      let msg = `responses violate the Letta OpenAPI document:\n${report}`;
      if (failure) msg += `\nThe test itself also failed: ${failure.stack ?? failure}`;
      throw new Error(msg, { cause: failure ?? undefined });
    }
    if (failure) throw failure;
  });
}

// ---- helpers for tests -------------------------------------------------------

let seq = 0;
/** unique returns a name unique within this test process. */
export function unique(prefix) {
  return `${prefix}-${process.pid}-${++seq}`;
}

/** poll calls fn until it returns a truthy value (bounded). */
export async function poll(what, fn, { timeoutMs = 20_000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last?.done) return last.value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}; last: ${JSON.stringify(last?.value)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** rejects awaits p and returns the error it rejects with (or fails). */
export async function rejects(p, what) {
  try {
    const v = await p;
    throw Object.assign(new Error(`${what}: expected an error, got ${JSON.stringify(v)?.slice(0, 500)}`), { unexpected: true });
  } catch (err) {
    if (err.unexpected) throw err;
    return err;
  }
}

/** A valid-looking agent ID that no server has. */
export function unknownAgentID() {
  return 'agent-00000000-0000-4000-8000-000000000000';
}

/**
 * collect pages through a list call the way the SDK's `for await` does
 * (following hasNextPage/getNextPage), but bounded: a server that ignores
 * the cursor would make `for await` loop forever, so a page that repeats
 * an item already seen, or more than maxPages pages, is an error.
 */
export async function collect(pagePromise, { maxPages = 50 } = {}) {
  const seen = new Set();
  const items = [];
  let page = await pagePromise;
  for (let n = 1; ; n++) {
    for (const item of page.getPaginatedItems()) {
      if (seen.has(item.id)) {
        throw new Error(`pagination does not advance: page ${n} repeats ${item.id} (the server ignored the cursor?)`);
      }
      seen.add(item.id);
      items.push(item);
    }
    if (!page.hasNextPage()) return items;
    if (n >= maxPages) throw new Error(`more than ${maxPages} pages`);
    page = await page.getNextPage();
  }
}
