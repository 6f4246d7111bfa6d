// Drives a running `moon serve` with real npm clients through structured output: the official
// `openai` client (zodResponseFormat + chat.completions.parse, a streamed json_schema), a
// seeded set of JSON schemas (greedy and sampled, response_format on chat and guided_json on
// completions) checked with ajv, LangChain's withStructuredOutput, the Vercel AI SDK's
// generateObject/streamObject, and a 400 for a keyword the server does not support.
//
//   node structured_output.mjs http://127.0.0.1:8080/v1
//   MOON_PRINT_SCHEMAS=1 node structured_output.mjs     (lists the schema set, numbered)
//
// Expects the stories260K model (it knows nothing of JSON: the grammar alone makes the answers
// valid) and a chat template that concatenates the message contents after BOS (the test server
// passes one). Exits 0 when every check passed.
import assert from "node:assert/strict";
import { check, runChecks } from "./checks.mjs";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { ChatOpenAI } from "@langchain/openai";
import { generateObject, generateText, streamObject, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";

const baseURL = process.argv[2] ?? process.env.MOON_BASE_URL ?? "http://127.0.0.1:8080/v1";
const apiKey = process.env.MOON_API_KEY ?? "EMPTY";
const client = new OpenAI({ baseURL, apiKey, timeout: 120_000, maxRetries: 0 });
const MAX_TOKENS = 400;
const CONCURRENCY = 4;

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// Validates `value` against `schema`; throws naming the errors.
const validate = (schema, value, what = "") => {
  const fn = ajv.compile(schema);
  if (!fn(value)) {
    throw new Error(`${what} ${JSON.stringify(value)} does not meet ${JSON.stringify(schema)}: ` +
                    ajv.errorsText(fn.errors));
  }
};
// Validators for parts of a schema, compiled in the context of its root (for the $refs).
const partValidators = new Map();
function partValidator(root, part) {
  const { $id, ...rest } = part === root ? root : { ...part, $defs: root.$defs, definitions: root.definitions };
  const key = JSON.stringify(rest);
  if (!partValidators.has(key)) partValidators.set(key, ajv.compile(rest));
  return partValidators.get(key);
}
function resolveRef(root, schema) {
  for (let hops = 0; schema && typeof schema.$ref === "string" && hops < 32; hops++) {
    const m = /^#(?:\/(\$defs|definitions)\/(.+))?$/.exec(schema.$ref);
    if (!m) return schema;
    schema = m[1] ? root[m[1]][m[2]] : root;
  }
  return schema;
}
// What ajv does not check but moon promises: an object's keys come in the order its schema
// writes them, and an object whose schema has properties but leaves additionalProperties out
// gets no other keys. Returns the problems found in `value`.
function shapeProblems(root, schema, value, path = "$") {
  schema = resolveRef(root, schema);
  if (!schema || typeof schema !== "object") return [];
  if (schema.allOf?.length === 1) return shapeProblems(root, schema.allOf[0], value, path);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) {
    // Fine when some alternative that the value meets has the keys right.
    let best;
    for (const alt of alternatives) {
      const resolved = resolveRef(root, alt);
      if (!partValidator(root, resolved)(value)) continue;
      const p = shapeProblems(root, resolved, value, path);
      if (!best || p.length < best.length) best = p;
    }
    return best ?? [];
  }
  const out = [];
  if (value && typeof value === "object" && !Array.isArray(value) && schema.properties) {
    const props = Object.keys(schema.properties);
    const keys = Object.keys(value).filter((k) => props.includes(k));
    const expected = props.filter((k) => keys.includes(k));
    if (JSON.stringify(keys) !== JSON.stringify(expected)) {
      out.push(`${path}: keys ${JSON.stringify(keys)}, schema order ${JSON.stringify(expected)}`);
    }
    if (schema.additionalProperties === undefined) {
      const extra = Object.keys(value).filter((k) => !props.includes(k));
      if (extra.length) out.push(`${path}: keys ${JSON.stringify(extra)} not in properties`);
    }
    for (const k of keys) out.push(...shapeProblems(root, schema.properties[k], value[k], `${path}.${k}`));
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      const item = schema.prefixItems && i < schema.prefixItems.length ? schema.prefixItems[i] : schema.items;
      if (item && typeof item === "object") out.push(...shapeProblems(root, item, v, `${path}[${i}]`));
    });
  }
  return out;
}

const zodCheck = (schema, value) => {
  const r = schema.safeParse(value);
  assert.ok(r.success, `${JSON.stringify(value)}: ${r.success ? "" : r.error.message}`);
};


let model;
check("models.list", async () => {
  const models = await client.models.list();
  assert.ok(models.data.length >= 1);
  model = models.data[0].id;
});

// ---------------------------------------------------------------- 1. the official client
const Character = z.object({
  name: z.string().max(12),
  age: z.number().int().min(0).max(120),
  mood: z.enum(["happy", "sad", "sleepy"]),
  brave: z.boolean(),
  friends: z.array(z.string().max(8)).max(3),
});

check("openai: chat.completions.parse with zodResponseFormat", async () => {
  const r = await client.chat.completions.parse({
    model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: MAX_TOKENS,
    temperature: 0, response_format: zodResponseFormat(Character, "character"),
  });
  const choice = r.choices[0];
  assert.equal(choice.finish_reason, "stop", JSON.stringify(choice));
  assert.equal(choice.message.refusal ?? null, null);
  assert.ok(choice.message.parsed, JSON.stringify(choice.message));
  zodCheck(Character, choice.message.parsed);
  assert.deepEqual(choice.message.parsed, JSON.parse(choice.message.content));
});

check("openai: streamed chat with response_format json_schema", async () => {
  const schema = {
    type: "object",
    properties: {
      title: { type: "string", minLength: 1, maxLength: 16 },
      chapters: {
        type: "array", minItems: 1, maxItems: 3,
        items: {
          type: "object",
          properties: { n: { type: "integer", minimum: 1, maximum: 9 }, happy: { type: "boolean" } },
          required: ["n", "happy"], additionalProperties: false,
        },
      },
      ending: { enum: ["good", "bad", null] },
    },
    required: ["title", "chapters", "ending"],
    additionalProperties: false,
  };
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Lily and Tom" }], max_tokens: MAX_TOKENS,
    temperature: 0, stream: true, stream_options: { include_usage: true },
    response_format: { type: "json_schema", json_schema: { name: "story", schema, strict: true } },
  });
  let text = "";
  let finish;
  let usage;
  let deltas = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.content) { text += c.delta.content; deltas++; }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(finish, "stop", text);
  assert.ok(deltas > 1, `one delta only: ${text}`);
  assert.ok(usage && usage.completion_tokens > 0);
  validate(schema, JSON.parse(text));
});

check("openai: streamed completions with guided_json, n = 2", async () => {
  const schema = {
    type: "object",
    properties: {
      who: { enum: ["Lily", "Tom", "the dog", "日本の猫", "é\"\\"] },
      said: { type: "string", maxLength: 12 },
      times: { type: "integer", minimum: 1, maximum: 3 },
    },
    required: ["who", "said", "times"],
  };
  const stream = await client.completions.create({
    model, prompt: "Once upon a time", max_tokens: MAX_TOKENS, temperature: 1.0, seed: 7, n: 2,
    stream: true, guided_json: schema,
  });
  const texts = ["", ""];
  const finish = [];
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      texts[c.index] += c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  assert.deepEqual(finish, ["stop", "stop"], JSON.stringify(texts));
  for (const t of texts) {
    const v = JSON.parse(t);
    validate(schema, v);
    assert.deepEqual(shapeProblems(schema, schema, v), []);
  }
});

check("openai: json_object", async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: MAX_TOKENS,
    temperature: 0, response_format: { type: "json_object" },
  });
  const c = r.choices[0];
  // json_object bounds nothing, so this tiny model may run out of tokens; a stop must be JSON.
  if (c.finish_reason === "stop") {
    const v = JSON.parse(c.message.content);
    assert.ok(v !== null && typeof v === "object" && !Array.isArray(v), c.message.content);
  } else {
    assert.equal(c.finish_reason, "length");
  }
});

// zod's z.number().int() (and .nonnegative() without .max()) writes the safe-integer range,
// -9007199254740991 to 9007199254740991, as minimum/maximum: what every zod-based client sends
// for a plain integer.
const Counted = z.object({ word: z.enum(["one", "two"]), count: z.number().int(), left: z.number().int().nonnegative() });

check("openai: zod integers with their default safe-integer bounds", async () => {
  const r = await client.chat.completions.parse({
    model, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: MAX_TOKENS,
    temperature: 0, response_format: zodResponseFormat(Counted, "counted"),
  });
  assert.equal(r.choices[0].finish_reason, "stop", JSON.stringify(r.choices[0]));
  zodCheck(Counted, r.choices[0].message.parsed);
});

// RFC 3339 full-date (JSON Schema's "date") has 28 to 31 days a month, 29 in February of leap
// years only; ajv-formats checks that, for date and date-time alike.
check("format date and date-time: real calendar days", async () => {
  const bad = [];
  for (const format of ["date", "date-time"]) {
    const schema = { type: "string", format };
    const r = await client.completions.create({
      model, prompt: "Once upon a time", max_tokens: 60, temperature: 1.0, seed: 3, n: 32,
      guided_json: schema,
    });
    for (const c of r.choices) {
      assert.equal(c.finish_reason, "stop", c.text);
      if (!ajv.validate(schema, JSON.parse(c.text))) bad.push(c.text);
    }
  }
  assert.deepEqual(bad, [], `not real days: ${bad.join(" ")}`);
});

// ---------------------------------------------------------------- 2. a set of schemas
// Strings the enums and consts carry: quotes, backslashes, control characters, non-ASCII.
const TRICKY = [
  "plain", "with space", 'say "hi"', "back\\slash", "line\nbreak", "tab\tstop", "é", "日本",
  "😀", "naïve café", "a/b", "{not json}", "", "nul\u0001ctl", "ümlaut\"\\mix", "\u2028sep",
];
const PATTERNS = [
  "[a-z]{2,5}-[0-9]{1,3}", "[A-Z][a-z]{0,6}", "(cat|dog|bird)s?", "\\d{3}-\\d{4}",
  "#[0-9a-f]{6}", "v[0-9]\\.[0-9]{1,2}(\\.[0-9])?", "[ab]+c?", "(yes|no|maybe)",
];
const FORMATS = ["date", "time", "date-time", "uuid", "email", "ipv4"];
const KEYS = [
  "name", "age", "color", "items", "id", "kind", "ok", "count", "tags", "note", "when",
  "size", "é", "日本", "with space", 'qu"ote', "back\\slash", "x", "emoji😀", "level",
];

// mulberry32: the same schemas every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeGenerator(seed) {
  const r = rng(seed);
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const chance = (p) => r() < p;
  const sample = (xs, k) => {
    const copy = [...xs];
    const out = [];
    while (out.length < k && copy.length) out.push(copy.splice(Math.floor(r() * copy.length), 1)[0]);
    return out;
  };

  function stringSchema() {
    const hi = int(1, 12);
    const s = { type: "string", maxLength: hi };
    if (chance(0.5)) s.minLength = int(0, hi);
    return s;
  }
  function integerSchema() {
    const s = { type: "integer" };
    const lo = int(-1000, 1000);
    const hi = lo + int(0, 2000);
    const which = int(0, 4);
    if (which === 0) { s.minimum = lo; s.maximum = hi; }
    if (which === 1) { s.exclusiveMinimum = lo; s.exclusiveMaximum = hi + 2; }
    if (which === 2) s.minimum = lo;
    if (which === 3) s.maximum = hi;
    return s;
  }
  function leaf() {
    switch (int(0, 13)) {
      case 0: case 1: return stringSchema();
      case 2: case 3: return integerSchema();
      case 4: return chance(0.5) ? { type: "number", minimum: 0 } : { type: "number" };
      case 5: return { type: "boolean" };
      case 6: return { type: "null" };
      case 7: return { enum: sample(TRICKY, int(1, 4)) };
      case 8: {
        const pool = [...TRICKY, 0, -7, 3.5, true, false, null, 42];
        return chance(0.5) ? { const: pick(pool) } : { enum: sample(pool, int(2, 4)) };
      }
      case 9: return { type: "string", pattern: pick(PATTERNS) };
      case 10: return { type: "string", format: pick(FORMATS) };
      case 11: // the bounds apply to whichever type is chosen
        return { type: [...sample(["string", "integer", "boolean"], int(1, 2)), "null"], maxLength: int(1, 8), minimum: -5, maximum: 5 };
      case 12: return chance(0.5)
        ? { type: "integer", minimum: int(0, 10), maximum: int(11, 99), nullable: true }
        : { type: "string", maxLength: int(1, 8), nullable: true };
      default: return { type: "boolean", description: "an annotation", title: "t", default: true, examples: [false] };
    }
  }
  function node(depth, budget) {
    if (depth <= 0 || budget.leaves <= 1) { budget.leaves--; return leaf(); }
    switch (int(0, 9)) {
      case 0: case 1: case 2: return object(depth - 1, budget);
      case 3: case 4: {
        const s = { type: "array", items: node(depth - 1, budget), maxItems: int(1, 3) };
        if (chance(0.5)) s.minItems = int(0, s.maxItems);
        return s;
      }
      case 5: {
        const n = int(1, 3);
        const s = { type: "array", prefixItems: Array.from({ length: n }, () => node(depth - 1, budget)) };
        if (chance(0.5)) { s.items = false; } else { s.minItems = int(0, n); s.maxItems = n; }
        return s;
      }
      case 6: return { anyOf: Array.from({ length: int(2, 3) }, () => node(depth - 1, budget)) };
      case 7: {
        // oneOf over kinds that cannot overlap, so exactly one matches whatever is chosen.
        const kinds = sample([stringSchema(), integerSchema(), { type: "boolean" }, { type: "null" },
                              { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, maxItems: 2 }], int(2, 3));
        return { oneOf: kinds };
      }
      case 8: return { allOf: [node(depth - 1, budget)] };
      default: budget.leaves--; return leaf();
    }
  }
  function object(depth, budget) {
    const keys = sample(KEYS, int(1, 4));
    const properties = {};
    for (const k of keys) properties[k] = node(depth, budget);
    const s = { type: "object", properties };
    const required = keys.filter(() => chance(0.7));
    if (required.length) s.required = required;
    if (chance(0.5)) s.additionalProperties = false;
    return s;
  }
  return function schema() {
    const budget = { leaves: int(3, 8) };
    let s = chance(0.85) ? object(int(1, 2), budget) : node(2, budget);
    if (chance(0.25)) {
      // Move one property into $defs (or definitions) behind a $ref.
      const where = chance(0.5) ? "$defs" : "definitions";
      const props = s.properties ?? {};
      const key = Object.keys(props)[0];
      if (key !== undefined) {
        s = { ...s, [where]: { part: props[key] } };
        s.properties = { ...props, [key]: { $ref: `#/${where}/part` } };
      }
    }
    return s;
  };
}

const HAND_WRITTEN = [
  { type: "object", properties: { a: { type: "object", properties: { b: { type: "object", properties: { c: { type: "integer", minimum: 0, maximum: 9 } }, required: ["c"] } }, required: ["b"] } }, required: ["a"] },
  { type: "object", properties: { pet: { enum: ['say "hi"', "back\\slash", "line\nbreak", "é", "日本", "😀"] } }, required: ["pet"], additionalProperties: false },
  { type: "object", properties: { c: { const: 'a "quoted"\\ line\nand 日本 😀' }, d: { const: { nested: [1, "é", null] } } }, required: ["c", "d"] },
  { type: "array", prefixItems: [{ type: "integer", minimum: 1, maximum: 3 }, { type: "string", maxLength: 5 }, { type: "boolean" }], items: false },
  { type: "array", items: { type: "string", enum: ["x", "y", "z"] }, minItems: 2, maxItems: 4 },
  { type: "object", properties: { v: { anyOf: [{ type: "integer", minimum: 0, maximum: 5 }, { type: "string", maxLength: 4 }, { type: "null" }] } }, required: ["v"] },
  {
    $defs: { node: { type: "object", properties: { label: { type: "string", maxLength: 6 }, children: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 } }, required: ["label", "children"], additionalProperties: false } },
    $ref: "#/$defs/node",
  },
  { type: "object", properties: { name: { type: "string", maxLength: 8 }, next: { anyOf: [{ $ref: "#" }, { type: "null" }] } }, required: ["name", "next"], additionalProperties: false },
  { type: "object", properties: { pos: { type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 10 }, neg: { type: "integer", minimum: -50, maximum: -10 }, big: { type: "integer", minimum: 1000000 } }, required: ["pos", "neg", "big"] },
  { type: "object", properties: { t: { type: "boolean" }, n: { type: "null" }, f: { type: "number", minimum: 0 } }, required: ["t", "n", "f"] },
  { type: "object", properties: { maybe: { type: "string", maxLength: 6, nullable: true }, cnt: { type: "integer", minimum: 0, maximum: 3, nullable: true } }, required: ["maybe", "cnt"] },
  { type: "object", properties: { x: { type: ["string", "integer", "null"], maxLength: 5, minimum: 0, maximum: 99 } }, required: ["x"] },
  { type: "object", properties: { exact: { type: "string", minLength: 4, maxLength: 4 }, short: { type: "string", minLength: 1, maxLength: 2 }, empty: { type: "string", maxLength: 0 } }, required: ["exact", "short", "empty"] },
  { type: "object", properties: { code: { type: "string", pattern: "^[A-Z]{3}-[0-9]{2}$" }, hex: { type: "string", pattern: "#[0-9a-f]{6}" } }, required: ["code", "hex"] },
  { type: "object", properties: Object.fromEntries(FORMATS.map((f) => [f, { type: "string", format: f }])), required: FORMATS },
  { type: "object", properties: { "é": { type: "integer", minimum: 0, maximum: 9 }, "日本": { type: "boolean" }, 'qu"ote': { type: "null" }, "back\\slash": { const: 1 }, "new\nline": { type: "boolean" } }, required: ["é", "日本", 'qu"ote', "back\\slash", "new\nline"] },
  { type: "object", properties: { a: { type: "integer", minimum: 0, maximum: 9 } }, additionalProperties: { type: "integer", minimum: 0, maximum: 9 }, required: ["a"] },
  { type: "object", properties: { only: { type: "boolean" } }, additionalProperties: false },
  { type: "object", properties: { s: { oneOf: [{ type: "string", maxLength: 3 }, { type: "integer", minimum: 0, maximum: 9 }] } }, required: ["s"] },
  { type: "object", properties: { w: { allOf: [{ type: "integer", minimum: 5, maximum: 6 }] } }, required: ["w"] },
  { definitions: { color: { enum: ["red", "green", "blue"] } }, type: "object", properties: { fg: { $ref: "#/definitions/color" }, bg: { $ref: "#/definitions/color" } }, required: ["fg", "bg"] },
  { $schema: "https://json-schema.org/draft/2020-12/schema", $id: "https://example.com/s", title: "T", description: "D", type: "object", properties: { k: { type: "integer", minimum: 0, maximum: 1, default: 0, examples: [1] } }, required: ["k"] },
  { type: "array", items: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, minItems: 1, maxItems: 2 }, minItems: 1, maxItems: 3 },
  { type: "array", prefixItems: [{ const: "head" }, { type: "null" }], minItems: 2, maxItems: 2 },
  { enum: ["just a string", 7, null, true, [1, 2], { k: "v" }] },
  { type: "integer", minimum: -3, maximum: 3 },
  { type: "string", format: "uuid" },
  { type: "boolean" },
  { type: "object", properties: { list: { type: "array", items: { type: "object", properties: { id: { type: "integer", minimum: 0, maximum: 99 }, tag: { enum: ["a", "b"] } }, required: ["id", "tag"], additionalProperties: false }, minItems: 1, maxItems: 3 } }, required: ["list"], additionalProperties: false },
  { type: "object", properties: { mixed: { type: "array", items: { anyOf: [{ type: "integer", minimum: 0, maximum: 9 }, { type: "boolean" }, { enum: ["日本", "é"] }] }, maxItems: 4 } }, required: ["mixed"] },
];

const GENERATED = 200;
const generate = makeGenerator(20240611);
const SCHEMAS = [...HAND_WRITTEN, ...Array.from({ length: GENERATED }, generate)];
if (process.env.MOON_PRINT_SCHEMAS) {
  SCHEMAS.forEach((schema, i) => console.log(i, JSON.stringify(schema)));
  process.exit(0);
}
const PROMPTS = ["Once upon a time", "Lily and Tom", "The little dog", "One day", "Tim had a"];

// Runs `fns` (thunks) at most `limit` at a time; resolves to their results in order.
async function pool(fns, limit) {
  const out = new Array(fns.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, async () => {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]();
    }
  }));
  return out;
}

// The ways a request carries the schema: mostly chat with response_format and completions
// with guided_json (an object, or a string holding one), now and then vLLM's
// structured_outputs or llama.cpp's json_schema.
const WAYS = [
  { how: "chat response_format", chat: (schema, i) => ({ response_format: { type: "json_schema", json_schema: { name: `s${i}`, schema, strict: true } } }) },
  { how: "completions guided_json (object)", completion: (schema) => ({ guided_json: schema }) },
  { how: "chat response_format", chat: (schema, i) => ({ response_format: { type: "json_schema", json_schema: { name: `s${i}`, schema } } }) },
  { how: "completions guided_json (string)", completion: (schema) => ({ guided_json: JSON.stringify(schema) }) },
  { how: "chat response_format", chat: (schema, i) => ({ response_format: { type: "json_schema", json_schema: { name: `s${i}`, schema, strict: true } } }) },
  { how: "completions guided_json (object)", completion: (schema) => ({ guided_json: schema }) },
  { how: "chat structured_outputs.json", chat: (schema) => ({ structured_outputs: { json: schema } }) },
  { how: "completions json_schema (llama.cpp)", completion: (schema) => ({ json_schema: schema }) },
];

// One request for schema `i`, greedy or sampled (n = 2, seeded).
async function ask(i, sampled) {
  const schema = SCHEMAS[i];
  const prompt = PROMPTS[i % PROMPTS.length];
  const n = sampled ? 2 : 1;
  const common = { model, max_tokens: MAX_TOKENS, ...(sampled ? { temperature: 1.0, seed: 1000 + i, n } : { temperature: 0 }) };
  const way = WAYS[(i + (sampled ? 3 : 0)) % WAYS.length];
  if (way.chat) {
    const r = await client.chat.completions.create({
      ...common, messages: [{ role: "user", content: prompt }], ...way.chat(schema, i),
    });
    return { how: way.how, want: n, outs: r.choices.map((c) => ({ text: c.message.content, finish: c.finish_reason })) };
  }
  const r = await client.completions.create({ ...common, prompt, ...way.completion(schema) });
  return { how: way.how, want: n, outs: r.choices.map((c) => ({ text: c.text, finish: c.finish_reason })) };
}

check(`json schemas: ${SCHEMAS.length} schemas, greedy and sampled, valid when stopped`, async () => {
  const jobs = [];
  for (let i = 0; i < SCHEMAS.length; i++) {
    for (const sampled of [false, true]) {
      jobs.push(async () => {
        try {
          return { i, sampled, ...(await ask(i, sampled)) };
        } catch (e) {
          return { i, sampled, error: `${e.status ?? ""} ${e.message}` };
        }
      });
    }
  }
  const results = await pool(jobs, CONCURRENCY);
  const problems = [];
  const unstopped = [];
  let outputs = 0;
  let stopped = 0;
  for (const res of results) {
    const tag = `schema ${res.i} ${res.sampled ? "sampled" : "greedy"}`;
    if (res.error) { problems.push(`${tag}: request failed: ${res.error}\n  schema ${JSON.stringify(SCHEMAS[res.i])}`); continue; }
    if (res.outs.length !== res.want) problems.push(`${tag}: ${res.outs.length} choices, asked for ${res.want}`);
    for (const o of res.outs) {
      outputs++;
      if (o.finish !== "stop") { unstopped.push(`${tag} (${res.how}) finish_reason ${o.finish}: ${JSON.stringify(o.text)}`); continue; }
      stopped++;
      try {
        const value = JSON.parse(o.text);
        validate(SCHEMAS[res.i], value, "output");
        const shape = shapeProblems(SCHEMAS[res.i], SCHEMAS[res.i], value);
        if (shape.length) throw new Error(`${shape.join("; ")} in schema ${JSON.stringify(SCHEMAS[res.i])}`);
      } catch (e) {
        problems.push(`${tag} (${res.how}): ${JSON.stringify(o.text)}: ${e.message}`);
      }
    }
  }
  const rate = outputs ? stopped / outputs : 0;
  console.log(`     ${SCHEMAS.length} schemas, ${results.length} requests, ${outputs} outputs, ` +
              `${stopped} stopped (${(100 * rate).toFixed(1)}%), ${problems.length} problems`);
  for (const u of unstopped) console.log(`     not stopped: ${u}`);
  assert.ok(problems.length === 0, `\n${problems.join("\n")}`);
  assert.ok(rate >= 0.95, `only ${(100 * rate).toFixed(1)}% of outputs stopped (want 95%)`);
});

// ---------------------------------------------------------------- 3. LangChain
const Pet = z.object({
  name: z.string().max(10),
  kind: z.enum(["cat", "dog", "bird"]),
  legs: z.number().int().min(0).max(4),
  likes: z.array(z.enum(["fish", "balls", "naps"])).max(3),
  friendly: z.boolean(),
});

check("langchain: ChatOpenAI.withStructuredOutput(zod, jsonSchema)", async () => {
  const llm = new ChatOpenAI({
    model, apiKey, temperature: 0, maxTokens: MAX_TOKENS, maxRetries: 0,
    configuration: { baseURL },
  });
  const structured = llm.withStructuredOutput(Pet, { method: "jsonSchema", name: "pet" });
  const pet = await structured.invoke("Once upon a time");
  zodCheck(Pet, pet);
});

check("langchain: withStructuredOutput streamed", async () => {
  const llm = new ChatOpenAI({
    model, apiKey, temperature: 0.7, maxTokens: MAX_TOKENS, maxRetries: 0, streaming: true,
    configuration: { baseURL }, modelKwargs: { seed: 9 },
  });
  const structured = llm.withStructuredOutput(Pet, { method: "jsonSchema", name: "pet" });
  let last;
  let chunks = 0;
  for await (const partial of await structured.stream("Once upon a time")) {
    last = partial;
    chunks++;
  }
  assert.ok(chunks >= 1);
  zodCheck(Pet, last);
});

// ---------------------------------------------------------------- 4. the Vercel AI SDK
const moon = createOpenAICompatible({ name: "moon", baseURL, apiKey, supportsStructuredOutputs: true });

check("ai sdk: generateObject", async () => {
  const { object, finishReason } = await generateObject({
    model: moon(model), schema: Pet, schemaName: "pet", prompt: "Once upon a time",
    temperature: 0, maxOutputTokens: MAX_TOKENS, maxRetries: 0,
  });
  assert.equal(finishReason, "stop");
  zodCheck(Pet, object);
});

check("ai sdk: streamObject", async () => {
  const errors = [];
  const result = streamObject({
    model: moon(model), schema: Character, schemaName: "character", prompt: "Lily and Tom",
    temperature: 0, maxOutputTokens: MAX_TOKENS, maxRetries: 0,
    onError: ({ error }) => errors.push(error),
  });
  let partials = 0;
  for await (const _ of result.partialObjectStream) partials++;
  const object = await result.object;
  assert.deepEqual(errors, []);
  assert.ok(partials > 1, `${partials} partial objects`);
  assert.equal(await result.finishReason, "stop");
  zodCheck(Character, object);
});

// ---------------------------------------------------------------- 5. tool calls
// tool_choice "required" or a named function: the grammar makes even this story model call,
// with arguments that meet the function's parameters. parallel_tool_calls is off: allowed
// several calls (up to eight), this model goes on calling until max_tokens.
const weatherTool = {
  type: "function",
  function: {
    name: "get_weather", description: "Current weather in a city",
    parameters: { type: "object", properties: {
      city: { type: "string", maxLength: 16 }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"], additionalProperties: false },
  },
};
const addTool = {
  type: "function",
  function: {
    name: "add", parameters: { type: "object", properties: {
      a: { type: "integer", minimum: 0, maximum: 99 }, b: { type: "integer", minimum: -9, maximum: 9 } },
      required: ["a", "b"], additionalProperties: false },
  },
};
const toolsByName = { get_weather: weatherTool, add: addTool };
const checkCall = (call) => {
  assert.equal(call.type, "function");
  assert.match(call.id, /^[A-Za-z0-9]{9}$/);
  const tool = toolsByName[call.function.name];
  assert.ok(tool, `unknown tool ${call.function.name}`);
  validate(tool.function.parameters, JSON.parse(call.function.arguments), call.function.name);
};

check("openai: tool_choice required and named, greedy and sampled", async () => {
  for (const [tool_choice, extra] of [["required", { temperature: 0 }],
                                      ["required", { temperature: 1.0, n: 3, seed: 5 }],
                                      [{ type: "function", function: { name: "add" } }, { temperature: 0.8, n: 2, seed: 1 }]]) {
    const r = await client.chat.completions.create({
      model, messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools: [weatherTool, addTool], tool_choice, parallel_tool_calls: false, max_tokens: MAX_TOKENS,
      ...extra,
    });
    for (const c of r.choices) {
      assert.equal(c.finish_reason, "tool_calls", JSON.stringify(c));
      assert.equal(c.message.content, null);
      assert.ok(c.message.tool_calls.length >= 1);
      for (const call of c.message.tool_calls) {
        checkCall(call);
        if (typeof tool_choice === "object") assert.equal(call.function.name, "add");
      }
    }
  }
});

check("openai: streamed tool call", async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content: "Add 2 and 3" }], tools: [weatherTool, addTool],
    tool_choice: "required", parallel_tool_calls: false, stream: true, max_tokens: MAX_TOKENS,
    temperature: 0,
  });
  const calls = [];
  let finish;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      for (const d of c.delta.tool_calls ?? []) {
        calls[d.index] ??= { id: d.id, type: d.type, function: { name: "", arguments: "" } };
        if (d.function?.name) calls[d.index].function.name += d.function.name;
        if (d.function?.arguments) calls[d.index].function.arguments += d.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(finish, "tool_calls");
  assert.ok(calls.length >= 1);
  calls.forEach(checkCall);
});

check("ai sdk: generateText with toolChoice required", async () => {
  const { toolCalls, finishReason } = await generateText({
    model: moon(model), prompt: "What is the weather in Paris?", temperature: 0,
    maxOutputTokens: MAX_TOKENS, maxRetries: 0, toolChoice: "required",
    providerOptions: { moon: { parallel_tool_calls: false } },  // passed through to the body
    tools: {
      get_weather: tool({ description: "Current weather in a city",
        inputSchema: z.object({ city: z.string().max(16), unit: z.enum(["celsius", "fahrenheit"]) }) }),
    },
  });
  assert.equal(finishReason, "tool-calls");
  assert.ok(toolCalls.length >= 1);
  for (const call of toolCalls) {
    assert.equal(call.toolName, "get_weather");
    z.object({ city: z.string().max(16), unit: z.enum(["celsius", "fahrenheit"]) }).parse(call.input);
  }
});

// ---------------------------------------------------------------- 6. errors
check("errors: an unsupported keyword is a 400 naming it", async () => {
  await assert.rejects(
    client.chat.completions.create({
      model, messages: [{ role: "user", content: "x" }], max_tokens: 8,
      response_format: { type: "json_schema", json_schema: { name: "bad", schema: { type: "string", not: {} }, strict: true } },
    }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /\bnot\b/.test(e.message),
  );
  await assert.rejects(
    client.completions.create({ model, prompt: "x", max_tokens: 8, guided_json: { type: "object", patternProperties: {} } }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /patternProperties/.test(e.message),
  );
});

await runChecks();
