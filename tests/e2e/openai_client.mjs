// Drives a running `moon serve` with the official OpenAI client: completions and chat,
// streamed and not, n > 1, logprobs, stop strings, usage and errors.
//
//   node openai_client.mjs http://127.0.0.1:8080/v1
//
// Expects the stories260K model at temperature 0 and a chat template that concatenates the
// message contents after BOS (the test server passes one). Exits 0 when every check passed.
import assert from "node:assert/strict";
import { check, runChecks } from "./checks.mjs";
import OpenAI from "openai";

const baseURL = process.argv[2] ?? process.env.MOON_BASE_URL ?? "http://127.0.0.1:8080/v1";
const client = new OpenAI({
  baseURL,
  apiKey: process.env.MOON_API_KEY ?? "EMPTY",
  timeout: 30_000,
  maxRetries: 0,
});
const GOLDEN = ", there was a little girl named Lily. She loved to play outside in the park.";


let model;
check("models.list", async () => {
  const models = await client.models.list();
  assert.ok(models.data.length >= 1);
  model = models.data[0].id;
  assert.equal(models.data[0].object, "model");
});

check("completion", async () => {
  const r = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 48, temperature: 0,
  });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices.length, 1);
  assert.ok(r.choices[0].text.startsWith(GOLDEN), r.choices[0].text);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 48, total_tokens: 53 });
});

check("completion stream with usage", async () => {
  const stream = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 48, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage;
  let finish;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(text.startsWith(GOLDEN), text);
  assert.equal(finish, "length");
  assert.equal(usage.completion_tokens, 48);
  assert.equal(usage.total_tokens, 53);
});

check("n > 1", async () => {
  const r = await client.completions.create({
    model, prompt: "Lily and Tom", max_tokens: 10, temperature: 1, n: 3, seed: 1,
  });
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1, 2]);
  assert.equal(r.usage.completion_tokens, 30);
});

check("logprobs", async () => {
  const r = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 1,
  });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 8);
  assert.equal(lp.token_logprobs.length, 8);
  assert.ok(lp.token_logprobs.every((v) => v <= 0));
  assert.equal(lp.tokens.join(""), r.choices[0].text);
});

check("stop", async () => {
  const r = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 48, temperature: 0, stop: [" girl", "zzz"],
  });
  assert.equal(r.choices[0].text, ", there was a little");
  assert.equal(r.choices[0].finish_reason, "stop");
});

check("stop while streaming", async () => {
  const stream = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: 48, temperature: 0, stop: " named",
    stream: true,
  });
  let text = "";
  for await (const chunk of stream) for (const c of chunk.choices) text += c.text;
  assert.equal(text, ", there was a little girl");
});

check("chat", async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 20,
    temperature: 0, logprobs: true,
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.ok(r.choices[0].message.content.startsWith(", there was"), r.choices[0].message.content);
  assert.equal(r.choices[0].logprobs.content.length, 20);
  assert.equal(r.usage.completion_tokens, 20);
});

check("chat top_logprobs and sampling fields", async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 6,
    temperature: 0, logprobs: true, top_logprobs: 4, presence_penalty: 0.5,
    logit_bias: { "300": -100 },
  });
  for (const entry of r.choices[0].logprobs.content) {
    assert.equal(entry.top_logprobs.length, 4);
    assert.equal(entry.top_logprobs[0].token, entry.token);
    assert.ok(entry.top_logprobs.every((t) => t.token !== undefined && t.logprob <= 0));
  }
});

check("chat stream", async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 20,
    temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let role;
  let usage;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      role ??= c.delta.role;
      text += c.delta.content ?? "";
    }
  }
  assert.equal(role, "assistant");
  assert.ok(text.startsWith(", there was"), text);
  assert.equal(usage.completion_tokens, 20);
});

check("errors", async () => {
  await assert.rejects(
    client.completions.create({ model, prompt: "x", max_tokens: 4, temperature: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "temperature",
  );
  await assert.rejects(
    client.completions.create({ model: "no-such-model", prompt: "x" }),
    (e) => e instanceof OpenAI.NotFoundError,
  );
});

await runChecks();
