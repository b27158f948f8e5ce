// letta-code end to end: each pinned version of the CLI creates an agent
// on Kelpie, resumes it with a second prompt, and runs a tool of its own
// (a client tool: the server asks, the CLI runs it and sends the result
// back); then the REST API must show what the server stored.
//
//   KELPIE_BIN=/path/to/kelpie node --test lettacode/lettacode.test.js
//
// Needs scripts/install-letta-code.sh to have run. Without an install the
// version's tests fail when CI is set, and are skipped otherwise. A failure
// prints the CLI's exit status, stdout, stderr and debug log, every request
// it made (with the bodies of error responses) and the server's log.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MODEL, VERSIONS, Session, api, check, installed, startStack, summarize, text } from './harness.js';

const agentIDPattern = /^agent-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let stack = null;
before(async () => {
  stack = await startStack();
});
after(async () => {
  if (!stack) return;
  const { serve, serveOutput } = await stack.stop();
  if (serve && serve.code !== 0) {
    throw new Error(`kelpie serve did not exit cleanly on SIGTERM: ${JSON.stringify(serve)}\n${serveOutput}`);
  }
});

/** turnOK checks a run that must have answered prompt with reply. */
function turnOK(r, reply) {
  assert.equal(r.timedOut, false, 'letta-code did not finish in time');
  assert.equal(r.code, 0, `letta-code exited ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}`);
  const out = r.json();
  assert.equal(out.type, 'result', 'the JSON output is not a result');
  assert.equal(out.is_error, false, `the result is an error: ${JSON.stringify(out).slice(0, 500)}`);
  assert.equal(out.subtype, 'success');
  assert.equal(out.result, reply, "the result is not the model's reply");
  assert.match(out.agent_id ?? '', agentIDPattern, 'no agent_id in the result');
  assert.equal(typeof out.conversation_id, 'string', 'no conversation_id in the result');
  const fivexx = r.exchanges.filter((e) => e.status >= 500);
  assert.deepEqual(
    fivexx.map((e) => `${e.method} ${e.url} -> ${e.status}`),
    [],
    'requests failed with a server error',
  );
  return out;
}

/** conversationPath lists one conversation's messages, as letta-code reads them. */
function conversationPath(conversationID, agentID) {
  const q = new URLSearchParams({ limit: '1000', order: 'asc' });
  if (conversationID === 'default') q.set('agent_id', agentID);
  return `/v1/conversations/${encodeURIComponent(conversationID)}/messages?${q}`;
}

/** hasTurn checks that messages hold the user's prompt and then the reply. */
function hasTurn(messages, prompt, reply, where) {
  const u = messages.findIndex((m) => m.message_type === 'user_message' && text(m.content).includes(prompt));
  assert.notEqual(u, -1, `${where}: no user_message containing ${JSON.stringify(prompt)}; messages:\n${summarize(messages)}`);
  const a = messages.findIndex((m, i) => i > u && m.message_type === 'assistant_message' && text(m.content) === reply);
  assert.notEqual(a, -1, `${where}: no assistant_message ${JSON.stringify(reply)} after the prompt; messages:\n${summarize(messages)}`);
  return u;
}

// The versions run side by side (each its own session and API key); the
// steps of one version run in order.
describe('letta-code against Kelpie', { concurrency: VERSIONS.length }, () => {
  for (const version of VERSIONS) {
    const missing = installed(version);
    // An install is an external thing: its absence fails under CI, and
    // skips the version's tests otherwise.
    const opts = { timeout: 120_000, skip: missing && !process.env.CI ? missing : false };

    describe(`letta-code ${version}`, { concurrency: 1 }, () => {
      const prompts = [`hello from letta-code ${version}`, `second prompt for letta-code ${version}`];
      const replies = prompts.map((p) => `Echo: ${p}`);
      let session = null;
      let create = null; // the first Run and its JSON output
      let resume = null;

      before(async () => {
        if (missing) return;
        session = await Session.create(version, stack);
      });
      after(async () => {
        await session?.remove();
      });

      function needs(what) {
        if (missing) throw new Error(missing);
        if (!stack) throw new Error('Kelpie did not start (see the failure of the file-level before hook)');
        if (what === 'agent' && !create?.out) throw new Error('no agent to work with: the create step failed (see its failure above)');
      }

      test(`create: letta -p … --new-agent -m ${MODEL}`, opts, async () => {
        needs();
        const r = await session.letta(['-p', prompts[0], '--new-agent', '-m', MODEL, '--output-format', 'json']);
        await check([r], async () => {
          const out = turnOK(r, replies[0]);
          create = { run: r, out };
        });
      });

      test('resume: letta --agent <id> -p …', opts, async () => {
        needs('agent');
        const r = await session.letta(['-p', prompts[1], '--agent', create.out.agent_id, '--output-format', 'json']);
        await check([r], async () => {
          const out = turnOK(r, replies[1]);
          assert.equal(out.agent_id, create.out.agent_id, 'resume answered as another agent');
          resume = { run: r, out };
        });
      });

      test('the server stored the agent and both turns', opts, async () => {
        needs('agent');
        const id = create.out.agent_id;
        await check([create.run, resume?.run], async () => {
          const agent = await api(stack, 'GET', `/v1/agents/${id}?include=agent.tags`);
          assert.equal(agent.id, id);
          assert.ok(
            agent.tags?.includes('origin:letta-code'),
            `the agent lacks the tag letta-code created it with; tags: ${JSON.stringify(agent.tags)}`,
          );
          assert.ok(resume, 'the resume step failed (see its failure above)');

          // Each run's own conversation holds its turn…
          for (const [i, { out }] of [create, resume].entries()) {
            const msgs = await api(stack, 'GET', conversationPath(out.conversation_id, id));
            hasTurn(msgs, prompts[i], replies[i], `conversation ${out.conversation_id} (run ${i + 1})`);
          }
          // …and both conversations are the agent's (letta-code starts a
          // new one on every run).
          const convs = await api(stack, 'GET', `/v1/conversations/?agent_id=${id}&order=asc`);
          const ids = convs.map((c) => c.id);
          for (const { out } of [create, resume]) {
            assert.ok(ids.includes(out.conversation_id), `agent ${id}: conversation ${out.conversation_id} not listed: ${JSON.stringify(ids)}`);
          }
          assert.ok(ids.indexOf(create.out.conversation_id) < ids.indexOf(resume.out.conversation_id),
            `agent ${id}: the resume's conversation is listed before the create's: ${JSON.stringify(ids)}`);
        });
      });

      test('a client tool: the model calls the CLI’s shell tool, the CLI runs it and the loop goes on', opts, async () => {
        needs('agent');
        // The fake model calls the tool on "@tool"; $((6*7)) shows that a
        // shell ran the command (the arguments do not contain 42).
        const call =
          version === '0.25.9'
            ? `@tool ShellCommand {"command": "echo kelpie-$((6*7))"}`
            : `@tool exec_command {"cmd": "echo kelpie-$((6*7))", "description": "Print a marker"}`;
        const r = await session.letta(['-p', call, '--agent', create.out.agent_id, '--output-format', 'json']);
        await check([r], async () => {
          // After a tool result the fake model replies "OK".
          const out = turnOK(r, 'OK');
          assert.equal(out.agent_id, create.out.agent_id);
          const sends = r.exchanges.filter((e) => e.method === 'POST' && /\/messages\/?(\?|$)/.test(e.url));
          assert.ok(sends.length >= 2, `letta-code sent ${sends.length} message request(s), want the prompt and then the tool result`);
          const back = JSON.parse(sends.at(-1).request);
          assert.equal(
            back.messages?.[0]?.type,
            'approval',
            `the last message request is not the tool result: ${sends.at(-1).request.slice(0, 500)}`,
          );
          const msgs = await api(stack, 'GET', conversationPath(out.conversation_id, out.agent_id));
          const ret = msgs.find((m) => m.message_type === 'tool_return_message' && String(m.tool_return ?? '').includes('kelpie-42'));
          assert.ok(
            ret,
            `no tool_return_message with the command's output "kelpie-42" in conversation ${out.conversation_id}:\n${summarize(msgs)}`,
          );
        });
      });
    });
  }
});
