// The official TypeScript MCP SDK's client driving a local `assay mcp serve` (see
// local_mcp.rs): over stdio (the SDK's StdioClientTransport spawns the server, as Claude
// Desktop or Cursor would) or over Streamable HTTP (with a bearer header).
//
//   node mcp-stdio-client.mjs < plan.json
//
// The plan (JSON on stdin, so no secret is on argv):
//   { "transport": "stdio", "command": "/path/assay", "args": ["mcp", "serve"], "env": {…},
//     or "transport": "http", "url": "http://127.0.0.1:N/mcp", "headers": {…},
//     "calls": [{ "name": "list_workflows", "arguments": {}, "afterMs": 0 }, …] }
// `afterMs` waits that long before the call (a long session's pacing); an argument
// "${N.field}" is that field of call N's structured result.
//
// It lists the tools, makes the calls in order and prints ONE JSON object on stdout:
//   { server, tools: [names], calls: [{ name, isError, text, structured, at }], stderr }
// A tool error is reported (isError), not fatal; a protocol error exits 1 with the
// error on stderr. Asserting is the Rust test's job: this script only reports.
//
// `@modelcontextprotocol/sdk` resolves from a `node_modules` next to this file: the test
// runs a copy of it in a directory whose `node_modules` links to scripts/node-tools'.

import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const CLIENT = { name: "assay-stdio-e2e", version: "1.32.2" };

function fail(message) {
  process.stderr.write(`mcp-stdio-client: ${message}\n`);
  process.exit(1);
}

const plan = JSON.parse(readFileSync(0, "utf8"));
let serverStderr = "";

function transportFor(plan) {
  if (plan.transport === "stdio") {
    const transport = new StdioClientTransport({
      command: plan.command,
      args: plan.args ?? [],
      env: plan.env ?? {},
      stderr: "pipe",
    });
    // The stream exists before start(); keep everything the server says on stderr.
    transport.stderr?.on("data", (chunk) => {
      serverStderr += chunk.toString();
    });
    return transport;
  }
  if (plan.transport === "http") {
    return new StreamableHTTPClientTransport(new URL(plan.url), {
      requestInit: { headers: plan.headers ?? {} },
    });
  }
  fail(`unknown transport ${plan.transport}`);
}

// A string argument "${N.field}" is the `field` of call N's structured result (e.g. the
// execution a run_workflow started).
function resolve(args, calls) {
  const out = {};
  for (const [key, value] of Object.entries(args)) {
    const m = typeof value === "string" ? /^\$\{(\d+)\.(\w+)\}$/.exec(value) : null;
    out[key] = m ? calls[Number(m[1])]?.structured?.[m[2]] : value;
  }
  return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const transport = transportFor(plan);
  const client = new Client(CLIENT, { capabilities: {} });
  const started = Date.now();
  try {
    await client.connect(transport);
  } catch (error) {
    throw new Error(`connect failed: ${error?.stack ?? error}\nserver stderr:\n${serverStderr}`);
  }
  const server = client.getServerVersion();

  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);

  const calls = [];
  for (const call of plan.calls ?? []) {
    if (call.afterMs) {
      await sleep(call.afterMs);
    }
    const at = Date.now() - started;
    const args = resolve(call.arguments ?? {}, calls);
    const result = await client.callTool({ name: call.name, arguments: args });
    calls.push({
      name: call.name,
      isError: result.isError === true,
      text: (result.content ?? []).map((c) => c.text ?? "").join("\n"),
      structured: result.structuredContent ?? null,
      at,
    });
  }
  await client.close();
  return { server: server?.name, tools, calls, stderr: serverStderr };
}

main().then(
  (seen) => {
    process.stdout.write(`${JSON.stringify(seen)}\n`);
    process.exit(0);
  },
  (error) => fail(`${error?.stack ?? String(error)}\nserver stderr:\n${serverStderr}`),
);
