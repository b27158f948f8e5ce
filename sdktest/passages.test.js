// Search across agents: POST /v1/passages/search.

import assert from 'node:assert/strict';
import { setup, conformance, unique } from './harness.js';

const k = setup();

function createAgent() {
  return k.client.agents.create({
    name: unique('pass'),
    model: 'openai/fake-model',
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
  });
}

conformance('passages.search finds passages of every agent, ranked by full text', k, async () => {
  const word = unique('zebra').replace(/[^a-z0-9]/gi, '');
  const a = await createAgent();
  const b = await createAgent();
  const [pa] = await k.client.agents.passages.create(a.id, { text: `${word} ${word} grazing in the north`, tags: ['animals'] });
  const [pb] = await k.client.agents.passages.create(b.id, { text: `one ${word} seen near the river bank today`, tags: ['sightings'] });
  await k.client.agents.passages.create(b.id, { text: 'nothing relevant here' });

  const all = await k.client.passages.search({ query: word });
  assert.deepEqual(all.map((r) => r.passage.id), [pa.id, pb.id], 'both agents, more occurrences first');
  assert.equal(all[0].metadata.agent_id, a.id);
  assert.equal(all[1].metadata.agent_id, b.id);
  assert.equal(all[0].metadata.ranking, 'sqlite-fts5-bm25', 'the default store ranks with SQLite FTS5');
  assert.ok(all[0].score > all[1].score, 'scores descend');

  const onlyB = await k.client.passages.search({ query: word, agent_id: b.id });
  assert.deepEqual(onlyB.map((r) => r.passage.id), [pb.id], 'agent_id narrows to one agent');
  const tagged = await k.client.passages.search({ query: word, tags: ['sightings'] });
  assert.deepEqual(tagged.map((r) => r.passage.id), [pb.id], 'tags filter');
  const one = await k.client.passages.search({ query: word, limit: 1 });
  assert.equal(one.length, 1, 'limit');

  await assert.rejects(k.client.passages.search({ query: word, limit: 1000 }), (e) => e.status === 422);
});
