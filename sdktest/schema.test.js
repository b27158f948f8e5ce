// The schema check itself (no server): it maps request paths to the
// OpenAPI templates and rejects wrong shapes, so a passing suite means
// something.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchPath, responseSchema, validate, componentRef, checkDetailBody } from './schema.js';

test('schema check: request paths map to OpenAPI templates', () => {
  assert.equal(matchPath('/v1/agents'), '/v1/agents/');
  assert.equal(matchPath('/v1/agents/'), '/v1/agents/');
  assert.equal(matchPath('/v1/agents/agent-1'), '/v1/agents/{agent_id}');
  assert.equal(matchPath('/v1/agents/agent-1/'), '/v1/agents/{agent_id}');
  assert.equal(matchPath('/v1/agents/search'), '/v1/agents/search', 'a literal segment wins over a parameter');
  assert.equal(matchPath('/v1/runs/active'), '/v1/runs/active');
  assert.equal(matchPath('/v1/agents/agent-1/archival-memory/search'), '/v1/agents/{agent_id}/archival-memory/search');
  assert.equal(matchPath('/v1/agents/agent-1/archival-memory/passage-1'), '/v1/agents/{agent_id}/archival-memory/{memory_id}');
  assert.equal(matchPath('/v1/agents/agent-1/core-memory/blocks/human'), '/v1/agents/{agent_id}/core-memory/blocks/{block_label}');
  assert.equal(matchPath('/v1/nothing/here'), null);
  assert.equal(responseSchema('GET', '/v1/agents/agent-1', 404).declared, false);
  assert.equal(responseSchema('GET', '/v1/agents/agent-1', 200).declared, true);
});

test('schema check: wrong shapes are rejected, right ones accepted', () => {
  const bad = {
    AgentState: { id: 'agent-1', name: 'x' },
    LettaResponse: { messages: [], stop_reason: { stop_reason: 'bored' }, usage: {} },
    LettaMessageUnion: { id: 'message-1', date: '2026-01-01T00:00:00Z', message_type: 'user_message' },
    BlockResponse: { value: 3 },
    Run: { agent_id: 'agent-1', status: 'sleeping' },
    Passage: { text: 't', embedding: null, embedding_config: null, surprise: true },
  };
  for (const [name, body] of Object.entries(bad)) {
    assert.notDeepEqual(validate(componentRef(name), body), [], `${name} accepted ${JSON.stringify(body)}`);
  }
  const good = {
    LettaMessageUnion: { id: 'message-1', date: '2026-01-01T00:00:00Z', message_type: 'user_message', content: 'hi' },
    Run: { id: 'run-0a1b2c3d-0000-4000-8000-000000000000', agent_id: 'agent-1', status: 'completed' },
    Health: { status: 'ok', version: 'dev' },
  };
  for (const [name, body] of Object.entries(good)) {
    assert.deepEqual(validate(componentRef(name), body), [], `${name} rejected ${JSON.stringify(body)}`);
  }
  // A list response checks every item, and says which one failed and as what.
  const list = responseSchema('GET', '/v1/agents/agent-1/messages', 200).ref;
  const errs = validate(list, [good.LettaMessageUnion, bad.LettaMessageUnion]);
  assert.ok(errs.some((e) => e.startsWith('/1 (as UserMessage)')), errs.join('\n'));
  // Formats are checked.
  assert.notDeepEqual(validate(componentRef('UserMessage'), { ...good.LettaMessageUnion, date: 'yesterday' }), []);
});

test('schema check: undeclared error bodies must be {"detail": ...}', () => {
  assert.deepEqual(checkDetailBody({ detail: 'Not Found' }), []);
  assert.notDeepEqual(checkDetailBody({ error: 'x' }), []);
  assert.notDeepEqual(checkDetailBody('Not Found'), []);
  assert.notDeepEqual(checkDetailBody([]), []);
});
