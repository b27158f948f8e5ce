// Agent files (.af): import published files and export agents through the
// SDK (agents.importFile, agents.exportFile).
//
// The Letta OpenAPI document declares the export's body a string; Letta
// sends the agent file itself, a JSON object (which the SDK returns
// parsed). Kelpie does as Letta does, so exportFile goes through a client
// that does not record, and its body is checked against AgentFileSchema,
// the schema of what it is.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { toFile } from '@letta-ai/letta-client';
import { setup, conformance, unique, rejects } from './harness.js';
import { validate, componentRef } from './schema.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const TESTDATA = path.join(here, '..', 'agentfile', 'testdata');
const MODEL = 'openai/fake-model';

const k = setup();

// Before its first upload the SDK probes its fetch for FormData support by
// fetching "data:,", unless the fetch carries a Response class; the probe
// would reach the recorder as a request that is no Letta path.
k.rec.fetch.Response = globalThis.Response;

function published(name) {
  return readFileSync(path.join(TESTDATA, name));
}

async function upload(bytes, options = {}) {
  return k.client.agents.importFile({ file: await toFile(bytes, 'agent.af'), ...options });
}

/** exportFile through a client that does not check against the document. */
async function exportFile(agentID, query) {
  const plain = k.newClient({ fetch: globalThis.fetch });
  const file = await plain.agents.exportFile(agentID, query);
  assert.equal(typeof file, 'object', 'the export is the agent file, a JSON object');
  assert.deepEqual(validate(componentRef('AgentFileSchema'), file), [], 'the export is an AgentFileSchema');
  return file;
}

conformance('import a published agent file', k, async () => {
  const raw = published('memgpt_agent_with_convo.af');
  const doc = JSON.parse(raw);
  const res = await upload(raw, { append_copy_suffix: false });
  assert.equal(res.agent_ids.length, 1);
  const agent = await k.client.agents.retrieve(res.agent_ids[0], { include: ['agent.blocks', 'agent.tools'] });
  assert.equal(agent.name, 'memgpt_agent');
  assert.equal(agent.system, doc.agents[0].system);
  assert.equal(agent.description, doc.agents[0].description);
  for (const b of doc.blocks) {
    const got = agent.memory.blocks.find((x) => x.label === b.label);
    assert.equal(got?.value, b.value, `block ${b.label}`);
    assert.equal(got?.limit, b.limit, `limit of ${b.label}`);
  }
  assert.deepEqual(agent.tools.map((t) => t.name).sort(), doc.tools.map((t) => t.name).sort());
});

conformance('import a published agent file encoded twice', k, async () => {
  const raw = published('outreach_workflow_agent.af');
  const doc = JSON.parse(JSON.parse(raw));
  const res = await upload(raw);
  const agent = await k.client.agents.retrieve(res.agent_ids[0], { include: ['agent.tools'] });
  assert.equal(agent.name, 'outreach_workflow_agent_copy', 'append_copy_suffix is on by default');
  const custom = agent.tools.filter((t) => t.tool_type === 'custom');
  assert.deepEqual(custom.map((t) => t.name).sort(), doc.tools.map((t) => t.name).sort());
  for (const t of doc.tools) {
    const tool = await k.client.tools.retrieve(custom.find((c) => c.name === t.name).id);
    assert.equal(tool.source_code, t.source_code, `source of ${t.name}`);
  }
});

conformance('export an agent with its history and import the export', k, async () => {
  const ag = await k.client.agents.create({
    name: unique('exported'),
    model: MODEL,
    system: 'You are exported.',
    memory_blocks: [{ label: 'human', value: 'Name: Ada', limit: 300 }],
  });
  await k.client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: 'hello there' }] });
  const file = await exportFile(ag.id);
  const fa = file.agents[0];
  assert.equal(fa.name, ag.name);
  assert.equal(fa.system, 'You are exported.');
  assert.equal(fa.messages[0].role, 'system', "Letta's files begin with the compiled system prompt");
  assert.ok(fa.messages.some((m) => m.role === 'user' && m.content[0].text === 'hello there'));

  const res = await upload(Buffer.from(JSON.stringify(file)), { name: unique('reimported') });
  const copy = await k.client.agents.retrieve(res.agent_ids[0], { include: ['agent.blocks'] });
  assert.equal(copy.system, 'You are exported.');
  assert.equal(copy.memory.blocks.find((b) => b.label === 'human')?.value, 'Name: Ada');
  const before = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items;
  const after = (await k.client.agents.messages.list(copy.id, { order: 'asc' })).items;
  const shape = (ms) => ms.map((m) => [m.message_type, m.content ?? m.reasoning ?? m.tool_call?.name ?? m.tool_return]);
  assert.deepEqual(shape(after), shape(before), 'the imported history is the exported one');

  const scrubbed = await exportFile(ag.id, { scrub_messages: true });
  assert.equal(scrubbed.agents[0].messages.length, 0);
});

conformance('import errors', k, async () => {
  let err = await rejects(upload(Buffer.from('{not json')), 'a corrupted file');
  assert.equal(err.status, 400);
  assert.match(err.error?.detail ?? '', /Corrupted agent file format/);
  err = await rejects(upload(Buffer.from('{"name": "legacy"}')), 'a legacy file');
  assert.equal(err.status, 400);
  err = await rejects(upload(Buffer.from('{"agents": [{"id": "agent-0", "block_ids": ["block-9"]}]}')), 'a dangling reference');
  assert.equal(err.status, 422);
  err = await rejects(k.client.agents.exportFile('agent-00000000-0000-4000-8000-000000000000'), 'export of no agent');
  assert.equal(err.status, 404);
});
