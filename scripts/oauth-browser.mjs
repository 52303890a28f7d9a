// A headless stand-in for the person at the browser in Assay's OAuth sign-in: opens an
// authorization URL, signs in through the login form, approves on the consent page and
// returns (or visits) the URL the server finally redirects to — the client's callback with
// `code`, `state` and `iss`.
//
// It behaves like a browser and nothing more: a cookie jar, `Origin` on form POSTs, every
// hidden field of the form sent back as rendered (the CSRF token among them), 303s
// followed by GET. It knows the pages only by their form fields (`action`=login with
// `email` and `password`; `granted_scope` radios and the `action`=approve button), so a
// change of the pages' look does not break it, and a missing CSRF field would.
//
// Used by scripts/conformance-authz (as a command) and by the end-to-end test of the
// TypeScript SDK client (crates/assay/tests/e2e/oauth-sdk-client.mjs, as a module).
//
//   ASSAY_OAUTH_EMAIL=… ASSAY_OAUTH_PASSWORD=… node oauth-browser.mjs <authorization URL>
//
// prints the callback URL it was sent to, after GETting it (so a waiting callback server
// sees the request); exits 1 with the reason on stderr otherwise.

const MAX_STEPS = 10;

/** `&amp;` and friends, as `pages::escape` writes them. */
function unescapeHtml(text) {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** The attributes of one tag, `<input type="hidden" name="x" value="y">` → {type, name, value}. */
function attributes(tag) {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)(?:="([^"]*)")?/g)) {
    found[m[1].toLowerCase()] = m[2] === undefined ? "" : unescapeHtml(m[2]);
  }
  return found;
}

/** The first POST form of a page: where it goes, its hidden and preselected fields, its buttons. */
export function parseForm(html) {
  const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!form) {
    return null;
  }
  const attrs = attributes(form[1]);
  const fields = [];
  const radios = {};
  const buttons = [];
  for (const m of form[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const a = attributes(m[2]);
    if (m[1].toLowerCase() === "button") {
      if (a.name !== undefined) buttons.push({ name: a.name, value: a.value ?? "" });
      continue;
    }
    const type = (a.type ?? "text").toLowerCase();
    if (type === "hidden") {
      fields.push([a.name, a.value ?? ""]);
    } else if (type === "radio") {
      (radios[a.name] ??= []).push({ value: a.value, checked: "checked" in a });
    } else if (a.name) {
      fields.push([a.name, a.value ?? ""]);
    }
  }
  return { method: (attrs.method ?? "get").toLowerCase(), action: attrs.action, fields, radios, buttons };
}

/** A minimal cookie jar: name=value per cookie, every attribute ignored (one origin). */
export class CookieJar {
  constructor() {
    this.cookies = new Map();
  }
  take(response) {
    for (const line of response.headers.getSetCookie?.() ?? []) {
      const [pair] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq > 0) {
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        // Max-Age=0 or an empty value clears the cookie (sign-out).
        if (value === "" || /;\s*max-age=0/i.test(line)) this.cookies.delete(name);
        else this.cookies.set(name, value);
      }
    }
  }
  header() {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).join("; ");
  }
}

/**
 * Drives the sign-in that `authorizationUrl` starts and returns the URL outside the
 * authorization server that it ends at (the client's redirect URI with the answer).
 * `scope`: the scope to grant on the consent page (default: the one preselected, i.e.
 * what the client asked for). `jar`: keep one across calls to stay signed in.
 */
export async function signIn(authorizationUrl, { email, password, scope, jar = new CookieJar(), log = () => {} } = {}) {
  const start = new URL(authorizationUrl);
  const origin = start.origin;
  const authorizePath = start.pathname;
  let request = { url: start.href, method: "GET", body: undefined };
  const seen = [];
  for (let step = 0; step < MAX_STEPS; step++) {
    const headers = { cookie: jar.header() };
    if (request.method === "POST") {
      headers["content-type"] = "application/x-www-form-urlencoded";
      headers.origin = origin;
    }
    const res = await fetch(request.url, { method: request.method, headers, body: request.body, redirect: "manual" });
    jar.take(res);
    const text = await res.text();
    seen.push(`${request.method} ${new URL(request.url).pathname} -> ${res.status}`);
    log(seen[seen.length - 1]);
    if (res.status === 302 || res.status === 303) {
      const location = new URL(res.headers.get("location"), request.url);
      if (location.origin === origin && location.pathname === authorizePath) {
        request = { url: location.href, method: "GET", body: undefined };
        continue;
      }
      return location.href;
    }
    if (res.status !== 200) {
      throw new Error(`${request.method} ${request.url} answered ${res.status}: ${text.slice(0, 400)} (steps: ${seen.join(", ")})`);
    }
    const form = parseForm(text);
    if (!form || form.method !== "post") {
      throw new Error(`no POST form on the page at ${request.url}: ${text.slice(0, 400)}`);
    }
    const body = new URLSearchParams();
    for (const [name, value] of form.fields) {
      if (name === "email") body.append(name, email);
      else if (name === "password") body.append(name, password);
      else body.append(name, value);
    }
    const names = form.fields.map(([n]) => n);
    if (names.includes("password")) {
      if (!email || !password) throw new Error("the login page asks for an email and a password");
    } else {
      // The consent page: the scope radios and the Allow button.
      const options = form.radios.granted_scope ?? [];
      const chosen = scope ?? options.find((o) => o.checked)?.value;
      if (!options.some((o) => o.value === chosen)) {
        throw new Error(`the consent page offers ${JSON.stringify(options)}, not ${chosen}`);
      }
      body.append("granted_scope", chosen);
      const approve = form.buttons.find((b) => b.value === "approve");
      if (!approve) throw new Error(`no approve button on the consent page: ${JSON.stringify(form.buttons)}`);
      body.append(approve.name, approve.value);
    }
    request = { url: new URL(form.action, request.url).href, method: "POST", body: body.toString() };
  }
  throw new Error(`the sign-in did not finish in ${MAX_STEPS} steps: ${seen.join(", ")}`);
}

/** GET `url`, retrying while nothing listens yet (a callback server may still be starting). */
async function visit(url) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(url, { redirect: "manual" });
      await res.arrayBuffer();
      return res.status;
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const isMain = import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const [url] = process.argv.slice(2);
  const email = process.env.ASSAY_OAUTH_EMAIL;
  const password = process.env.ASSAY_OAUTH_PASSWORD;
  try {
    if (!url || !email || !password) {
      throw new Error("usage: ASSAY_OAUTH_EMAIL=… ASSAY_OAUTH_PASSWORD=… node oauth-browser.mjs <authorization URL>");
    }
    const callback = await signIn(url, { email, password, log: (l) => process.stderr.write(`oauth-browser: ${l}\n`) });
    const status = await visit(callback);
    process.stderr.write(`oauth-browser: GET callback -> ${status}\n`);
    process.stdout.write(`${callback}\n`);
  } catch (error) {
    process.stderr.write(`oauth-browser: ${error?.stack ?? error}\n`);
    process.exit(1);
  }
}
