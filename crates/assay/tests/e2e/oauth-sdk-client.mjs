// The official TypeScript MCP SDK's client, signing in to a real `assay server` with OAuth
// through an OAuthClientProvider (see oauth_sdk.rs):
//
//   ASSAY_OAUTH_EMAIL=… ASSAY_OAUTH_PASSWORD=… node oauth-sdk-client.mjs <mcp url> <dcr|cimd> <workflow>
//
// `cimd` also needs ASSAY_CIMD_URL: the https URL of the client's Client ID Metadata
// Document (the Rust test serves it, see oauth_support.rs), which the SDK uses as client_id.
//
// What it does, as an MCP client application would:
//  1. connects without credentials: the 401's WWW-Authenticate starts the SDK's discovery
//     (RFC 9728 → RFC 8414), registration (DCR, or the CIMD URL as client_id), PKCE and the
//     authorization request; the "browser" (oauth-browser.mjs) signs in and consents; the
//     app hands the code to `transport.finishAuth` and connects again;
//  2. lists the tools and calls a read tool;
//  3. refreshes: once explicitly (`auth()` with a stored refresh token), once as the SDK
//     does it by itself when the server refuses a revoked access token with 401;
//  4. step-up: `run_workflow` with an mcp:read token gets 403 insufficient_scope. SDK
//     1.32.2 first calls `auth()` with the new scope, which refreshes (same scope, a
//     refresh never widens it), retries, gets the same 403 and gives up with "Server
//     returned 403 after trying upscoping". The app then does what a real one must: drops
//     the tokens, calls `auth()` with the scope the challenge named, lets the user consent,
//     exchanges the code and retries the call.
// It prints ONE JSON object with what it saw and exits 0; on an unexpected error it writes
// it to stderr and exits 1. Asserting is the Rust test's job.

import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { signIn, CookieJar } from "./oauth-browser.mjs";

const CLIENT = { name: "assay-sdk-oauth-e2e", version: "1.32.2" };
const REDIRECT = "http://127.0.0.1:38517/callback";

function fail(message) {
  process.stderr.write(`oauth-sdk-client: ${message}\n`);
  process.exit(1);
}

const [url, mode, workflow] = process.argv.slice(2);
const email = process.env.ASSAY_OAUTH_EMAIL;
const password = process.env.ASSAY_OAUTH_PASSWORD;
if (!url || !["dcr", "cimd"].includes(mode) || !workflow || !email || !password) {
  fail("usage: ASSAY_OAUTH_EMAIL=… ASSAY_OAUTH_PASSWORD=… node oauth-sdk-client.mjs <mcp url> <dcr|cimd> <workflow>");
}

/** The claims of a JWT (no verification: the client only reports what it was given). */
function claims(jwt) {
  const [, payload] = jwt.split(".");
  const c = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  return { scope: c.scope, aud: c.aud, client_id: c.client_id, sub: c.sub, iss: c.iss };
}

/** An OAuthClientProvider for a headless app: in-memory storage, the browser scripted. */
class HeadlessProvider {
  constructor(clientMetadataUrl) {
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this.jar = new CookieJar();
    this.client = undefined;
    this.stored = undefined;
    this.verifier = undefined;
    this.expectedState = undefined;
    this.code = undefined;
    this.registrations = [];
    this.authorizations = [];
    this.issued = [];
  }
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return {
      client_name: "Assay SDK OAuth e2e (DCR)",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this.expectedState = randomBytes(16).toString("base64url");
    return this.expectedState;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
    this.registrations.push({ client_id: info.client_id });
  }
  tokens() {
    return this.stored;
  }
  saveTokens(tokens) {
    this.stored = tokens;
    this.issued.push({
      ...claims(tokens.access_token),
      token_scope: tokens.scope,
      expires_in: tokens.expires_in,
      has_refresh_token: typeof tokens.refresh_token === "string",
    });
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  invalidateCredentials(what) {
    if (what === "all" || what === "tokens") this.stored = undefined;
    if (what === "all" || what === "client") this.client = undefined;
    if (what === "all" || what === "verifier") this.verifier = undefined;
  }
  /** The "browser": signs in (once; the jar keeps the session) and consents. */
  async redirectToAuthorization(authorizationUrl) {
    const p = authorizationUrl.searchParams;
    this.authorizations.push({
      client_id: p.get("client_id"),
      scope: p.get("scope"),
      resource: p.get("resource"),
      code_challenge_method: p.get("code_challenge_method"),
      redirect_uri: p.get("redirect_uri"),
    });
    const callback = new URL(await signIn(authorizationUrl.href, { email, password, jar: this.jar }));
    if (callback.origin + callback.pathname !== REDIRECT) {
      throw new Error(`sent to ${callback.href}, not to the redirect URI`);
    }
    if (callback.searchParams.get("error")) {
      throw new Error(`authorization refused: ${callback.search}`);
    }
    if (callback.searchParams.get("state") !== this.expectedState) {
      throw new Error(`state mismatch: ${callback.search}`);
    }
    this.authorizations[this.authorizations.length - 1].iss = callback.searchParams.get("iss");
    this.code = callback.searchParams.get("code");
  }
  takeCode() {
    const code = this.code;
    this.code = undefined;
    if (!code) throw new Error("no authorization code was received");
    return code;
  }
}

/** fetch that remembers each MCP endpoint answer's status and challenge. */
function recordingFetch(seen) {
  return async (input, init) => {
    const res = await fetch(input, init);
    seen.push({
      url: String(input instanceof Request ? input.url : input),
      method: init?.method ?? "GET",
      status: res.status,
      wwwAuthenticate: res.headers.get("www-authenticate"),
    });
    return res;
  };
}

async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  if (result.isError) {
    const text = (result.content ?? []).map((c) => c.text ?? "").join("\n");
    throw new Error(`${name} returned an error: ${text}`);
  }
  return result.structuredContent;
}

async function main() {
  const metadataDocumentUrl = mode === "cimd" ? process.env.ASSAY_CIMD_URL : undefined;
  if (mode === "cimd" && !metadataDocumentUrl) fail("cimd needs ASSAY_CIMD_URL");
  const provider = new HeadlessProvider(metadataDocumentUrl);
  const seen = [];
  const transportOptions = { authProvider: provider, fetch: recordingFetch(seen) };

  // 1. Connect; the 401 starts the flow; finish it and connect again.
  let client;
  let transport;
  let unauthorizedFirst = false;
  for (let attempt = 0; attempt < 2 && !client; attempt++) {
    transport = new StreamableHTTPClientTransport(new URL(url), transportOptions);
    const candidate = new Client(CLIENT, { capabilities: {} });
    try {
      await candidate.connect(transport);
      client = candidate;
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || attempt > 0) throw error;
      unauthorizedFirst = true;
      await transport.finishAuth(provider.takeCode());
    }
  }
  const mcp = (s) => s.url === url;
  const firstChallenge = seen.find((s) => mcp(s) && s.status === 401) ?? null;

  // 2. Tools and a read tool.
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const listed = await call(client, "list_workflows", {});
  const workflows = (listed.items ?? listed.workflows ?? []).map((w) => w.name);

  // 3a. An explicit refresh, as an app does before a long job.
  const beforeRefresh = provider.tokens();
  const refreshResult = await auth(provider, { serverUrl: url });
  const afterRefresh = provider.tokens();
  await call(client, "list_workflows", {});

  // 3b. The server refuses the access token (revoked, RFC 7009): the SDK refreshes by itself.
  const metadata = await (await fetch(new URL("/.well-known/oauth-authorization-server", url))).json();
  const revoke = await fetch(metadata.revocation_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      token: afterRefresh.access_token,
      token_type_hint: "access_token",
      client_id: provider.client.client_id,
    }).toString(),
  });
  const seenBefore = seen.length;
  await call(client, "list_workflows", {});
  const afterRevocation = seen.slice(seenBefore).filter(mcp).map((s) => s.status);
  const autoRefreshed = provider.tokens();

  // 4. Step-up: run_workflow needs mcp:run.
  const stepSeen = seen.length;
  let sdkStepUpError = null;
  try {
    await call(client, "run_workflow", { workflowName: workflow });
  } catch (error) {
    sdkStepUpError = String(error?.message ?? error);
  }
  const forbidden = seen.slice(stepSeen).find((s) => mcp(s) && s.status === 403) ?? null;
  let started = null;
  let stepUpScope = null;
  if (forbidden) {
    // What the application does: the challenge names the scope; drop the tokens (a
    // refresh can never widen them), authorize again with it, consent, exchange, retry.
    stepUpScope = /scope="([^"]*)"/.exec(forbidden.wwwAuthenticate ?? "")?.[1] ?? null;
    provider.invalidateCredentials("tokens");
    const redirect = await auth(provider, { serverUrl: url, scope: stepUpScope });
    if (redirect !== "REDIRECT") throw new Error(`step-up auth() returned ${redirect}`);
    const authorized = await auth(provider, { serverUrl: url, authorizationCode: provider.takeCode() });
    if (authorized !== "AUTHORIZED") throw new Error(`step-up code exchange returned ${authorized}`);
    started = await call(client, "run_workflow", { workflowName: workflow });
  }
  await client.close();

  return {
    client: `${CLIENT.name}/${CLIENT.version}`,
    mode,
    clientId: provider.client?.client_id ?? null,
    registrations: provider.registrations,
    unauthorizedFirst,
    firstChallenge,
    authorizations: provider.authorizations,
    issued: provider.issued,
    tools,
    workflows,
    refresh: {
      result: refreshResult,
      changedAccessToken: beforeRefresh.access_token !== afterRefresh.access_token,
      changedRefreshToken: beforeRefresh.refresh_token !== afterRefresh.refresh_token,
    },
    revocationStatus: revoke.status,
    afterRevocation,
    autoRefreshed: autoRefreshed.access_token !== afterRefresh.access_token,
    stepUp: { sdkError: sdkStepUpError, challenge: forbidden?.wwwAuthenticate ?? null, scope: stepUpScope },
    started: started ? { id: started.id, name: started.name } : null,
    metadataDocumentUrl: metadataDocumentUrl ?? null,
  };
}

main().then(
  (seen) => {
    process.stdout.write(`${JSON.stringify(seen)}\n`);
    process.exit(0);
  },
  (error) => fail(error?.stack ?? String(error)),
);
