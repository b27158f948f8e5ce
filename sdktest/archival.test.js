// Archival memory (passages): insert, list, search, delete; and the
// agent's own archival tools reaching the same store.

import assert from 'node:assert/strict';
import { setup, conformance, unique, rejects } from './harness.js';

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

// An agent with an embedding model (served here by the fake LLM's
// /v1/embeddings, a hashed bag of words: texts sharing words are close):
// passages carry vectors and their embedding_config, and search ranks by
// cosine similarity, which the X-Kelpie-Search-Ranking header reports
// (the SDK hides headers, so that request is a raw fetch, checked against
// the schema like every other).
conformance('an agent with an embedding model searches by embedding similarity', k, async () => {
  const handle = 'openai/fake-embedding';
  const ag = await k.client.agents.create({
    name: unique('emb'),
    model: 'openai/fake-model',
    embedding: handle,
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
  });
  assert.equal(ag.embedding, handle);
  assert.equal(ag.embedding_config?.handle, handle);
  assert.equal(ag.embedding_config?.embedding_model, 'fake-embedding');

  const texts = [
    'Ada keeps a cat named Whiskers on the sofa.',
    'The quarterly report is due on Friday.',
    'Ada drinks green tea every morning.',
  ];
  const ids = [];
  for (const text of texts) {
    const [p] = await k.client.agents.passages.create(ag.id, { text });
    assert.equal(p.embedding?.length, 64, 'the passage carries its vector');
    assert.equal(p.embedding_config?.handle, handle);
    assert.equal(p.embedding_config?.embedding_dim, 64);
    ids.push(p.id);
  }

  const found = await k.client.agents.passages.search(ag.id, { query: 'where does Whiskers sleep' });
  assert.equal(found.results[0]?.id, ids[0], `cosine ranks the cat first: ${JSON.stringify(found.results)}`);

  const url = `${k.baseURL}/v1/agents/${ag.id}/archival-memory/search?query=${encodeURIComponent('green tea')}`;
  const res = await k.rec.fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-kelpie-search-ranking'), 'embedding-cosine');
  assert.equal((await res.json()).results[0]?.id, ids[2]);

  const again = await k.client.agents.retrieve(ag.id);
  assert.equal(again.embedding_config?.embedding_dim, 64, 'the agent reports its model\'s dimension');

  // The agent's own archival tools embed too, during the run.
  const run = await k.client.agents.messages.create(ag.id, {
    messages: [{ role: 'user', content: '@tool archival_memory_search {"query": "Whiskers on the sofa"}\nsearch' }],
  });
  const ret = run.messages.find((m) => m.message_type === 'tool_return_message');
  assert.equal(ret?.status, 'success', `tool return: ${JSON.stringify(ret)}`);
  assert.equal(JSON.parse(ret.tool_return)[0]?.content, texts[0]);
});

conformance('an embedding handle no provider serves is refused at create', k, async () => {
  const err = await rejects(
    k.client.agents.create({ name: unique('emb'), embedding: 'anthropic/claude-sonnet-4-5' }),
    'create with an Anthropic embedding handle',
  );
  assert.equal(err.status, 400);
  assert.match(String(err.error?.detail ?? err.message), /anthropic/);
});
