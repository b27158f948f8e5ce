// Agents' relationships (`include`) as the 1.x SDK sees them, and
// standalone blocks attached to and detached from an agent.

import assert from 'node:assert/strict';
import Letta from '@letta-ai/letta-client';
import { setup, conformance, unique, rejects } from './harness.js';

const k = setup();

const MODEL = 'openai/fake-model';

function createAgent(extra = {}) {
  return k.client.agents.create({
    name: unique('inc'),
    model: MODEL,
    memory_blocks: [
      { label: 'human', value: 'Name: Ada' },
      { label: 'persona', value: 'I am a helpful assistant.' },
    ],
    ...extra,
  });
}

conformance('agents.retrieve and agents.list return only the relationships include names', k, async () => {
  const tag = unique('tag');
  const ag = await createAgent({ tags: [tag] });
  // Create answers with every relationship.
  assert.equal(ag.memory.blocks.length, 2);
  assert.ok(ag.tools.length > 0);
  assert.deepEqual(ag.tags, [tag]);

  // Letta (0.13 and later) sends a 1.x SDK no relationship it did not ask for.
  const bare = await k.client.agents.retrieve(ag.id);
  assert.equal(bare.id, ag.id);
  assert.equal(bare.name, ag.name);
  assert.deepEqual(bare.memory.blocks, [], 'memory.blocks without include');
  assert.deepEqual(bare.blocks, [], 'blocks without include');
  assert.deepEqual(bare.tools, [], 'tools without include');
  assert.deepEqual(bare.tags, [], 'tags without include');

  const withBlocks = await k.client.agents.retrieve(ag.id, { include: ['agent.blocks'] });
  assert.deepEqual(withBlocks.memory.blocks.map((b) => b.label), ['human', 'persona']);
  assert.deepEqual(withBlocks.blocks.map((b) => b.value), ['Name: Ada', 'I am a helpful assistant.']);
  assert.deepEqual(withBlocks.tools, []);

  const toolsAndTags = await k.client.agents.retrieve(ag.id, { include: ['agent.tools', 'agent.tags'] });
  assert.deepEqual(toolsAndTags.tags, [tag]);
  assert.deepEqual(
    toolsAndTags.tools.map((t) => t.name).sort(),
    ag.tools.map((t) => t.name).sort(),
    'the same tools as at create',
  );
  assert.deepEqual(toolsAndTags.memory.blocks, []);

  // Relationships Kelpie does not have are accepted, and empty.
  const others = await k.client.agents.retrieve(ag.id, {
    include: ['agent.sources', 'agent.identities', 'agent.secrets', 'agent.managed_group', 'agent.pending_approval'],
  });
  assert.deepEqual(others.sources, []);
  assert.ok(!others.pending_approval, 'nothing waits for approval');

  // The list filters on tags it does not return, and shapes like retrieve.
  const listed = (await k.client.agents.list({ tags: [tag], include: ['agent.blocks'] })).items;
  assert.deepEqual(listed.map((a) => a.id), [ag.id]);
  assert.equal(listed[0].memory.blocks.length, 2);
  assert.deepEqual(listed[0].tags, []);

  const err = await rejects(k.client.agents.retrieve(ag.id, { include: ['agent.everything'] }), 'an unknown include value');
  assert.ok(err instanceof Letta.UnprocessableEntityError, `UnprocessableEntityError, got ${err}`);
  assert.deepEqual(err.error.detail[0].loc, ['query', 'include', 0]);
});

conformance('blocks attach and detach through the SDK', k, async () => {
  const ag = await createAgent();
  const block = await k.client.blocks.create({ label: unique('project'), value: 'Kelpie speaks Letta.', limit: 200 });

  const attached = await k.client.agents.blocks.attach(block.id, { agent_id: ag.id });
  assert.equal(attached.id, ag.id);
  const copy = attached.memory.blocks.find((b) => b.id === block.id);
  assert.equal(copy?.value, 'Kelpie speaks Letta.', 'attach answers with the agent, the block among its blocks');
  assert.equal(copy.label, block.label);

  const labels = (await k.client.agents.blocks.list(ag.id, { order: 'asc' })).items.map((b) => b.label);
  assert.deepEqual(labels, ['human', 'persona', block.label]);
  assert.equal((await k.client.agents.blocks.retrieve(block.label, { agent_id: ag.id })).value, 'Kelpie speaks Letta.');

  // Attaching it again changes nothing.
  const again = await k.client.agents.blocks.attach(block.id, { agent_id: ag.id });
  assert.equal(again.memory.blocks.filter((b) => b.id === block.id).length, 1);

  const detached = await k.client.agents.blocks.detach(block.id, { agent_id: ag.id });
  assert.ok(!detached.memory.blocks.some((b) => b.id === block.id), 'detach answers with the agent without the block');
  const after = (await k.client.agents.blocks.list(ag.id, { order: 'asc' })).items.map((b) => b.label);
  assert.deepEqual(after, ['human', 'persona']);
  assert.equal((await k.client.blocks.retrieve(block.id)).value, 'Kelpie speaks Letta.', 'the standalone block remains');

  const err = await rejects(k.client.agents.blocks.detach(block.id, { agent_id: ag.id }), 'detaching a detached block');
  assert.ok(err instanceof Letta.NotFoundError, `NotFoundError, got ${err}`);
});

conformance('a block attached to two agents is shared: an edit through client.blocks.update is seen by both', k, async () => {
  const [a, b] = [await createAgent(), await createAgent()];
  const block = await k.client.blocks.create({ label: unique('team'), value: 'Team: Ada', limit: 200 });
  await k.client.agents.blocks.attach(block.id, { agent_id: a.id });
  await k.client.agents.blocks.attach(block.id, { agent_id: b.id });

  const updated = await k.client.blocks.update(block.id, { value: 'Team: Ada, Grace' });
  assert.equal(updated.value, 'Team: Ada, Grace');
  assert.equal((await k.client.blocks.retrieve(block.id)).value, 'Team: Ada, Grace');
  for (const ag of [a, b]) {
    const got = await k.client.agents.retrieve(ag.id, { include: ['agent.blocks'] });
    assert.equal(got.memory.blocks.find((x) => x.id === block.id)?.value, 'Team: Ada, Grace', `agent ${ag.name} sees the edit`);
    assert.equal((await k.client.agents.blocks.retrieve(block.label, { agent_id: ag.id })).value, 'Team: Ada, Grace');
  }

  // An edit through one agent's core memory is the block's, for both.
  await k.client.agents.blocks.update(block.label, { agent_id: a.id, value: 'Team: Ada, Grace, Linus' });
  assert.equal((await k.client.blocks.retrieve(block.id)).value, 'Team: Ada, Grace, Linus');
  assert.equal((await k.client.agents.blocks.retrieve(block.label, { agent_id: b.id })).value, 'Team: Ada, Grace, Linus');

  // Detaching from one leaves the other attached; deleting the block
  // detaches it from the other.
  await k.client.agents.blocks.detach(block.id, { agent_id: a.id });
  assert.equal((await k.client.agents.blocks.retrieve(block.label, { agent_id: b.id })).value, 'Team: Ada, Grace, Linus');
  await k.client.blocks.delete(block.id);
  const left = await k.client.agents.retrieve(b.id, { include: ['agent.blocks'] });
  assert.deepEqual(left.memory.blocks.map((x) => x.label), ['human', 'persona']);
});
