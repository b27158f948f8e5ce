// Context-window management through the official SDK: a client's
// summarize and compact, the summary_message and event_message they log,
// the summary in the context window, include_compaction_messages, and
// conversation_search finding a message compacted out of view.

import assert from 'node:assert/strict';
import { setup, conformance, unique } from './harness.js';

const k = setup();

function createAgent(extra = {}) {
  return k.client.agents.create({
    name: unique('compact'),
    model: 'openai/fake-model',
    tools: ['send_message', 'conversation_search'],
    include_base_tools: false,
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
    ...extra,
  });
}

const say = (agentID, text, extra = {}) =>
  k.client.agents.messages.create(agentID, { messages: [{ role: 'user', content: text }], ...extra });

conformance('summarize (agents.messages.compact) and conversations.messages.compact', k, async () => {
  const ag = await createAgent();
  await assert.rejects(k.client.agents.messages.compact(ag.id), (err) => err.status === 400 && /nothing to compact/.test(err.message));
  for (const text of ['hi, I am Ada', 'what is kelp?', 'and sea otters?']) await say(ag.id, text);
  const res = await k.client.agents.messages.compact(ag.id, { compaction_settings: { mode: 'all' } });
  assert.match(res.summary, /^Summary \(\d+ lines\)/, 'fake-llm summarised');
  assert.ok(res.num_messages_after < res.num_messages_before, JSON.stringify(res));

  // The log shows it: an event_message, then the summary_message.
  const page = await k.client.agents.messages.list(ag.id, { order: 'desc', limit: 2 });
  const [summary, event] = page.items;
  assert.equal(summary.message_type, 'summary_message', JSON.stringify(page.items));
  assert.equal(summary.summary, res.summary);
  assert.equal(event.message_type, 'event_message');
  assert.equal(event.event_type, 'compaction');
  assert.equal(event.event_data.messages_count_before, res.num_messages_before);

  // The context window starts with the summary.
  const cw = await k.client.get(`/v1/agents/${ag.id}/context`);
  assert.ok(cw.summary_memory?.includes(res.summary), JSON.stringify(cw.summary_memory));
  assert.ok(cw.num_tokens_summary_memory > 0);
  assert.equal(cw.context_window_size_max, 32000, 'the window the model list gives');

  // A conversation, and the default one with agent_id.
  const conv = await k.client.conversations.create({ agent_id: ag.id });
  for (const text of ['one', 'two', 'three']) {
    for await (const _ of await k.client.conversations.messages.create(conv.id, { messages: [{ role: 'user', content: text }] }));
  }
  const c = await k.client.conversations.messages.compact(conv.id, { compaction_settings: { mode: 'all' } });
  assert.ok(c.num_messages_after < c.num_messages_before, JSON.stringify(c));
  const retrieved = await k.client.conversations.retrieve(conv.id);
  assert.ok(retrieved.in_context_message_ids.length < c.num_messages_before, JSON.stringify(retrieved.in_context_message_ids));
  await say(ag.id, 'four');
  await say(ag.id, 'five');
  const d = await k.client.conversations.messages.compact('default', { agent_id: ag.id });
  assert.ok(d.num_messages_after <= d.num_messages_before, JSON.stringify(d));
});

conformance('a long conversation in a small window: compaction, then conversation_search finds what left view', k, async () => {
  const ag = await createAgent({ context_window_limit: 2000 });
  await say(ag.id, 'my secret word is vermilion');
  const filler = 'the kelp forest sways in the cold current '.repeat(12);
  let shown = null;
  for (let i = 0; i < 40 && !shown; i++) {
    const res = await say(ag.id, `turn ${i}: ${filler}`, { include_compaction_messages: true });
    assert.equal(res.stop_reason.stop_reason, 'end_turn');
    shown = res.messages.find((m) => m.message_type === 'summary_message');
    // Without include_compaction_messages a response never shows one.
  }
  assert.ok(shown, 'no compaction in 40 long turns in a 2,000-token window');
  assert.equal(shown.compaction_stats.trigger, 'post_step_context_check');
  assert.equal(shown.compaction_stats.context_window, 2000);
  const cw = await k.client.get(`/v1/agents/${ag.id}/context`);
  assert.ok(!cw.messages.some((m) => JSON.stringify(m.content).includes('vermilion')), 'the first message is still in view');
  assert.ok(cw.context_window_size_current <= 2000, `context ${cw.context_window_size_current} tokens`);

  const found = await say(ag.id, '@tool conversation_search {"query": "vermilion"}');
  const ret = found.messages.find((m) => m.message_type === 'tool_return_message');
  assert.ok(ret, JSON.stringify(found.messages));
  assert.match(ret.tool_return, /vermilion/);

  // A send without include_compaction_messages hides a compaction.
  for (let i = 0; i < 40; i++) {
    const before = (await k.client.agents.messages.list(ag.id, { limit: 1000 })).items.filter((m) => m.message_type === 'summary_message').length;
    const res = await say(ag.id, `more ${i}: ${filler}`);
    assert.ok(!res.messages.some((m) => m.message_type === 'summary_message' || m.message_type === 'event_message'), JSON.stringify(res.messages));
    const after = (await k.client.agents.messages.list(ag.id, { limit: 1000 })).items.filter((m) => m.message_type === 'summary_message').length;
    if (after > before) return;
  }
  assert.fail('no compaction in 40 more long turns');
});
