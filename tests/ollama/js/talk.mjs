// The official Ollama JavaScript client, unchanged, against a server: node talk.mjs URL MODEL
// Prints one JSON object with what each call gave back.
import { Ollama } from "ollama";

const [host, model] = process.argv.slice(2);
const client = new Ollama({ host });
const result = {};

result.version = (await client.version()).version;
result.models = (await client.list()).models.map((m) => m.name);
result.show = (await client.show({ model })).details.format;
const options = { temperature: 0, num_predict: 8, seed: 1 };
const chat = await client.chat({
  model, messages: [{ role: "user", content: "Say hello." }], options,
});
result.chat = { content: chat.message.content, done: chat.done, eval_count: chat.eval_count };
let streamed = "";
let last = null;
for await (const part of await client.chat({
  model, messages: [{ role: "user", content: "Count to three." }], options, stream: true,
})) {
  streamed += part.message.content;
  last = part;
}
result.stream = { content: streamed, done: last.done, done_reason: last.done_reason };
const generated = await client.generate({ model, prompt: "The sky is", options });
result.generate = { response: generated.response, total_duration: generated.total_duration };
result.embed = (await client.embed({ model: "use:multilingual", input: ["Bonjour"] })).embeddings[0].length;
try {
  await client.chat({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] });
  result.missing = "no error";
} catch (err) {
  result.missing = { name: err.name, status: err.status_code, message: err.error };
}
console.log(JSON.stringify(result));
