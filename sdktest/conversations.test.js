// Conversations through the official SDK: an agent's conversations run
// concurrently, a busy one answers 409, isolated blocks stay per
// conversation, fork copies, list/retrieve/update/delete, streaming and
// stream resumption, cancel.

import assert from 'node:assert/strict';
import { setup, conformance, unique, collect } from './harness.js';

const k = setup();

function createAgent() {
  return k.client.agents.create({
    name: unique('conv'),
    model: 'openai/fake-model',
    agent_type: 'memgpt_v2_agent',
    memory_blocks: [
      { label: 'human', value: 'Name: unknown' },
      { label: 'persona', value: 'helpful' },
    ],
  });
}

// send streams one user message to a conversation (the SDK's default) and
// returns the streamed chunks.
async function send(convID, text, extra = {}) {
  const stream = await k.client.conversations.messages.create(convID, { messages: [{ role: 'user', content: text }], ...extra });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const texts = (chunks) => chunks.filter((c) => c.message_type === 'assistant_message' || c.message_type === 'tool_call_message')
  .map((c) => c.content ?? c.tool_call?.arguments ?? '');

conformance('conversations: two of one agent run at once; a busy one answers 409', k, async () => {
  const ag = await createAgent();
  const a = await k.client.conversations.create({ agent_id: ag.id });
  const b = await k.client.conversations.create({ agent_id: ag.id });
  assert.match(a.id, /^conv-/);
  assert.equal(a.agent_id, ag.id);

  const started = Date.now();
  const slowA = send(a.id, '@sleep 1500ms\nslow in A');
  const slowB = send(b.id, '@sleep 1500ms\nslow in B');
  // While A's run is active, another send to A is refused naming the run.
  await new Promise((r) => setTimeout(r, 300));
  await assert.rejects(
    k.client.conversations.messages.create(a.id, { messages: [{ role: 'user', content: 'again' }], streaming: false }, { maxRetries: 0 }),
    (err) => err.status === 409 && /run-/.test(JSON.stringify(err.error ?? err.message)),
  );
  const [ca, cb] = await Promise.all([slowA, slowB]);
  const elapsed = Date.now() - started;
  assert.ok(texts(ca).join(' ').includes('slow in A'), JSON.stringify(ca));
  assert.ok(texts(cb).join(' ').includes('slow in B'), JSON.stringify(cb));
  // Both slept 1.5 s; run one after the other they would take 3 s.
  assert.ok(elapsed < 2900, `two conversations ran one after the other (${elapsed} ms)`);

  const msgsA = await collect(k.client.conversations.messages.list(a.id, { order: 'asc' }));
  const msgsB = await collect(k.client.conversations.messages.list(b.id, { order: 'asc' }));
  const bodies = (ms) => JSON.stringify(ms.map((m) => m.content));
  assert.ok(bodies(msgsA).includes('slow in A') && !bodies(msgsA).includes('slow in B'), bodies(msgsA));
  assert.ok(bodies(msgsB).includes('slow in B') && !bodies(msgsB).includes('slow in A'), bodies(msgsB));

  const runs = await collect(k.client.runs.list({ agent_id: ag.id, conversation_id: a.id }));
  assert.ok(runs.length >= 1 && runs.every((r) => r.conversation_id === a.id), JSON.stringify(runs));
});

conformance('conversations: isolated blocks, fork, list, update, delete', k, async () => {
  const ag = await createAgent();
  const a = await k.client.conversations.create({ agent_id: ag.id, summary: 'alpha', isolated_block_labels: ['human'] });
  assert.equal(a.isolated_block_ids.length, 1);
  await send(a.id, '@tool memory_rethink {"label": "human", "new_memory": "Name: Ada (only in A)"}\nremember');
  const promptA = await k.client.conversations.recompile(a.id, {});
  assert.ok(promptA.includes('only in A'), promptA);
  const human = await k.client.agents.blocks.retrieve('human', { agent_id: ag.id });
  assert.equal(human.value, 'Name: unknown', 'the agent\'s own block is untouched');

  const fork = await k.client.conversations.fork(a.id, {});
  assert.notEqual(fork.id, a.id);
  assert.notEqual(fork.isolated_block_ids[0], a.isolated_block_ids[0]);
  assert.ok((await k.client.conversations.recompile(fork.id, {})).includes('only in A'));
  const forked = await collect(k.client.conversations.messages.list(fork.id, { order: 'asc' }));
  assert.ok(JSON.stringify(forked).includes('remember'), JSON.stringify(forked));

  const listed = await k.client.conversations.list({ agent_id: ag.id, order: 'asc' });
  assert.deepEqual(listed.map((c) => c.id), [a.id, fork.id]);
  const got = await k.client.conversations.retrieve(a.id);
  assert.equal(got.summary, 'alpha');
  assert.ok(got.in_context_message_ids.length > 0);
  const upd = await k.client.conversations.update(fork.id, { summary: 'forked' });
  assert.equal(upd.summary, 'forked');
  await k.client.conversations.delete(fork.id);
  await assert.rejects(k.client.conversations.retrieve(fork.id), (err) => err.status === 404);
});

conformance('conversations: resume a stream, cancel, the default conversation', k, async () => {
  const ag = await createAgent();
  const conv = await k.client.conversations.create({ agent_id: ag.id });
  const first = await send(conv.id, 'hello there');
  assert.ok(texts(first).join(' ').includes('hello there'));
  const resumed = await k.client.conversations.messages.stream(conv.id, {});
  const again = [];
  for await (const chunk of resumed) again.push(chunk);
  assert.ok(JSON.stringify(again).includes('hello there'), JSON.stringify(again));

  // Cancel a slow run of the conversation.
  const slow = send(conv.id, '@sleep 3s\nslow');
  await new Promise((r) => setTimeout(r, 300));
  const cancelled = await k.client.conversations.cancel(conv.id, {});
  assert.equal(Object.values(cancelled)[0], 'cancelled', JSON.stringify(cancelled));
  await slow.catch(() => {});

  // The agent's default conversation: agent_id with "default".
  const stream = await k.client.conversations.messages.create('default', { agent_id: ag.id, messages: [{ role: 'user', content: 'in default' }] });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(texts(chunks).join(' ').includes('in default'));
  const defaults = await collect(k.client.agents.messages.list(ag.id, { order: 'asc' }));
  const shown = JSON.stringify(defaults.map((m) => m.content));
  assert.ok(shown.includes('in default') && !shown.includes('hello there'), shown);
});
