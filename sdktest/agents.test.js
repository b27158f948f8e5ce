// Agents: CRUD, list pagination and filters, core-memory blocks by label,
// models and health; tools CRUD, and tools shared by reference among agents.

import assert from 'node:assert/strict';
import Letta from '@letta-ai/letta-client';
import { setup, conformance, unique, rejects, collect } from './harness.js';

// Features not served yet: the tests are written and skipped, so that they
// are counted and visible. Remove the skip when the feature lands.

const k = setup();

const MODEL = 'openai/fake-model';

function createAgent(extra = {}) {
  return k.client.agents.create({
    name: unique('agent'),
    model: MODEL,
    memory_blocks: [
      { label: 'human', value: 'Name: Ada', limit: 200 },
      { label: 'persona', value: 'I am a helpful assistant.' },
    ],
    ...extra,
  });
}

conformance('health and models', k, async () => {
  const h = await k.client.health();
  assert.equal(h.status, 'ok');
  assert.equal(h.version, '0.16.8', 'health reports the Letta API version Kelpie implements');
  const models = await k.client.models.list();
  assert.ok(Array.isArray(models), 'models.list returns an array');
  assert.ok(
    models.some((m) => m.handle === MODEL),
    `models lists ${MODEL}: ${JSON.stringify(models.map((m) => m.handle))}`,
  );
});

conformance('agent create, retrieve, update, delete', k, async () => {
  const name = unique('crud');
  const created = await k.client.agents.create({
    name,
    model: MODEL,
    system: 'You are a test agent.',
    description: 'made by the SDK conformance suite',
    tags: ['sdktest', 'crud'],
    metadata: { suite: 'sdktest' },
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
    tools: ['core_memory_append'],
  });
  assert.match(created.id, /^agent-[0-9a-f-]{36}$/);
  assert.equal(created.name, name);
  assert.equal(created.system, 'You are a test agent.');
  assert.equal(created.description, 'made by the SDK conformance suite');
  assert.deepEqual([...created.tags].sort(), ['crud', 'sdktest']);
  assert.deepEqual(created.metadata, { suite: 'sdktest' });
  assert.equal(created.model, MODEL);
  assert.equal(created.llm_config.handle, MODEL);
  const human = created.memory.blocks.find((b) => b.label === 'human');
  assert.equal(human?.value, 'Name: Ada');
  const toolNames = created.tools.map((t) => t.name);
  assert.ok(toolNames.includes('core_memory_append'), `the tool named at create is attached: ${toolNames}`);
  assert.ok(toolNames.length > 1, `base tools are attached too: ${toolNames}`);

  const got = await k.client.agents.retrieve(created.id);
  assert.equal(got.id, created.id);
  assert.equal(got.name, name);
  assert.equal(got.created_at, created.created_at);

  const renamed = unique('renamed');
  const updated = await k.client.agents.update(created.id, {
    name: renamed,
    description: 'updated',
    tags: ['sdktest', 'updated'],
  });
  assert.equal(updated.id, created.id);
  assert.equal(updated.name, renamed);
  assert.equal(updated.description, 'updated');
  assert.deepEqual([...updated.tags].sort(), ['sdktest', 'updated']);
  assert.equal(updated.system, 'You are a test agent.', 'fields not sent are kept');
  assert.equal((await k.client.agents.retrieve(created.id)).name, renamed, 'update is visible to retrieve');

  await k.client.agents.delete(created.id);
  const err = await rejects(k.client.agents.retrieve(created.id), 'retrieve after delete');
  assert.ok(err instanceof Letta.NotFoundError, `retrieve after delete throws NotFoundError, got ${err}`);
  const err2 = await rejects(k.client.agents.delete(created.id), 'second delete');
  assert.equal(err2.status, 404);
});

conformance('agent list: limit, after, order and auto-pagination', k, async () => {
  const tag = unique('page');
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await createAgent({ tags: [tag] })).id);

  const asc = await k.client.agents.list({ tags: [tag], order: 'asc', limit: 10 });
  assert.deepEqual(asc.items.map((a) => a.id), ids, 'order=asc lists oldest first');
  const desc = await k.client.agents.list({ tags: [tag], order: 'desc', limit: 10 });
  assert.deepEqual(desc.items.map((a) => a.id), [...ids].reverse(), 'order=desc lists newest first');
  const dflt = await k.client.agents.list({ tags: [tag], limit: 10 });
  assert.deepEqual(dflt.items.map((a) => a.id), [...ids].reverse(), 'the default order is desc');

  const p1 = await k.client.agents.list({ tags: [tag], order: 'asc', limit: 2 });
  assert.deepEqual(p1.items.map((a) => a.id), ids.slice(0, 2));
  const p2 = await k.client.agents.list({ tags: [tag], order: 'asc', limit: 2, after: ids[1] });
  assert.deepEqual(p2.items.map((a) => a.id), ids.slice(2, 4));
  assert.ok(p2.hasNextPage());
  const p3 = await p2.getNextPage();
  assert.deepEqual(p3.items.map((a) => a.id), ids.slice(4));

  const before = await k.client.agents.list({ tags: [tag], order: 'asc', limit: 2, before: ids[4] });
  // Agents older than the cursor, in list order (nearest or oldest: the
  // API does not pin down which).
  const pos = before.items.map((a) => ids.indexOf(a.id));
  assert.equal(pos.length, 2, 'before: limit 2');
  assert.ok(pos.every((p) => p >= 0 && p < 4), `before: only agents before the cursor, got positions ${pos}`);
  assert.ok(pos[0] < pos[1], 'before: in list order');

  const all = await collect(k.client.agents.list({ tags: [tag], order: 'desc', limit: 2 }));
  assert.deepEqual(all.map((a) => a.id), [...ids].reverse(), 'auto-pagination visits every agent once');
});

conformance('agent list filters: tags and name', k, async () => {
  const t1 = unique('tag');
  const t2 = unique('tag');
  const a = await createAgent({ tags: [t1] });
  const b = await createAgent({ tags: [t1, t2] });
  const c = await createAgent({ tags: [t2] });

  const ids = async (q) => (await k.client.agents.list({ order: 'asc', limit: 50, ...q })).items.map((x) => x.id);
  assert.deepEqual(await ids({ tags: [t1] }), [a.id, b.id], 'tags: any of');
  assert.deepEqual(await ids({ tags: [t1, t2] }), [a.id, b.id, c.id], 'several tags: any of');
  assert.deepEqual(await ids({ tags: [t1, t2], match_all_tags: true }), [b.id], 'match_all_tags: all of');
  assert.deepEqual(await ids({ name: b.name }), [b.id], 'name: exact');
  assert.deepEqual(await ids({ name: b.name, tags: [t2] }), [b.id], 'name and tags');
  assert.deepEqual(await ids({ name: unique('nobody') }), [], 'unknown name: empty list');
});

conformance('core-memory blocks by label: retrieve and update', k, async () => {
  const ag = await createAgent();
  const human = await k.client.agents.blocks.retrieve('human', { agent_id: ag.id });
  assert.equal(human.label, 'human');
  assert.equal(human.value, 'Name: Ada');
  assert.equal(human.limit, 200);

  const updated = await k.client.agents.blocks.update('human', { agent_id: ag.id, value: 'Name: Ada Lovelace' });
  assert.equal(updated.label, 'human');
  assert.equal(updated.value, 'Name: Ada Lovelace');
  assert.equal((await k.client.agents.blocks.retrieve('human', { agent_id: ag.id })).value, 'Name: Ada Lovelace');
  // The 1.x SDK gets an agent's blocks only when it asks for them, as from
  // Letta (include.test.js).
  const agent = await k.client.agents.retrieve(ag.id, { include: ['agent.blocks'] });
  assert.equal(agent.memory.blocks.find((b) => b.label === 'human')?.value, 'Name: Ada Lovelace', 'the agent shows the edit');
  const persona = agent.memory.blocks.find((b) => b.label === 'persona');
  assert.equal(persona?.value, 'I am a helpful assistant.', 'other blocks are untouched');

  const page = await k.client.agents.blocks.list(ag.id);
  assert.deepEqual(page.items.map((b) => b.label).sort(), ['human', 'persona']);

  const missing = await rejects(k.client.agents.blocks.retrieve('nope', { agent_id: ag.id }), 'unknown label');
  assert.ok(missing instanceof Letta.NotFoundError, `unknown label: NotFoundError, got ${missing}`);
});

conformance(
  'core-memory blocks list: limit, after, order and auto-pagination',
  k,
  async () => {
    const ag = await createAgent({
      memory_blocks: ['a', 'b', 'c', 'd'].map((label) => ({ label, value: `block ${label}` })),
    });
    const all = (await k.client.agents.blocks.list(ag.id, { order: 'asc' })).items;
    assert.equal(all.length, 4);
    const p1 = await k.client.agents.blocks.list(ag.id, { order: 'asc', limit: 2 });
    assert.deepEqual(p1.items.map((b) => b.id), all.slice(0, 2).map((b) => b.id), 'limit=2');
    const p2 = await k.client.agents.blocks.list(ag.id, { order: 'asc', limit: 2, after: all[1].id });
    assert.deepEqual(p2.items.map((b) => b.id), all.slice(2).map((b) => b.id), 'after');
    const desc = await k.client.agents.blocks.list(ag.id, { order: 'desc' });
    assert.deepEqual(desc.items.map((b) => b.id), all.map((b) => b.id).reverse(), 'order=desc');
    const dflt = await k.client.agents.blocks.list(ag.id);
    assert.deepEqual(dflt.items.map((b) => b.id), all.map((b) => b.id).reverse(), 'the default order is desc');
    const paged = await collect(k.client.agents.blocks.list(ag.id, { order: 'asc', limit: 3 }));
    assert.deepEqual(paged.map((b) => b.id), all.map((b) => b.id), 'auto-pagination');
  },
);

conformance(
  'core-memory block update over its limit is refused',
  k,
  async () => {
  const ag = await createAgent();
  const err = await rejects(
    k.client.agents.blocks.update('human', { agent_id: ag.id, value: 'x'.repeat(201) }),
    'value over the 200-character limit',
  );
  assert.ok(err instanceof Letta.APIError, `APIError, got ${err}`);
  assert.ok([400, 422].includes(err.status), `status 400 or 422, got ${err.status}`);
  assert.match(JSON.stringify(err.error), /limit/i, 'the error mentions the limit');
  const human = await k.client.agents.blocks.retrieve('human', { agent_id: ag.id });
  assert.equal(human.value, 'Name: Ada', 'the block is unchanged');
});

// ---- tools ----

conformance('tools CRUD: create, retrieve, list, update, delete', k, async () => {
  const name = `sdktest_tool_${process.pid}`;
  const source = `def ${name}(x: int) -> int:\n    """Double x.\n\n    Args:\n        x: the number\n    """\n    return 2 * x\n`;
  const tool = await k.client.tools.create({ source_code: source, tags: ['sdktest'] });
  assert.match(tool.id, /^tool-[0-9a-f-]{36}$/);
  assert.equal(tool.name, name);

  assert.equal((await k.client.tools.retrieve(tool.id)).name, name);
  const listed = (await k.client.tools.list({ name })).items;
  assert.deepEqual(listed.map((t) => t.id), [tool.id]);

  const updated = await k.client.tools.update(tool.id, { description: 'Doubles a number.' });
  assert.equal(updated.description, 'Doubles a number.');

  const ag = await createAgent();
  const attached = await k.client.agents.tools.attach(tool.id, { agent_id: ag.id });
  assert.ok(attached.tools.some((t) => t.id === tool.id));
  const agentTools = (await k.client.agents.tools.list(ag.id)).items;
  assert.ok(agentTools.some((t) => t.id === tool.id));
  await k.client.agents.tools.detach(tool.id, { agent_id: ag.id });

  await k.client.tools.delete(tool.id);
  const err = await rejects(k.client.tools.retrieve(tool.id), 'retrieve after delete');
  assert.ok(err instanceof Letta.NotFoundError, `NotFoundError, got ${err}`);
});

conformance('tools.update reaches every agent that has the tool; tools.delete detaches it', k, async () => {
  const name = `sdktest_shared_tool_${process.pid}`;
  const source = `def ${name}(city: str) -> str:\n    """Look up a city's population.\n\n    Args:\n        city: the city\n    """\n    raise NotImplementedError\n`;
  const tool = await k.client.tools.create({ source_code: source });
  const agents = [await createAgent(), await createAgent()];
  for (const ag of agents) {
    await k.client.agents.tools.attach(tool.id, { agent_id: ag.id });
  }

  // What an agent shows of the tool: its tools list, and its tools
  // relationship (a 1.x SDK client must ask for it with include).
  async function shown(ag) {
    const listed = (await k.client.agents.tools.list(ag.id)).items.filter((t) => t.id === tool.id);
    const retrieved = await k.client.agents.retrieve(ag.id, { include: ['agent.tools'] });
    const related = retrieved.tools.filter((t) => t.id === tool.id);
    assert.equal(listed.length, related.length, 'the tools list and the relationship agree');
    return related.map((t) => ({ description: t.description, params: Object.keys(t.json_schema.parameters.properties) }));
  }

  await k.client.tools.update(tool.id, {
    description: 'Population, newest census.',
    json_schema: {
      name,
      description: 'Population, newest census.',
      parameters: { type: 'object', properties: { city: { type: 'string' }, year: { type: 'integer' } }, required: ['city'] },
    },
  });
  for (const ag of agents) {
    assert.deepEqual(await shown(ag), [{ description: 'Population, newest census.', params: ['city', 'year'] }], `agent ${ag.id}`);
  }

  await k.client.tools.delete(tool.id);
  for (const ag of agents) {
    assert.deepEqual(await shown(ag), [], `agent ${ag.id} after the delete`);
  }
});
