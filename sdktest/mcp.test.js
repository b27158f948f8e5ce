// MCP servers through the SDK (client.mcpServers): register the reference
// server, @modelcontextprotocol/server-everything, over streamable HTTP on
// a loopback port; its tools become tool records; echo runs on its own
// and, attached to an agent, in a run the fake model drives. A stdio
// server is refused (this server runs without --mcp-stdio).
//
// scripts/install-mcp-everything.sh installs server-everything;
// KELPIE_MCP_EVERYTHING may name another copy. Under CI a missing one
// fails the suite; otherwise these tests are skipped.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { setup, conformance, unique, rejects } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const EVERYTHING = path.join(
  process.env.KELPIE_MCP_EVERYTHING ?? path.join(here, '..', 'mcpclient', 'testdata', 'everything', 'node_modules', '@modelcontextprotocol', 'server-everything'),
  'dist',
  'index.js',
);
const START_TIMEOUT_MS = 30_000;

const installed = existsSync(EVERYTHING);
if (!installed && process.env.CI) {
  throw new Error(`server-everything not installed at ${EVERYTHING}; run scripts/install-mcp-everything.sh`);
}
const skip = installed ? false : `server-everything not installed at ${EVERYTHING}; run scripts/install-mcp-everything.sh`;

const k = setup();
let everything = null;
let mcpURL = null;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function listening(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

before(async () => {
  if (!installed) return;
  const port = await freePort();
  let output = '';
  everything = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  everything.stdout.on('data', (c) => (output += c));
  everything.stderr.on('data', (c) => (output += c));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await listening(port))) {
    if (everything.exitCode !== null) throw new Error(`server-everything exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`server-everything not listening after ${START_TIMEOUT_MS} ms: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  mcpURL = `http://127.0.0.1:${port}/mcp`;
});

after(() => {
  everything?.kill('SIGKILL');
});

conformance('an MCP server is registered, its tools recorded, and echo runs on its own and in a run', k, { skip }, async () => {
  const name = unique('everything');
  const token = 'sdk-secret-token-0123456789';
  const server = await k.client.mcpServers.create({
    server_name: name,
    config: { mcp_server_type: 'streamable_http', server_url: mcpURL, auth_header: 'X-Api-Key', auth_token: token },
  });
  assert.match(server.id, /^mcp_server-/);
  assert.equal(server.server_name, name);
  assert.equal(server.auth_token, '****6789', 'the token is masked');

  const all = await k.client.mcpServers.list();
  assert.ok(all.some((s) => s.id === server.id));
  assert.ok(!JSON.stringify(all).includes(token), 'list shows the token in clear');
  const again = await k.client.mcpServers.retrieve(server.id);
  assert.equal(again.server_url, mcpURL);

  const tools = await k.client.mcpServers.tools.list(server.id);
  const echo = tools.find((t) => t.name === 'echo');
  assert.ok(echo, JSON.stringify(tools.map((t) => t.name)));
  assert.equal(echo.tool_type, 'external_mcp');
  assert.ok(echo.tags.includes(`mcp:${name}`));
  assert.deepEqual(echo.metadata_.mcp, { server_name: name, server_id: server.id });
  assert.equal((await k.client.mcpServers.tools.retrieve(echo.id, { mcp_server_id: server.id })).id, echo.id);

  const ran = await k.client.mcpServers.tools.run(echo.id, { mcp_server_id: server.id, args: { message: 'sdk' } });
  assert.equal(ran.status, 'success');
  assert.equal(ran.func_return, 'Echo: sdk');

  const ag = await k.client.agents.create({ name: unique('mcp'), model: 'openai/fake-model', include_base_tools: false, tools: ['send_message'] });
  await k.client.agents.tools.attach(echo.id, { agent_id: ag.id });
  const res = await k.client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: '@tool echo {"message": "hi"}' }] });
  const ret = res.messages.find((m) => m.message_type === 'tool_return_message');
  assert.ok(ret, JSON.stringify(res.messages));
  assert.equal(ret.status, 'success', ret.tool_return);
  assert.equal(ret.tool_return, 'Echo: hi');

  await k.client.mcpServers.refresh(server.id);
  await k.client.mcpServers.delete(server.id);
  await rejects(k.client.mcpServers.retrieve(server.id), 'a deleted server');
  await rejects(k.client.tools.retrieve(echo.id), 'a deleted server\'s tool');
});

conformance('a stdio MCP server is refused unless the operator enabled them', k, { skip }, async () => {
  const err = await k.client.mcpServers
    .create({ server_name: unique('local'), config: { mcp_server_type: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] } })
    .then(() => null, (e) => e);
  assert.ok(err, 'a stdio server was created');
  assert.equal(err.status, 403);
  assert.match(String(err.error?.detail ?? err.message), /stdio MCP servers are disabled/);
});
