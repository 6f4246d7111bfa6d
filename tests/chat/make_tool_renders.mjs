// Writes tests/chat/testdata/tool_renders.jsonl: the shared chat templates that take tools,
// rendered with tools and tool-call turns by Hugging Face's reference Jinja implementation
// (@huggingface/jinja 0.5.11, the renderer of ../shared/chat-templates/golden.jsonl), as the
// oracle for tests/chat/tool_render_test.cpp. Regenerate with:
//   cd /tmp && npm install @huggingface/jinja@0.5.11 &&
//   NODE_PATH=/tmp/node_modules node tests/chat/make_tool_renders.mjs ../shared > tests/chat/testdata/tool_renders.jsonl
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.NODE_PATH + "/");
const { Template } = require("@huggingface/jinja");
const data = process.argv[2] ?? "../shared";

// Keys deliberately not in alphabetical order: the render must keep the client's order.
const tools = [
  { type: "function", function: { name: "get_weather", description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string", description: "City name" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, required: ["city"] } } },
  { type: "function", function: { name: "add", description: "Adds two integers",
    parameters: { type: "object", properties: { b: { type: "integer" }, a: { type: "integer" } },
      required: ["b", "a"] } } },
];
const conversations = {
  "tools-question": [
    { role: "user", content: "What is the weather in Paris?" },
  ],
  "tools-system-question": [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Add 2 and 3." },
  ],
  "tools-history": [
    { role: "user", content: "What is the weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [{ id: "call12345", type: "function",
      function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } } }] },
    { role: "tool", content: "{\"temperature\": 20}", tool_call_id: "call12345" },
    { role: "assistant", content: "It is 20 degrees in Paris." },
    { role: "user", content: "And 2 + 3?" },
  ],
};
const templates = [
  ["Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>"],
  ["Qwen-Qwen3-0.6B.jinja", "", "<|im_end|>"],
  ["meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"],
  ["meta-llama-Llama-3.2-3B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"],
  ["mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>"],
  ["ibm-granite-granite-3.3-2B-Instruct.jinja", "", "<|end_of_text|>"],
];
// @huggingface/jinja's strftime_now reads the clock; moon's formats date_string. Passing
// today's date as date_string makes both say the same day.
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const now = new Date();
const today = `${String(now.getDate()).padStart(2, "0")} ${MONTHS[now.getMonth()]} ${now.getFullYear()}`;
for (const [name, bos, eos] of templates) {
  const template = new Template(readFileSync(`${data}/chat-templates/${name}`, "utf8"));
  for (const [conversation, messages] of Object.entries(conversations)) {
    const row = { template: name, conversation, messages, tools, add_generation_prompt: true,
      bos_token: bos, eos_token: eos, date_string: today };
    try {
      row.expected = template.render(row);
    } catch (e) {
      row.expected_error = String(e.message ?? e);
    }
    console.log(JSON.stringify(row));
  }
}
