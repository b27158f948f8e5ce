// Steps (a record per model call: list, retrieve, feedback, metrics,
// trace) and resuming a run's stream with starting_after.

import assert from 'node:assert/strict';
import Letta from '@letta-ai/letta-client';
import { setup, conformance, unique, poll, rejects, collect } from './harness.js';

const k = setup();

const MODEL = 'openai/fake-model';

function createAgent() {
  return k.client.agents.create({
    name: unique('steps'),
    model: MODEL,
    memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
  });
}

// A turn of two steps: the model calls a tool, then answers.
const TOOL_TURN = '@tool core_memory_append {"label": "human", "content": "Likes steps."}';

async function send(agentID, content) {
  const res = await k.client.agents.messages.create(agentID, { messages: [{ role: 'user', content }] });
  assert.equal(res.usage.run_ids.length, 1);
  return res;
}

conformance('steps: list, retrieve, feedback, metrics and trace', k, async () => {
  const ag = await createAgent();
  const res = await send(ag.id, TOOL_TURN);
  const runID = res.usage.run_ids[0];
  const runSteps = (await k.client.runs.steps.list(runID, { order: 'asc' })).items;
  assert.equal(runSteps.length, res.usage.step_count, 'one step per model call');
  assert.ok(runSteps.length >= 2, `a tool call and an answer: ${runSteps.length} steps`);
  const ids = runSteps.map((s) => s.id);

  // The same steps across agents, filtered by agent and paged.
  const listed = (await k.client.steps.list({ agent_id: ag.id, order: 'asc' })).items;
  assert.deepEqual(listed.map((s) => s.id), ids);
  const newest = (await k.client.steps.list({ agent_id: ag.id })).items;
  assert.deepEqual(newest.map((s) => s.id), [...ids].reverse(), 'newest first by default');
  const paged = await collect(k.client.steps.list({ agent_id: ag.id, order: 'asc', limit: 1 }));
  assert.deepEqual(paged.map((s) => s.id), ids, 'auto-pagination');
  assert.equal((await k.client.steps.list({ agent_id: ag.id, model: 'fake-model' })).items.length, ids.length, 'model by name');
  assert.deepEqual((await k.client.steps.list({ agent_id: ag.id, model: 'other-model' })).items, []);
  assert.deepEqual((await k.client.steps.list({ agent_id: ag.id, end_date: '2000-01-01T00:00:00Z' })).items, [], 'end_date');
  assert.equal((await k.client.steps.list({ agent_id: ag.id, start_date: '2000-01-01T00:00:00Z' })).items.length, ids.length, 'start_date');

  const step = await k.client.steps.retrieve(ids[0]);
  assert.equal(step.id, ids[0]);
  assert.equal(step.run_id, runID);
  assert.equal(step.agent_id, ag.id);
  assert.equal(step.model, 'fake-model');
  assert.equal(step.model_handle, MODEL);
  assert.equal(step.status, 'success');
  assert.ok(step.total_tokens >= 0);
  assert.equal(step.feedback ?? null, null);

  const rated = await k.client.steps.feedback.create(ids[0], { feedback: 'positive', tags: ['sdktest', 'helpful'] });
  assert.equal(rated.feedback, 'positive');
  assert.deepEqual(rated.tags, ['sdktest', 'helpful']);
  assert.equal((await k.client.steps.retrieve(ids[0])).feedback, 'positive', 'retrieve shows the feedback');
  const positive = (await k.client.steps.list({ agent_id: ag.id, feedback: 'positive' })).items;
  assert.deepEqual(positive.map((s) => s.id), [ids[0]]);
  const unrated = (await k.client.steps.list({ agent_id: ag.id, has_feedback: false, order: 'asc' })).items;
  assert.deepEqual(unrated.map((s) => s.id), ids.slice(1));
  const negative = await k.client.steps.feedback.create(ids[0], { feedback: 'negative' });
  assert.equal(negative.feedback, 'negative');
  assert.deepEqual(negative.tags, ['sdktest', 'helpful'], 'tags stay when none are sent');

  const bad = await rejects(k.client.steps.feedback.create(ids[0], { feedback: 'meh' }), 'feedback outside the enum');
  assert.ok(bad instanceof Letta.UnprocessableEntityError, `UnprocessableEntityError, got ${bad}`);

  const metrics = await k.client.steps.metrics.retrieve(ids[0]);
  assert.equal(metrics.id, ids[0]);
  assert.equal(metrics.run_id, runID);
  assert.ok(metrics.llm_request_ns >= 0 && metrics.step_ns >= metrics.llm_request_ns, JSON.stringify(metrics));
  assert.ok(metrics.llm_request_start_ns >= metrics.step_start_ns, JSON.stringify(metrics));

  // No provider traces are kept: Letta answers null while tracing is off.
  assert.equal(await k.client.steps.trace.retrieve(ids[0]), null);

  const missing = await rejects(k.client.steps.retrieve('step-00000000-0000-4000-8000-000000000000'), 'unknown step');
  assert.ok(missing instanceof Letta.NotFoundError, `NotFoundError, got ${missing}`);
});

async function drain(stream) {
  const events = [];
  for await (const ev of stream) events.push(ev);
  return events;
}

const MESSAGE_EVENTS = new Set(['user_message', 'assistant_message', 'reasoning_message', 'tool_call_message', 'tool_return_message']);

conformance('runs.messages.stream replays a run, and resumes after starting_after', k, async () => {
  const ag = await createAgent();
  const res = await send(ag.id, TOOL_TURN);
  const runID = res.usage.run_ids[0];

  const all = await drain(await k.client.runs.messages.stream(runID));
  const msgs = all.filter((e) => MESSAGE_EVENTS.has(e.message_type));
  assert.equal(all.find((e) => e.message_type === 'stop_reason')?.stop_reason, 'end_turn');
  assert.ok(msgs.length >= 4, `user, tool call, tool return, answer: ${JSON.stringify(msgs.map((e) => e.message_type))}`);
  assert.ok(msgs.every((e) => typeof e.seq_id === 'number'), 'every message carries its seq_id');

  const cut = msgs[1].seq_id;
  const rest = await drain(await k.client.runs.messages.stream(runID, { starting_after: cut }));
  const restMsgs = rest.filter((e) => MESSAGE_EVENTS.has(e.message_type));
  assert.ok(restMsgs.length > 0 && restMsgs.every((e) => e.seq_id > cut), `only messages after ${cut}`);
  assert.deepEqual(
    restMsgs.map((e) => `${e.message_type}:${e.id}`),
    msgs.filter((e) => e.seq_id > cut).map((e) => `${e.message_type}:${e.id}`),
    'the tail of the full replay',
  );
  assert.equal(rest.find((e) => e.message_type === 'stop_reason')?.stop_reason, 'end_turn');
});

conformance('runs.messages.stream follows a run in progress from starting_after', k, async () => {
  const ag = await createAgent();
  const run = await k.client.agents.messages.createAsync(ag.id, {
    messages: [{ role: 'user', content: '@sleep 500ms\nslowly' }],
  });
  // The input is logged when the run starts; resume after it.
  const input = await poll('the run input to be logged', async () => {
    const items = (await k.client.runs.messages.list(run.id, { order: 'asc' })).items;
    return { done: items.length > 0, value: items[0] };
  });
  assert.equal(input.message_type, 'user_message');
  const events = await drain(await k.client.runs.messages.stream(run.id, { starting_after: input.seq_id }));
  const msgs = events.filter((e) => MESSAGE_EVENTS.has(e.message_type));
  assert.ok(!msgs.some((e) => e.id === input.id && e.message_type === 'user_message'), 'the input is not sent again');
  assert.ok(
    msgs.some((e) => e.message_type === 'assistant_message' && e.content === 'Echo: slowly'),
    `the answer arrives: ${JSON.stringify(msgs)}`,
  );
  assert.equal(events.find((e) => e.message_type === 'stop_reason')?.stop_reason, 'end_turn');
  assert.equal((await k.client.runs.retrieve(run.id)).status, 'completed');
});
