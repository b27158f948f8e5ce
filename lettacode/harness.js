// The harness of the letta-code end-to-end suite: it runs a fake model, a
// Kelpie server and, in this process, a recording reverse proxy in front of
// the server; it runs the pinned letta-code CLIs headless against the proxy
// and formats everything a failure needs to be understood: the CLI's exit
// status, stdout and stderr, every request the CLI made (with the bodies of
// failed responses) and the server's log.
//
// It builds nothing: KELPIE_BIN names the kelpie binary (default
// ../kelpie), and scripts/install-letta-code.sh installs letta-code into
// v<version>/node_modules.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const KELPIE_BIN = path.resolve(here, process.env.KELPIE_BIN ?? path.join('..', 'kelpie'));

/** The letta-code versions under test, oldest first. */
export const VERSIONS = ['0.25.9', '0.32.18'];

/** The model handle letta-code is given; the fake model serves fake-model. */
export const MODEL = 'openai/fake-model';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
/** cliTimeoutMs bounds one letta-code run; a healthy one takes 1-3 s. */
export const cliTimeoutMs = 90_000;
/** Bounds on what is kept, so a runaway process cannot exhaust memory. */
const outputBytesMax = 1 << 20; // per stream of a child process
const bodyBytesMax = 1 << 20; // per request or response body kept by the proxy
/** Bounds on what a failure report prints. */
const reportBodyChars = 1500;
const reportOutputChars = 8000;

// ---- processes -------------------------------------------------------------

// Every child the harness started, so that an unexpected exit of the test
// process still ends them (each is its own process group).
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {}
  }
});

/** Output keeps the first outputBytesMax bytes of a stream and counts the rest. */
class Output {
  constructor() {
    this.chunks = [];
    this.kept = 0;
    this.dropped = 0;
  }
  push(chunk) {
    const room = outputBytesMax - this.kept;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(part);
    this.kept += part.length;
    this.dropped += chunk.length - part.length;
  }
  text() {
    const s = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped ? `${s}\n[… ${this.dropped} more bytes not kept]` : s;
  }
}

/**
 * run starts a process in its own process group and resolves when it
 * exits (or, after timeoutMs, is killed): {code, signal, stdout, stderr,
 * timedOut, ms, error}.
 */
export function run(cmd, args, { env, cwd, timeoutMs = cliTimeoutMs } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const out = new Output();
    const err = new Output();
    const proc = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(proc);
    proc.stdout.on('data', (c) => out.push(c));
    proc.stderr.on('data', (c) => err.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {}
    }, timeoutMs);
    const finish = (code, signal, error) => {
      clearTimeout(timer);
      children.delete(proc);
      resolve({ code, signal, error, timedOut, ms: Date.now() - started, stdout: out.text(), stderr: err.text() });
    };
    proc.on('error', (e) => finish(null, null, e));
    proc.on('close', (code, signal) => finish(code, signal, undefined));
  });
}

/** A long-running kelpie child process with its combined output kept. */
class Service {
  constructor(name, args, env) {
    this.name = name;
    this.output = '';
    this.proc = spawn(KELPIE_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(this.proc);
    const keep = (chunk) => {
      this.output += chunk.toString();
      if (this.output.length > 2 * outputBytesMax) this.output = this.output.slice(-outputBytesMax);
      if (process.env.KELPIE_LETTACODE_VERBOSE) process.stderr.write(`[${name}] ${chunk}`);
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    this.exit = null;
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
      this.proc.on('error', (error) => resolve({ code: null, signal: null, error }));
    }).then((e) => {
      children.delete(this.proc);
      this.exit = e;
      return e;
    });
  }

  tail(n = 60) {
    return this.output.trimEnd().split('\n').slice(-n).join('\n');
  }

  /** stop sends SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; returns the exit status. */
  async stop() {
    if (this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      try {
        process.kill(-this.proc.pid, 'SIGKILL');
      } catch {}
    }, STOP_TIMEOUT_MS);
    const e = await this.exited;
    clearTimeout(timer);
    return e;
  }
}

async function waitFor(what, service, deadline, probe) {
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (service.exit) {
      throw new Error(`${service.name} exited (${JSON.stringify(service.exit)}) before ${what}; its output:\n${service.tail()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${START_TIMEOUT_MS / 1000}s waiting for ${what}; ${service.name} output:\n${service.tail()}`);
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

// ---- the recording proxy ---------------------------------------------------

/**
 * Exchange is one request through the proxy: method, url, status, the
 * request body and (for errors and event streams) the response body.
 */
class Exchange {
  constructor(n, method, url, key) {
    this.n = n;
    this.at = Date.now();
    this.method = method;
    this.url = url;
    this.key = key; // the bearer token, which tells the sessions apart
    this.status = null;
    this.contentType = '';
    this.request = '';
    this.response = '';
    this.error = null;
  }

  /** sseTypes counts the message_type of each event of an event-stream response. */
  sseTypes() {
    const types = {};
    for (const line of this.response.split(/\r?\n/)) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '' || data === '[DONE]') continue;
      let t;
      try {
        t = JSON.parse(data).message_type ?? '(no message_type)';
      } catch {
        t = '(not JSON)';
      }
      types[t] = (types[t] ?? 0) + 1;
    }
    return types;
  }

  /** format describes the exchange; start is the run's start time (ms). */
  format(start) {
    const sse = this.contentType.includes('text/event-stream');
    let s = `#${this.n} +${this.at - start}ms ${this.method} ${this.url} -> ${this.error ? `proxy error: ${this.error}` : this.status}`;
    if (sse) s += ` (SSE: ${JSON.stringify(this.sseTypes())})`;
    if (this.request) s += `\n    request: ${clip(this.request, reportBodyChars)}`;
    if (this.status >= 400 || (sse && /"message_type":\s*"error_message"|"stop_reason":\s*"error"/.test(this.response))) {
      s += `\n    response: ${clip(this.response, reportBodyChars)}`;
    }
    return s;
  }
}

function clip(s, n) {
  s = s.replace(/\s+/g, ' ');
  return s.length > n ? `${s.slice(0, n)}… [${s.length} chars]` : s;
}

function keepBody(chunks) {
  const b = Buffer.concat(chunks);
  return b.length > bodyBytesMax ? `${b.subarray(0, bodyBytesMax).toString()}[… ${b.length - bodyBytesMax} more bytes]` : b.toString();
}

/**
 * startProxy forwards every request to target (host:port) unchanged and
 * records it in exchanges. Request bodies are read whole before they are
 * forwarded; responses are streamed through as they arrive.
 */
async function startProxy(targetPort) {
  const exchanges = [];
  const server = http.createServer((req, res) => {
    const key = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    const ex = new Exchange(exchanges.length + 1, req.method, req.url, key);
    exchanges.push(ex);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      ex.request = keepBody([body]);
      const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        ex.status = ur.statusCode;
        ex.contentType = ur.headers['content-type'] ?? '';
        res.writeHead(ur.statusCode, ur.headers);
        const rc = [];
        let kept = 0;
        ur.on('data', (c) => {
          if (kept < bodyBytesMax) {
            rc.push(c);
            kept += c.length;
          }
          res.write(c);
        });
        ur.on('end', () => {
          ex.response = keepBody(rc);
          res.end();
        });
        ur.on('error', (e) => {
          ex.error = String(e);
          res.destroy(e);
        });
      });
      up.on('error', (e) => {
        ex.error = String(e);
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ detail: `lettacode proxy: ${e}` }));
      });
      up.end(body);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    exchanges,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// ---- the stack -------------------------------------------------------------

/**
 * startStack starts `kelpie fake-llm`, `kelpie serve` (SQLite in a new
 * temporary directory) and the recording proxy, and waits until
 * /v1/health answers through the proxy. It returns {url (the proxy's),
 * serverURL, exchanges, serverOutput(), stop()}.
 */
export async function startStack() {
  if (!existsSync(KELPIE_BIN)) {
    throw new Error(`kelpie binary not found at ${KELPIE_BIN}: build it (go build -o ${KELPIE_BIN} ./cmd/kelpie) or set KELPIE_BIN`);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kelpie-lettacode-'));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dataDir, TMPDIR: os.tmpdir() };
  const st = { fake: null, serve: null, proxy: null, dataDir };
  try {
    st.fake = new Service('fake-llm', ['fake-llm', '--addr', '127.0.0.1:0'], env);
    const fakeURL = await waitFor('the fake LLM to listen', st.fake, deadline, async () => {
      return st.fake.output.match(/fake LLM listening on (http:\/\/\S+\/v1)/)?.[1];
    });
    // A free port can be taken between the probe and the bind; retry then.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const serverURL = `http://127.0.0.1:${port}`;
      // Only what the server needs: no provider key, storage or address
      // from the environment the tests run in.
      st.serve = new Service('kelpie serve', ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir], {
        ...env,
        OPENAI_BASE_URL: fakeURL,
        OPENAI_API_KEY: 'unused',
      });
      try {
        await waitFor(`${serverURL}/v1/health`, st.serve, deadline, async () => {
          try {
            return (await fetch(`${serverURL}/v1/health`, { signal: AbortSignal.timeout(2000) })).ok;
          } catch {
            return false;
          }
        });
        st.proxy = await startProxy(port);
        return {
          url: st.proxy.url,
          serverURL,
          exchanges: st.proxy.exchanges,
          serverOutput: (n) => st.serve.tail(n),
          stop: () => stopStack(st),
        };
      } catch (err) {
        if (attempt < 3 && st.serve.exit && /address already in use/i.test(st.serve.output)) continue;
        throw err;
      }
    }
  } catch (err) {
    await stopStack(st).catch(() => {});
    throw err;
  }
}

async function stopStack(st) {
  await st.proxy?.close();
  const [serve] = await Promise.all([st.serve?.stop(), st.fake?.stop()]);
  const serveOutput = st.serve?.tail(80) ?? '';
  await rm(st.dataDir, { recursive: true, force: true });
  return { serve, serveOutput };
}

// ---- letta-code ------------------------------------------------------------

/** lettaDir is where scripts/install-letta-code.sh installs a version. */
export function lettaDir(version) {
  return path.join(here, `v${version}`);
}

/**
 * installed reports whether a version is installed: null if it is, else
 * why not.
 */
export function installed(version) {
  const pkg = path.join(lettaDir(version), 'node_modules', '@letta-ai', 'letta-code', 'package.json');
  if (!existsSync(pkg)) return `letta-code ${version} is not installed (no ${pkg}): run scripts/install-letta-code.sh`;
  const got = JSON.parse(readFileSync(pkg, 'utf8')).version;
  if (got !== version) return `${pkg} is version ${got}, want ${version}: run scripts/install-letta-code.sh --force`;
  return null;
}

/**
 * Session is one letta-code installation run against the stack with its
 * own HOME (letta-code keeps settings and its last agent there), working
 * directory and API key; the key tells its requests apart from those of
 * sessions running at the same time.
 */
export class Session {
  constructor(version, stack, dir) {
    this.version = version;
    this.stack = stack;
    this.dir = dir;
    this.home = path.join(dir, 'home');
    this.cwd = path.join(dir, 'work');
    this.debugFile = path.join(dir, 'letta-debug.log');
    this.bin = path.join(lettaDir(version), 'node_modules', '@letta-ai', 'letta-code', 'letta.js');
    this.key = `kelpie-lettacode-${version}`;
    this.runs = [];
  }

  static async create(version, stack) {
    const dir = await mkdtemp(path.join(os.tmpdir(), `kelpie-lettacode-${version}-`));
    const { mkdir } = await import('node:fs/promises');
    const s = new Session(version, stack, dir);
    await mkdir(s.home);
    await mkdir(s.cwd);
    return s;
  }

  async remove() {
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * letta runs the CLI with args (headless, JSON output is the caller's
   * choice) and returns a Run. The environment is built from scratch so
   * that nothing of the caller's (an API key, LETTA_AGENT_ID, …) leaks in.
   */
  async letta(args) {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: this.home,
      TMPDIR: os.tmpdir(),
      TERM: 'dumb',
      NO_COLOR: '1',
      LETTA_BASE_URL: this.stack.url,
      LETTA_API_KEY: this.key,
      // Without this letta-code runs `npm install --global
      // @letta-ai/letta-code@latest` in the background on every start.
      DISABLE_AUTOUPDATER: '1',
      // Telemetry goes to Letta's cloud whatever LETTA_BASE_URL says.
      LETTA_CODE_TELEM: '0',
      // Debug lines go to a file, printed when a check fails.
      LETTA_DEBUG: '1',
      LETTA_DEBUG_FILE: this.debugFile,
    };
    const from = this.stack.exchanges.length;
    const start = Date.now();
    const r = await run(process.execPath, [this.bin, ...args], { env, cwd: this.cwd });
    const mine = this.stack.exchanges.slice(from).filter((e) => e.key === this.key);
    const res = new Run(this, args, { ...r, start }, mine);
    this.runs.push(res);
    return res;
  }
}

/** Run is one finished CLI run: its result and the requests it made. */
export class Run {
  constructor(session, args, result, exchanges) {
    this.session = session;
    this.args = args;
    Object.assign(this, result);
    this.exchanges = exchanges;
  }

  /** json parses stdout as the single JSON document --output-format json prints. */
  json() {
    try {
      return JSON.parse(this.stdout);
    } catch (err) {
      throw new Error(`stdout is not one JSON document (${err.message})`);
    }
  }

  /** report is everything known about the run, for a failure message. */
  report() {
    const s = this.session;
    const cmd = `letta ${this.args.map((a) => (/^[\w@./:=-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`;
    const exit = this.timedOut
      ? `killed after ${cliTimeoutMs / 1000}s (timeout)`
      : this.error
        ? `could not start: ${this.error}`
        : `exit ${this.code}${this.signal ? ` (signal ${this.signal})` : ''} after ${this.ms} ms`;
    let debug = '';
    try {
      debug = readFileSync(s.debugFile, 'utf8');
    } catch {}
    const failed = this.exchanges.filter((e) => e.status >= 400 || e.error);
    return [
      `---- letta-code ${s.version}: ${cmd}`,
      `---- ${exit}`,
      `---- stdout:\n${tailChars(this.stdout, reportOutputChars) || '(empty)'}`,
      `---- stderr:\n${tailChars(this.stderr, reportOutputChars) || '(empty)'}`,
      `---- requests (${this.exchanges.length}, ${failed.length} failed; +ms from the start of the run):\n${this.exchanges.map((e) => e.format(this.start)).join('\n') || '(none)'}`,
      failed.length
        ? `---- failed requests:\n${failed.map((e) => `#${e.n} ${e.method} ${e.url} -> ${e.status ?? e.error}: ${clip(e.response, reportBodyChars)}`).join('\n')}`
        : '',
      `---- letta-code debug log (last lines):\n${tailLines(debug, 40) || '(empty)'}`,
      `---- kelpie serve log (last lines):\n${s.stack.serverOutput(40)}`,
    ]
      .filter(Boolean)
      .join('\n');
  }
}

function tailChars(s, n) {
  s = s.trimEnd();
  return s.length > n ? `[… ${s.length - n} chars before]\n${s.slice(-n)}` : s;
}

function tailLines(s, n) {
  return s.trimEnd().split('\n').slice(-n).join('\n');
}

/**
 * check runs fn(); if it throws, the error is rethrown with the reports
 * of the given runs appended, so the failure shows what happened.
 */
export async function check(runs, fn) {
  try {
    return await fn();
  } catch (err) {
    const reports = runs.filter(Boolean).map((r) => r.report());
    const e = new Error(`${err.message}\n\n${reports.join('\n\n')}`, { cause: err });
    // The stack is the check's, not the long message (whose stderr may
    // hold stack-like lines of its own).
    const frames = (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
    e.stack = `Error: ${err.message.split('\n')[0]}\n${frames.join('\n')}`;
    throw e;
  }
}

// ---- the REST API ----------------------------------------------------------

/**
 * api calls the server directly (not through the proxy, so that the
 * proxy's log holds only what letta-code sent) and returns the parsed
 * JSON body, throwing on a non-2xx status with the body in the message.
 */
export async function api(stack, method, urlPath) {
  const res = await fetch(`${stack.serverURL}${urlPath}`, {
    method,
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${urlPath} -> ${res.status}: ${clip(text, reportBodyChars)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${method} ${urlPath} -> ${res.status} with a body that is not JSON: ${clip(text, reportBodyChars)}`);
  }
}

/** text returns a Letta message's content as one string (content may be parts). */
export function text(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === 'string' ? p : (p?.text ?? ''))).join('\n');
  return '';
}

/**
 * summarize lists messages compactly for a failure message, without the
 * <system-reminder> blocks letta-code puts before every prompt.
 */
export function summarize(messages) {
  if (!Array.isArray(messages)) return `  (not a list: ${clip(JSON.stringify(messages) ?? '', reportBodyChars)})`;
  return messages
    .map((m) => {
      const body =
        m.content !== undefined
          ? text(m.content).replace(/<system-reminder>[\s\S]*?<\/system-reminder>/g, '[reminder]')
          : (m.tool_return ?? m.tool_call?.name ?? m.tool_calls?.map((c) => c.name).join(',') ?? '');
      return `  ${m.message_type}: ${clip(String(body), 160)}`;
    })
    .join('\n');
}
