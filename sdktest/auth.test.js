// Authentication: a server with a password accepts the SDK's API key
// (Authorization: Bearer) and refuses requests without it.

import assert from 'node:assert/strict';
import Letta from '@letta-ai/letta-client';
import { setup, conformance, rejects } from './harness.js';

const PASSWORD = 'sdktest-secret';
const k = setup({ password: PASSWORD });

conformance('the API key is the server password', k, async () => {
  const list = await k.client.agents.list();
  assert.ok(Array.isArray(list.items));
  const created = await k.client.agents.create({ name: 'authed', model: 'openai/fake-model' });
  assert.equal((await k.client.agents.retrieve(created.id)).name, 'authed');
});

conformance('no key or a wrong key: AuthenticationError (401) with a detail', k, async () => {
  for (const [what, apiKey] of [
    ['no key', null],
    ['wrong key', 'not-the-password'],
  ]) {
    const client = k.newClient({ apiKey });
    const err = await rejects(client.agents.list(), what);
    assert.ok(err instanceof Letta.AuthenticationError, `${what}: AuthenticationError, got ${err}`);
    assert.equal(typeof err.error?.detail, 'string', `${what}: ${JSON.stringify(err.error)}`);
  }
});

conformance('health needs no key', k, async () => {
  const h = await k.newClient({ apiKey: null }).health();
  assert.equal(h.status, 'ok');
});
