// The official TypeScript MCP SDK's client driving a real `assay server` (see mcp_sdk.rs).
//
//   ASSAY_TOKEN=… node mcp-sdk-client.mjs <mcp url> <http|sse> < workflow.yaml
//
// The token comes from the environment only (never argv: argv is visible to every local
// user). The workflow YAML comes on stdin. The script lists the tools, creates the
// workflow, runs it, waits, reads its log, lists its artifacts, reads the first XML one
// and gets the execution. It prints ONE JSON object with what it saw on stdout and exits
// 0; on any protocol error or tool error it writes the error to stderr and exits 1.
// Asserting is the Rust test's job: this script only reports.
//
// `@modelcontextprotocol/sdk` resolves from a `node_modules` next to this file: the test
// runs a copy of it in a directory whose `node_modules` links to scripts/node-tools'.

import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const CLIENT = { name: "assay-sdk-e2e", version: "1.32.2" };

function fail(message) {
  process.stderr.write(`mcp-sdk-client: ${message}\n`);
  process.exit(1);
}

const [url, kind] = process.argv.slice(2);
const token = process.env.ASSAY_TOKEN;
if (!url || !["http", "sse"].includes(kind)) {
  fail("usage: ASSAY_TOKEN=… node mcp-sdk-client.mjs <mcp url> <http|sse> < workflow.yaml");
}
if (!token) {
  fail("ASSAY_TOKEN is not set");
}
const yaml = readFileSync(0, "utf8");

// In SDK 1.32.2 both transports send `requestInit.headers` on every request: the SSE
// transport adds them to its EventSource GET as well as to the POSTs.
const requestInit = { headers: { Authorization: `Bearer ${token}` } };
const transport =
  kind === "http"
    ? new StreamableHTTPClientTransport(new URL(url), { requestInit })
    : new SSEClientTransport(new URL(url), { requestInit });

const client = new Client(CLIENT, { capabilities: {} });

/** Calls a tool; a tool error (`isError`) is a failure of this run. */
async function call(name, args) {
  const result = await client.callTool({ name, arguments: args });
  if (result.isError) {
    const text = (result.content ?? []).map((c) => c.text ?? "").join("\n");
    throw new Error(`${name} returned an error: ${text}`);
  }
  if (!result.structuredContent) {
    throw new Error(`${name} returned no structuredContent: ${JSON.stringify(result)}`);
  }
  return result.structuredContent;
}

async function main() {
  await client.connect(transport);
  const server = client.getServerVersion();

  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);

  const created = await call("create_workflow", { yaml });
  const started = await call("run_workflow", { workflowName: created.name });
  const waited = await call("wait_for_executions", {
    executionIds: [started.id],
    timeoutSeconds: 120,
  });
  const logs = await call("fetch_execution_logs", { executionId: started.id });
  const listed = await call("list_artifacts", { executionId: started.id });
  const artifacts = listed.artifacts.map((a) => a.path);
  const report = artifacts.find((p) => p.endsWith(".xml"));
  if (!report) {
    throw new Error(`no XML artifact among ${JSON.stringify(artifacts)}`);
  }
  const read = await call("read_artifact", { executionId: started.id, fileName: report });
  const info = await call("get_execution_info", { executionId: started.id });
  await client.close();

  return {
    client: `${CLIENT.name}/${CLIENT.version}`,
    transport: kind,
    server: server?.name,
    tools,
    workflow: created.name,
    execution: { id: started.id, name: started.name },
    allFinished: waited.allFinished,
    waitedStatus: waited.executions.map((e) => e.status),
    status: info.status,
    junit: info.junit ?? null,
    digest: info.digest ?? null,
    log: logs.lines.map((l) => l.text).join("\n"),
    artifacts,
    artifact: { path: read.path, text: (read.lines ?? []).map((l) => l.text).join("\n") },
  };
}

main().then(
  (seen) => {
    process.stdout.write(`${JSON.stringify(seen)}\n`);
    process.exit(0);
  },
  (error) => fail(error?.stack ?? String(error)),
);
