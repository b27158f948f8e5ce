// Runs: asynchronous sends, run lookups, a busy agent (409) and cancel.

import assert from 'node:assert/strict';
import Letta from '@letta-ai/letta-client';
import { setup, conformance, unique, poll, rejects, collect } from './harness.js';

const k = setup();

function createAgent() {
  return k.client.agents.create({
    name: unique('run'),
    model: 'openai/fake-model',
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
  });
}

function waitStatus(runID, want) {
  return poll(`run ${runID} to be ${want.join(' or ')}`, async () => {
    const run = await k.client.runs.retrieve(runID);
    return { done: want.includes(run.status), value: run };
  });
}

const TERMINAL = ['completed', 'failed', 'cancelled'];

conformance('async send returns a run that completes; run messages and usage', k, async () => {
  const ag = await createAgent();
  const run = await k.client.agents.messages.createAsync(ag.id, {
    messages: [{ role: 'user', content: 'in the background' }],
  });
  assert.match(run.id, /^run-[0-9a-f-]{36}$/);
  assert.equal(run.agent_id, ag.id);
  assert.ok(['created', 'running', 'completed'].includes(run.status), `initial status ${run.status}`);
  assert.equal(run.background, true);

  const done = await waitStatus(run.id, TERMINAL);
  assert.equal(done.status, 'completed', `run ended ${done.status}: ${JSON.stringify(done)}`);
  assert.equal(done.stop_reason, 'end_turn');
  assert.ok(done.completed_at, 'completed_at is set');

  const msgs = (await k.client.runs.messages.list(run.id)).items;
  assert.equal(msgs[0]?.message_type, 'user_message', 'run messages are oldest first by default');
  assert.equal(msgs[0].content, 'in the background');
  assert.equal(msgs.find((m) => m.message_type === 'assistant_message')?.content, 'Echo: in the background');
  assert.ok(msgs.every((m) => m.run_id === run.id), 'every message belongs to the run');

  // The same messages are in the agent's log.
  const log = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items.map((m) => m.id);
  for (const m of msgs) assert.ok(log.includes(m.id), `${m.id} is in the agent's message list`);

  const usage = await k.client.runs.usage.retrieve(run.id);
  assert.ok(usage.total_tokens > 0, `usage ${JSON.stringify(usage)}`);

  const listed = (await k.client.runs.list({ agent_id: ag.id })).items;
  assert.ok(listed.some((r) => r.id === run.id), 'runs.list({agent_id}) lists the run');
});

conformance(
  'run messages list pages with limit and after',
  k,
  async () => {
    const ag = await createAgent();
    const res = await k.client.agents.messages.create(ag.id, {
      messages: [{ role: 'user', content: '@tool core_memory_append {"label": "human", "content": "x"}' }],
    });
    const runID = res.usage.run_ids[0];
    const all = (await k.client.runs.messages.list(runID, { order: 'asc' })).items;
    assert.ok(all.length >= 3, `run has ${all.length} messages`);
    const p1 = await k.client.runs.messages.list(runID, { order: 'asc', limit: 2 });
    assert.deepEqual(p1.items.map((m) => m.id), all.slice(0, 2).map((m) => m.id), 'limit=2');
    const paged = await collect(k.client.runs.messages.list(runID, { order: 'asc', limit: 2 }));
    assert.deepEqual(paged.map((m) => m.id), all.map((m) => m.id), 'auto-pagination');
  },
);

conformance(
  'runs list: order, limit, after and auto-pagination',
  k,
  async () => {
    const ag = await createAgent();
    const ids = [];
    for (const text of ['r1', 'r2', 'r3']) {
      const res = await k.client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: text }] });
      ids.push(res.usage.run_ids[0]);
    }
    const asc = (await k.client.runs.list({ agent_id: ag.id, order: 'asc' })).items.map((r) => r.id);
    assert.deepEqual(asc, ids, 'order=asc: oldest first');
    const desc = (await k.client.runs.list({ agent_id: ag.id, order: 'desc' })).items.map((r) => r.id);
    assert.deepEqual(desc, [...ids].reverse(), 'order=desc: newest first');
    const p2 = await k.client.runs.list({ agent_id: ag.id, order: 'asc', limit: 1, after: ids[0] });
    assert.deepEqual(p2.items.map((r) => r.id), [ids[1]], 'after');
    const paged = await collect(k.client.runs.list({ agent_id: ag.id, order: 'asc', limit: 2 }));
    assert.deepEqual(paged.map((r) => r.id), ids, 'auto-pagination');
  },
);

conformance('a busy agent answers 409 naming the run, and cancel ends the run', k, async () => {
  const ag = await createAgent();
  const slow = await k.client.agents.messages.createAsync(ag.id, {
    messages: [{ role: 'user', content: '@sleep 2s\ntake your time' }],
  });
  await waitStatus(slow.id, ['running', ...TERMINAL]);

  const err = await rejects(
    k.client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: 'are you there?' }] }),
    'a send while a run is active',
  );
  assert.ok(err instanceof Letta.ConflictError, `ConflictError, got ${err}`);
  assert.equal(err.status, 409);
  assert.ok(JSON.stringify(err.error).includes(slow.id), `the error names the active run ${slow.id}: ${JSON.stringify(err.error)}`);

  const errAsync = await rejects(
    k.client.agents.messages.createAsync(ag.id, { messages: [{ role: 'user', content: 'and now?' }] }),
    'an async send while a run is active',
  );
  assert.equal(errAsync.status, 409);

  const cancelled = await k.client.agents.messages.cancel(ag.id);
  assert.ok(slow.id in cancelled, `cancel names the run: ${JSON.stringify(cancelled)}`);
  const ended = await waitStatus(slow.id, TERMINAL);
  assert.equal(ended.status, 'cancelled');

  // The agent takes messages again, and the cancelled message was not
  // answered.
  const res = await k.client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: 'hello again' }] });
  assert.equal(res.messages.find((m) => m.message_type === 'assistant_message')?.content, 'Echo: hello again');
  const log = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items;
  assert.ok(!log.some((m) => m.message_type === 'assistant_message' && m.content === 'Echo: take your time'));
  assert.ok(!log.some((m) => m.message_type === 'user_message' && m.content === 'are you there?'), 'the refused send left nothing');
});

conformance('cancel with run_ids cancels only those runs', k, async () => {
  const ag = await createAgent();
  const slow = await k.client.agents.messages.createAsync(ag.id, {
    messages: [{ role: 'user', content: '@sleep 2s\nslow' }],
  });
  await waitStatus(slow.id, ['running', ...TERMINAL]);
  const other = await k.client.agents.messages.cancel(ag.id, { run_ids: ['run-00000000-0000-4000-8000-000000000000'] });
  assert.ok(!(slow.id in other), `a cancel naming another run leaves ${slow.id} alone: ${JSON.stringify(other)}`);
  const mine = await k.client.agents.messages.cancel(ag.id, { run_ids: [slow.id] });
  assert.ok(slow.id in mine, `cancel names the run: ${JSON.stringify(mine)}`);
  assert.equal((await waitStatus(slow.id, TERMINAL)).status, 'cancelled');
});

conformance('unknown run: NotFoundError', k, async () => {
  const err = await rejects(k.client.runs.retrieve('run-00000000-0000-4000-8000-000000000000'), 'unknown run');
  assert.ok(err instanceof Letta.NotFoundError, `NotFoundError, got ${err}`);
});
