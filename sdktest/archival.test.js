// Archival memory (passages): insert, list, search, delete; and the
// agent's own archival tools reaching the same store.

import assert from 'node:assert/strict';
import { setup, conformance, unique } from './harness.js';

const k = setup();

function createAgent() {
  return k.client.agents.create({
    name: unique('arch'),
    model: 'openai/fake-model',
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
  });
}

conformance('archival insert, then search finds it', k, async () => {
  const ag = await createAgent();
  const created = await k.client.agents.passages.create(ag.id, {
    text: 'The user has a cat named Whiskers.',
    tags: ['pets'],
  });
  assert.equal(created.length, 1, 'one passage created');
  const p = created[0];
  assert.match(p.id, /^passage-[0-9a-f-]{36}$/);
  assert.equal(p.text, 'The user has a cat named Whiskers.');
  await k.client.agents.passages.create(ag.id, { text: 'The user works as an engineer in Lisbon.', tags: ['work'] });

  const found = await k.client.agents.passages.search(ag.id, { query: 'cat Whiskers' });
  assert.ok(found.count >= 1, `search found ${found.count}`);
  assert.equal(found.count, found.results.length);
  assert.equal(found.results[0].id, p.id, 'the matching passage ranks first');
  assert.equal(found.results[0].content, 'The user has a cat named Whiskers.');
  assert.deepEqual(found.results[0].tags, ['pets']);

  const tagged = await k.client.agents.passages.search(ag.id, { query: 'user', tags: ['work'] });
  assert.deepEqual(tagged.results.map((r) => r.content), ['The user works as an engineer in Lisbon.'], 'tags filter');
  const top1 = await k.client.agents.passages.search(ag.id, { query: 'user', top_k: 1 });
  assert.equal(top1.results.length, 1, 'top_k');
});

conformance('archival list and delete', k, async () => {
  const ag = await createAgent();
  const texts = ['first memory', 'second memory', 'third memory'];
  const ids = [];
  for (const text of texts) ids.push((await k.client.agents.passages.create(ag.id, { text }))[0].id);

  const all = await k.client.agents.passages.list(ag.id);
  assert.deepEqual(all.map((p) => p.id), ids, 'oldest first by default');
  const desc = await k.client.agents.passages.list(ag.id, { ascending: false });
  assert.deepEqual(desc.map((p) => p.id), [...ids].reverse(), 'ascending=false: newest first');
  const page = await k.client.agents.passages.list(ag.id, { limit: 1, after: ids[0] });
  assert.deepEqual(page.map((p) => p.id), [ids[1]], 'after and limit');
  const search = await k.client.agents.passages.list(ag.id, { search: 'SECOND' });
  assert.deepEqual(search.map((p) => p.id), [ids[1]], 'search filters by text');

  await k.client.agents.passages.delete(ids[1], { agent_id: ag.id });
  const left = await k.client.agents.passages.list(ag.id);
  assert.deepEqual(left.map((p) => p.id), [ids[0], ids[2]], 'the deleted passage is gone');
  const found = await k.client.agents.passages.search(ag.id, { query: 'second' });
  assert.ok(!found.results.some((r) => r.id === ids[1]), 'and no longer found');
});

conformance('the agent inserts with archival_memory_insert; the API finds it', k, async () => {
  const ag = await createAgent();
  const res = await k.client.agents.messages.create(ag.id, {
    messages: [
      {
        role: 'user',
        content: '@tool archival_memory_insert {"content": "Ada prefers green tea.", "tags": ["food"]}\nremember',
      },
    ],
  });
  const ret = res.messages.find((m) => m.message_type === 'tool_return_message');
  assert.equal(ret?.status, 'success', `tool return: ${JSON.stringify(ret)}`);
  const found = await k.client.agents.passages.search(ag.id, { query: 'green tea' });
  assert.deepEqual(found.results.map((r) => r.content), ['Ada prefers green tea.']);
  assert.deepEqual(found.results[0].tags, ['food']);
});
