// Errors: what the SDK throws for unknown objects and malformed requests,
// and that every error body is JSON of Letta's shape.

import assert from 'node:assert/strict';
import Letta from '@letta-ai/letta-client';
import { setup, conformance, unique, rejects, unknownAgentID } from './harness.js';

const k = setup();

conformance('unknown agent: NotFoundError with a detail', k, async () => {
  const id = unknownAgentID();
  for (const [what, call] of [
    ['agents.retrieve', () => k.client.agents.retrieve(id)],
    ['agents.update', () => k.client.agents.update(id, { name: 'x' })],
    ['agents.delete', () => k.client.agents.delete(id)],
    ['agents.messages.create', () => k.client.agents.messages.create(id, { messages: [{ role: 'user', content: 'hi' }] })],
    ['agents.messages.list', () => k.client.agents.messages.list(id)],
    ['agents.blocks.retrieve', () => k.client.agents.blocks.retrieve('human', { agent_id: id })],
    ['agents.passages.list', () => k.client.agents.passages.list(id)],
  ]) {
    const err = await rejects(call(), what);
    assert.ok(err instanceof Letta.NotFoundError, `${what}: NotFoundError, got ${err}`);
    assert.equal(err.status, 404, what);
    assert.equal(typeof err.error?.detail, 'string', `${what}: {"detail": "..."}: ${JSON.stringify(err.error)}`);
  }
});

conformance('unknown route: 404 {"detail": "Not Found"}', k, async () => {
  const err = await rejects(k.client.get('/v1/no-such-route'), 'unknown route');
  assert.ok(err instanceof Letta.NotFoundError, `NotFoundError, got ${err}`);
  assert.deepEqual(err.error, { detail: 'Not Found' });
});

conformance(
  'malformed requests: 422 UnprocessableEntityError',
  k,
  async () => {
    const ag = await k.client.agents.create({ name: unique('err'), model: 'openai/fake-model' });
    for (const [what, call] of [
      ['agents.create with name: 42', () => k.client.agents.create({ name: 42 })],
      ['agents.create with a non-object body', () => k.client.post('/v1/agents/', { body: 'not an object' })],
      [
        'messages.create with content: 42',
        () => k.client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: 42 }] }),
      ],
      ['agents.retrieve of a malformed ID', () => k.client.agents.retrieve('not-an-agent-id')],
      ['agents.list with limit=0', () => k.client.agents.list({ limit: 0 })],
      ['passages.create without text', () => k.client.agents.passages.create(ag.id, {})],
    ]) {
      const err = await rejects(call(), what);
      assert.ok(err instanceof Letta.UnprocessableEntityError, `${what}: UnprocessableEntityError, got ${err}`);
      assert.equal(err.status, 422, what);
    }
    // Nothing was created by the refused requests.
    const listed = (await k.client.agents.list({ limit: 100 })).items;
    assert.deepEqual(listed.map((a) => a.id), [ag.id]);
  },
);
