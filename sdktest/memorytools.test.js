// Letta's final built-in tool set through the official SDK: the memory
// tools with Letta 0.16.8's argument names and the older aliases, the omni
// memory tool, memory_apply_patch, add-base-tools and the tool types.

import assert from 'node:assert/strict';
import { setup, conformance, unique } from './harness.js';

const k = setup();

async function agentWith(tools) {
  return k.client.agents.create({
    name: unique('mem'),
    model: 'openai/fake-model',
    include_base_tools: false,
    tools,
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
  });
}

async function run(agentID, text) {
  const res = await k.client.agents.messages.create(agentID, { messages: [{ role: 'user', content: text }] });
  const ret = res.messages.find((m) => m.message_type === 'tool_return_message');
  assert.ok(ret, `no tool return in ${JSON.stringify(res.messages)}`);
  return ret;
}

async function human(agentID) {
  return (await k.client.agents.blocks.retrieve('human', { agent_id: agentID })).value;
}

conformance('memory_insert and memory_replace take Letta\'s new_string/old_string and the old names', k, async () => {
  const ag = await agentWith(['memory_insert', 'memory_replace']);
  let ret = await run(ag.id, '@tool memory_insert {"label": "human", "new_string": "Likes tea.", "insert_line": -1}');
  assert.equal(ret.status, 'success', ret.tool_return);
  assert.equal(await human(ag.id), 'Name: Ada\nLikes tea.');
  ret = await run(ag.id, '@tool memory_replace {"label": "human", "old_string": "tea", "new_string": "coffee"}');
  assert.equal(ret.status, 'success', ret.tool_return);
  ret = await run(ag.id, '@tool memory_replace {"label": "human", "old_str": "Ada", "new_str": "Ada Lovelace"}');
  assert.equal(ret.status, 'success', ret.tool_return);
  assert.equal(await human(ag.id), 'Name: Ada Lovelace\nLikes coffee.');
  ret = await run(ag.id, '@tool memory_replace {"label": "human", "old_string": "nothing like this", "new_string": "x"}');
  assert.equal(ret.status, 'error');
  assert.match(ret.tool_return, /does not occur/);
});

conformance('the memory omni tool and memory_apply_patch', k, async () => {
  const ag = await agentWith(['memory', 'memory_apply_patch']);
  let ret = await run(ag.id, '@tool memory {"command": "create", "path": "/memories/plans", "description": "What we plan", "file_text": "walk"}');
  assert.equal(ret.status, 'success', ret.tool_return);
  ret = await run(ag.id, '@tool memory_apply_patch {"label": "plans", "patch": "@@\\n-walk\\n+walk the dog\\n"}');
  assert.equal(ret.status, 'success', ret.tool_return);
  const plans = await k.client.agents.blocks.retrieve('plans', { agent_id: ag.id });
  assert.equal(plans.value, 'walk the dog');
  assert.equal(plans.description, 'What we plan');
  ret = await run(ag.id, '@tool memory {"command": "delete", "path": "/memories/plans"}');
  assert.equal(ret.status, 'success', ret.tool_return);
  await assert.rejects(k.client.agents.blocks.retrieve('plans', { agent_id: ag.id }), (err) => err.status === 404);
});

conformance('add-base-tools lists the built-in tools with Letta\'s tool types', k, async () => {
  // The 1.12 SDK has no method for it (letta-code calls it directly).
  const tools = await k.client.post('/v1/tools/add-base-tools');
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  for (const name of ['send_message', 'memory_insert', 'memory_replace', 'memory_rethink', 'memory_finish_edits', 'memory',
    'memory_apply_patch', 'core_memory_append', 'core_memory_replace', 'conversation_search', 'archival_memory_insert',
    'archival_memory_search', 'fetch_webpage', 'web_search']) {
    assert.ok(byName[name], `add-base-tools lacks ${name}`);
  }
  assert.equal(byName.web_search.tool_type, 'letta_builtin');
  assert.equal(byName.memory_insert.tool_type, 'letta_memory_core');
  assert.equal(byName.send_message.tool_type, 'letta_core');
  const params = byName.memory_insert.json_schema.parameters.properties;
  assert.ok(params.new_string && params.insert_line && params.label, JSON.stringify(params));
  // letta-code's create: the web tools by name, no base tools.
  const ag = await agentWith(['web_search', 'fetch_webpage']);
  const full = await k.client.agents.retrieve(ag.id, { include: ['agent.tools'] });
  assert.deepEqual(full.tools.map((t) => t.name).sort(), ['fetch_webpage', 'web_search']);
});
