// Custom tools run on the server, in the bubblewrap sandbox: a Python tool
// created from source, attached and called by a run; one that needs
// approval runs once approved; run_code; and a tool cannot see the
// server's environment.

import assert from 'node:assert/strict';
import { setup, conformance, unique } from './harness.js';

const k = setup();

const addSource = `def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    print("adding", a, b)
    return a + b
`;

const envSource = `def server_env() -> str:
    """List the environment variables the tool sees."""
    import os
    return " ".join(sorted(os.environ))
`;

async function agentWithTool(tool, extra = {}) {
  const ag = await k.client.agents.create({ name: unique('sbx'), model: 'openai/fake-model', include_base_tools: false, tools: ['send_message'], ...extra });
  await k.client.agents.tools.attach(tool.id, { agent_id: ag.id });
  return ag;
}

async function toolReturn(agentID, text) {
  const res = await k.client.agents.messages.create(agentID, { messages: [{ role: 'user', content: text }] });
  return { res, ret: res.messages.find((m) => m.message_type === 'tool_return_message') };
}

conformance('a Python tool created from source runs in the sandbox with the model\'s arguments', k, async () => {
  const tool = await k.client.tools.create({ source_code: addSource });
  assert.equal(tool.name, 'add');
  const ag = await agentWithTool(tool);
  const { res, ret } = await toolReturn(ag.id, '@tool add {"a": 2, "b": 40}\nadd them');
  assert.ok(ret, JSON.stringify(res.messages));
  assert.equal(ret.status, 'success', ret.tool_return);
  assert.equal(ret.tool_return, '42');
  assert.equal(res.stop_reason?.stop_reason ?? res.stop_reason, 'end_turn');
});

conformance('a tool that requires approval pauses, then runs on the server once approved', k, async () => {
  const tool = await k.client.tools.create({ source_code: addSource.replace('def add', 'def add_later'), default_requires_approval: true });
  const ag = await agentWithTool(tool);
  const first = await k.client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: '@tool add_later {"a": 1, "b": 2}' }] });
  const req = first.messages.find((m) => m.message_type === 'approval_request_message');
  assert.ok(req, JSON.stringify(first.messages));
  const second = await k.client.agents.messages.create(ag.id, {
    messages: [{ type: 'approval', approvals: [{ type: 'approval', tool_call_id: req.tool_call.tool_call_id, approve: true }] }],
  });
  const ret = second.messages.find((m) => m.message_type === 'tool_return_message');
  assert.ok(ret, JSON.stringify(second.messages));
  assert.equal(ret.status, 'success', ret.tool_return);
  assert.equal(ret.tool_return, '3');
});

conformance('a tool sees its agent\'s secrets and the Letta variables, never the server\'s environment', k, async () => {
  const tool = await k.client.tools.create({ source_code: envSource });
  const ag = await agentWithTool(tool, { secrets: { MY_TOKEN: 'abc' } });
  const { ret } = await toolReturn(ag.id, '@tool server_env {}');
  assert.equal(ret.status, 'success', ret.tool_return);
  const names = ret.tool_return.split(' ');
  for (const want of ['MY_TOKEN', 'LETTA_AGENT_ID', 'LETTA_TOOL_ID']) assert.ok(names.includes(want), `${want} missing: ${ret.tool_return}`);
  for (const never of ['OPENAI_BASE_URL', 'KELPIE_ADDR', 'KELPIE_STORAGE']) assert.ok(!names.includes(never), `${never} leaked: ${ret.tool_return}`);
});

conformance('run_code runs a Python program in the sandbox', k, async () => {
  const ag = await k.client.agents.create({ name: unique('sbx'), model: 'openai/fake-model', include_base_tools: false, tools: ['run_code'] });
  const { ret } = await toolReturn(ag.id, '@tool run_code {"code": "print(6 * 7)", "language": "python"}');
  assert.equal(ret.status, 'success', ret.tool_return);
  const doc = JSON.parse(ret.tool_return);
  assert.deepEqual(doc.logs.stdout, ['42\n']);
  assert.equal(doc.error, null);
});

conformance('tools/run runs source code on its own, and agents.tools.run runs an agent\'s tool', k, async () => {
  // POST /v1/tools/run has no method in the 1.12 SDK.
  const ret = await k.client.post('/v1/tools/run', { body: { source_code: addSource, args: { a: 20, b: 22 } } });
  assert.equal(ret.message_type, 'tool_return_message');
  assert.equal(ret.status, 'success', ret.tool_return);
  assert.equal(ret.tool_return, '42');
  assert.ok(ret.stdout.join('').includes('adding 20 22'), JSON.stringify(ret.stdout));
  const failing = await k.client.post('/v1/tools/run', { body: { source_code: 'def boom() -> str:\n    """Fail."""\n    raise ValueError("no luck")\n', args: {} } });
  assert.equal(failing.status, 'error');
  assert.match(failing.tool_return, /ValueError: no luck/);

  const tool = await k.client.tools.create({ source_code: addSource.replace('def add', 'def add_agent') });
  const ag = await agentWithTool(tool);
  const res = await k.client.agents.tools.run('add_agent', { agent_id: ag.id, args: { a: 5, b: 6 } });
  assert.equal(res.status, 'success');
  assert.equal(res.func_return, '11');
});
