// Messages: send (JSON), tool calls steered by the fake model's
// directives, the message list and its pagination, otid deduplication;
// messages by ID and message search; recompile; streaming (not implemented yet: skipped).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setup, conformance, unique, collect } from './harness.js';

// Features not served yet: the tests are written and skipped, so that they
// are counted and visible. Remove the skip when the feature lands.

const k = setup();

function createAgent(extra = {}) {
  return k.client.agents.create({
    name: unique('msg'),
    model: 'openai/fake-model',
    // Letta v1 agents get memory_insert/memory_replace by default; the
    // tests call the classic core_memory_append, attached by name.
    tools: ['core_memory_append'],
    memory_blocks: [
      { label: 'human', value: 'Name: Ada' },
      { label: 'persona', value: 'I am a helpful assistant.' },
    ],
    ...extra,
  });
}

function send(agentID, text, extra = {}) {
  return k.client.agents.messages.create(agentID, { messages: [{ role: 'user', content: text, ...extra }] });
}

function assertOrderedSubset(got, of, n, what) {
  assert.equal(got.length, n, `${what}: ${n} items`);
  const pos = got.map((id) => of.indexOf(id));
  assert.ok(pos.every((p) => p >= 0), `${what}: only items from ${JSON.stringify(of)}, got ${JSON.stringify(got)}`);
  assert.deepEqual(pos, [...pos].sort((a, b) => a - b), `${what}: in list order`);
}

const types = (msgs) => msgs.map((m) => m.message_type);

conformance('send a message: the model answers, with stop reason and usage', k, async () => {
  const ag = await createAgent();
  const res = await send(ag.id, 'hello there');
  const assistant = res.messages.filter((m) => m.message_type === 'assistant_message');
  assert.equal(assistant.length, 1, `one assistant_message in ${JSON.stringify(types(res.messages))}`);
  assert.equal(assistant[0].content, 'Echo: hello there');
  assert.equal(res.stop_reason.stop_reason, 'end_turn');
  assert.ok(res.usage.step_count >= 1, `step_count ${res.usage.step_count}`);
  assert.ok(res.usage.total_tokens > 0, `total_tokens ${res.usage.total_tokens}`);
  assert.equal(res.usage.run_ids?.length, 1, 'usage names the run');

  // The list has the user message and the answer, oldest first with order=asc.
  const list = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items;
  const user = list.filter((m) => m.message_type === 'user_message');
  assert.equal(user.length, 1, `one user_message in ${JSON.stringify(types(list))}`);
  assert.equal(user[0].content, 'hello there');
  const iu = list.indexOf(user[0]);
  const ia = list.findIndex((m) => m.message_type === 'assistant_message' && m.content === 'Echo: hello there');
  assert.ok(ia > iu, 'the answer comes after the user message');
});

conformance('send with content parts (text) and the input shorthand', k, async () => {
  const ag = await createAgent();
  const parts = await k.client.agents.messages.create(ag.id, {
    messages: [{ role: 'user', content: [{ type: 'text', text: 'in parts' }] }],
  });
  assert.equal(parts.messages.find((m) => m.message_type === 'assistant_message')?.content, 'Echo: in parts');
  const input = await k.client.agents.messages.create(ag.id, { input: 'via input' });
  assert.equal(input.messages.find((m) => m.message_type === 'assistant_message')?.content, 'Echo: via input');
});

conformance('the model calls core_memory_append: tool call, tool return, and the block shows the edit', k, async () => {
  const ag = await createAgent();
  const res = await send(ag.id, '@tool core_memory_append {"label": "human", "content": "Likes tea."}\nremember this');
  const call = res.messages.find((m) => m.message_type === 'tool_call_message');
  const ret = res.messages.find((m) => m.message_type === 'tool_return_message');
  assert.ok(call, `a tool_call_message in ${JSON.stringify(types(res.messages))}`);
  assert.ok(ret, `a tool_return_message in ${JSON.stringify(types(res.messages))}`);
  assert.equal(call.tool_call.name, 'core_memory_append');
  assert.deepEqual(JSON.parse(call.tool_call.arguments), { label: 'human', content: 'Likes tea.' });
  assert.equal(ret.status, 'success');
  assert.equal(ret.tool_call_id, call.tool_call.tool_call_id, 'the return answers the call');
  assert.ok(res.messages.indexOf(ret) > res.messages.indexOf(call), 'return after call');
  assert.equal(res.stop_reason.stop_reason, 'end_turn');

  const human = await k.client.agents.blocks.retrieve('human', { agent_id: ag.id });
  assert.match(human.value, /Name: Ada/);
  assert.match(human.value, /Likes tea\./, 'the block holds the appended text');
  const agent = await k.client.agents.retrieve(ag.id, { include: ['agent.blocks'] });
  assert.match(agent.memory.blocks.find((b) => b.label === 'human').value, /Likes tea\./);

  // The log keeps the call and its return.
  const list = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items;
  assert.ok(list.some((m) => m.message_type === 'tool_call_message' && m.tool_call.name === 'core_memory_append'));
  assert.ok(list.some((m) => m.message_type === 'tool_return_message' && m.tool_call_id === call.tool_call.tool_call_id));
});

conformance('a failing tool call is returned with status error', k, async () => {
  const ag = await createAgent();
  const res = await send(ag.id, '@tool core_memory_append {"label": "no-such-block", "content": "x"}');
  const ret = res.messages.find((m) => m.message_type === 'tool_return_message');
  assert.ok(ret, `a tool_return_message in ${JSON.stringify(types(res.messages))}`);
  assert.equal(ret.status, 'error');
  assert.match(ret.tool_return, /no-such-block/, `the error names the block: ${ret.tool_return}`);
});

conformance('message list: limit, after, before, order and auto-pagination', k, async () => {
  const ag = await createAgent();
  for (const text of ['one', 'two', 'three']) await send(ag.id, text);
  const all = (await k.client.agents.messages.list(ag.id, { order: 'asc', limit: 100 })).items;
  const users = all.filter((m) => m.message_type === 'user_message').map((m) => m.content);
  assert.deepEqual(users, ['one', 'two', 'three'], 'user messages oldest first');
  const ids = all.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, 'message IDs are unique');

  const desc = (await k.client.agents.messages.list(ag.id, { order: 'desc', limit: 100 })).items;
  assert.deepEqual(desc.map((m) => m.id), [...ids].reverse(), 'order=desc is the reverse');
  const dflt = (await k.client.agents.messages.list(ag.id, { limit: 100 })).items;
  assert.deepEqual(dflt.map((m) => m.id), [...ids].reverse(), 'the default order is desc (newest first)');

  const p1 = await k.client.agents.messages.list(ag.id, { order: 'asc', limit: 2 });
  assert.deepEqual(p1.items.map((m) => m.id), ids.slice(0, 2));
  const p2 = await k.client.agents.messages.list(ag.id, { order: 'asc', limit: 2, after: ids[1] });
  assert.deepEqual(p2.items.map((m) => m.id), ids.slice(2, 4));
  const pd = await k.client.agents.messages.list(ag.id, { order: 'desc', limit: 2, after: ids.at(-1) });
  assert.deepEqual(pd.items.map((m) => m.id), [ids.at(-2), ids.at(-3)], 'after in newest-first order means older');
  // before: messages older than the cursor, in list order. (Which of them
  // a page holds, the nearest or the oldest, the API does not pin down.)
  const pb = await k.client.agents.messages.list(ag.id, { order: 'asc', limit: 2, before: ids[3] });
  assertOrderedSubset(pb.items.map((m) => m.id), ids.slice(0, 3), 2, 'before');

  const paged = await collect(k.client.agents.messages.list(ag.id, { order: 'asc', limit: 2 }));
  assert.deepEqual(paged.map((m) => m.id), ids, 'auto-pagination visits every message once');
});

conformance('otid deduplicates a retried send', k, async () => {
  const ag = await createAgent();
  const otid = randomUUID();
  const first = await send(ag.id, 'only once please', { otid });
  const second = await send(ag.id, 'only once please', { otid });
  assert.deepEqual(
    second.messages.map((m) => m.id),
    first.messages.map((m) => m.id),
    'the retry returns the messages of the first send',
  );
  assert.deepEqual(second.usage.run_ids, first.usage.run_ids, 'and the same run');
  const list = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items;
  const users = list.filter((m) => m.message_type === 'user_message');
  assert.equal(users.length, 1, `the user message is logged once: ${JSON.stringify(types(list))}`);
  assert.equal(users[0].otid, otid, 'the user message keeps its otid');
  assert.equal(list.filter((m) => m.message_type === 'assistant_message').length, 1, 'one answer');

  // A different otid is a new message.
  await send(ag.id, 'only once please', { otid: randomUUID() });
  const after = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items;
  assert.equal(after.filter((m) => m.message_type === 'user_message').length, 2);
});

// ---- streaming (not implemented yet) ----

async function drain(stream) {
  const events = [];
  for await (const ev of stream) events.push(ev);
  return events;
}

function checkStream(events, text) {
  const kinds = events.map((e) => e.message_type);
  const assistant = events.filter((e) => e.message_type === 'assistant_message');
  assert.ok(assistant.length >= 1, `an assistant_message in ${JSON.stringify(kinds)}`);
  const content = assistant.map((e) => (typeof e.content === 'string' ? e.content : '')).join('');
  assert.equal(content, `Echo: ${text}`);
  const stop = events.find((e) => e.message_type === 'stop_reason');
  assert.equal(stop?.stop_reason, 'end_turn', `a stop_reason event in ${JSON.stringify(kinds)}`);
  assert.ok(events.some((e) => e.message_type === 'usage_statistics'), `a usage_statistics event in ${JSON.stringify(kinds)}`);
  assert.ok(kinds.indexOf('stop_reason') > kinds.lastIndexOf('assistant_message'), 'stop_reason after the messages');
}

conformance('streaming send (messages.create with streaming: true)', k, async () => {
  const ag = await createAgent();
  const stream = await k.client.agents.messages.create(ag.id, {
    messages: [{ role: 'user', content: 'stream this' }],
    streaming: true,
  });
  checkStream(await drain(stream), 'stream this');
  const log = (await k.client.agents.messages.list(ag.id, { order: 'asc' })).items;
  assert.ok(log.some((m) => m.message_type === 'assistant_message' && m.content === 'Echo: stream this'));
});

conformance('streaming send with stream_tokens and tool calls', k, async () => {
  const ag = await createAgent();
  const stream = await k.client.agents.messages.create(ag.id, {
    messages: [{ role: 'user', content: '@tool core_memory_append {"label": "human", "content": "Streams."}' }],
    streaming: true,
    stream_tokens: true,
  });
  const events = await drain(stream);
  const kinds = events.map((e) => e.message_type);
  assert.ok(kinds.includes('tool_call_message'), JSON.stringify(kinds));
  assert.ok(kinds.includes('tool_return_message'), JSON.stringify(kinds));
  assert.equal(events.find((e) => e.message_type === 'stop_reason')?.stop_reason, 'end_turn');
  assert.match((await k.client.agents.blocks.retrieve('human', { agent_id: ag.id })).value, /Streams\./);
});

conformance('messages/stream (the deprecated streaming endpoint)', k, async () => {
  const ag = await createAgent();
  const stream = await k.client.agents.messages.stream(ag.id, { messages: [{ role: 'user', content: 'old style' }] });
  checkStream(await drain(stream), 'old style');
});

conformance('messages by ID, message search, recompile', k, async () => {
  const ag = await createAgent();
  const res = await send(ag.id, 'remember the lighthouse keeper');
  const user = res.messages.find((m) => m.message_type === 'user_message');
  const got = await k.client.messages.retrieve(user.id);
  assert.ok(Array.isArray(got) && got.length === 1, JSON.stringify(got));
  assert.equal(got[0].id, user.id);
  assert.equal(got[0].content, 'remember the lighthouse keeper');

  const found = await k.client.messages.search({ query: 'lighthouse', agent_id: ag.id });
  const texts = found.map((r) => r.content);
  assert.ok(texts.includes('remember the lighthouse keeper'), JSON.stringify(found));
  assert.ok(found.every((r) => r.agent_id === ag.id), JSON.stringify(found));

  const prompt = await k.client.agents.recompile(ag.id, { dry_run: true });
  assert.equal(typeof prompt, 'string');
  assert.match(prompt, /Name: Ada/);
});
