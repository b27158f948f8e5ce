// Kelpie's harness for JavaScript (and type-stripped TypeScript) tools,
// run inside the sandbox.
//
// Usage: node harness.mjs CALL_JSON RESULT_FD
//
// CALL_JSON names the call: {"source": path, "entry": name, "script": bool,
// "arguments": {...}}. The source is an ES module; for a tool call the
// executor has appended `export { <entry> as __kelpie_entry__ }` to it, so
// the entry may be exported or not. The harness imports it and calls the
// entry: with the arguments object when the function takes one
// destructured object (or its parameters cannot be read), otherwise with
// the arguments in the order of its parameter names, as Letta does for
// TypeScript tools. It writes newline-delimited JSON frames to RESULT_FD:
// {"event": "start"} first, then one {"event": "result", ...}. stdout and
// stderr belong to the tool.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [callPath, fdArg] = process.argv.slice(2);
const fd = Number(fdArg);
// bwrap leaves the user namespace it joined open; the tool has no use for it.
for (let n = fd + 1; n < 16; n++) {
  try {
    if (fs.readlinkSync(`/proc/self/fd/${n}`).startsWith('user:[')) fs.closeSync(n);
  } catch {}
}
const call = JSON.parse(fs.readFileSync(callPath, 'utf8'));
process.argv = [process.argv[0], call.source];
globalThis.require = createRequire(call.source);

function send(frame) {
  const data = Buffer.from(JSON.stringify(frame) + '\n', 'utf8');
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off);
}

function failure(e) {
  const frame = { event: 'result', ok: false };
  if (e instanceof Error) {
    frame.type = e.name || e.constructor?.name || 'Error';
    frame.message = e.message;
    frame.traceback = e.stack;
    if (typeof e.code === 'string') frame.code = e.code;
  } else {
    frame.type = typeof e;
    frame.message = String(e);
  }
  return frame;
}

// paramList returns the source text of fn's parameters, or null when it
// cannot tell them apart.
function paramList(fn) {
  const src = Function.prototype.toString.call(fn);
  const bare = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (bare) return [bare[1]];
  const open = src.indexOf('(');
  if (open < 0) return null;
  const params = [];
  let depth = 0;
  let cur = '';
  let quote = null;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (quote) {
      cur += c;
      if (c === '\\') cur += src[++i] ?? '';
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) return null;
      i = end + 1;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      if (end < 0) return null;
      i = end;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c;
    } else if (c === '(' || c === '[' || c === '{') {
      depth++;
      if (depth === 1) continue;
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) {
        params.push(cur);
        return params.map((p) => p.trim()).filter((p) => p !== '');
      }
    } else if (c === ',' && depth === 1) {
      params.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  return null;
}

function callArguments(fn, args) {
  const params = paramList(fn);
  if (params === null) return [args];
  if (params.length === 0) return [];
  if (params.length === 1 && params[0].startsWith('{')) return [args];
  const names = [];
  for (const p of params) {
    const m = /^([A-Za-z_$][\w$]*)\s*(=[\s\S]*)?$/.exec(p);
    if (!m) return [args];
    names.push(m[1]);
  }
  const unknown = Object.keys(args).filter((k) => !names.includes(k));
  if (unknown.length > 0) {
    throw new TypeError(`${call.entry}() got unexpected argument(s): ${unknown.join(', ')}`);
  }
  return names.map((n) => args[n]);
}

send({ event: 'start' });
let frame;
try {
  const mod = await import(pathToFileURL(call.source).href);
  if (call.script) {
    // The program may still have work queued; it ends when the event loop
    // is empty, and its exit code says how it went.
    process.on('exit', (code) => {
      send(code === 0 ? { event: 'result', ok: true } : {
        event: 'result', ok: false, type: 'Exit', message: `the program exited with status ${code}`,
      });
    });
  } else {
    const fn = mod.__kelpie_entry__;
    if (typeof fn !== 'function') throw new TypeError(`${call.entry} is not a function`);
    const value = await fn(...callArguments(fn, call.arguments ?? {}));
    if (typeof value === 'string') frame = { event: 'result', ok: true, text: value };
    else frame = { event: 'result', ok: true, value: value === undefined ? null : value };
  }
} catch (e) {
  frame = failure(e);
}
if (frame !== undefined) {
  try {
    JSON.stringify(frame);
  } catch (e) {
    frame = { event: 'result', ok: false, type: 'TypeError', message: `the tool's return value cannot be encoded as JSON: ${e.message}` };
  }
  send(frame);
  // Exit now: timers or sockets the tool left behind do not hold the call
  // open. Writes to pipes are synchronous in Node.js on Linux, so nothing
  // printed is lost.
  process.exit(frame.ok ? 0 : 1);
}
