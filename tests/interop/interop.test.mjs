// Interop test: one chanlayer server shared by
//   - the Django chat example (clients/python/examples/chat) on daphne, used from its room page
//     in a headless Chromium driven by Playwright,
//   - the Node WebSocket gateway (clients/node/examples/ws-gateway),
//   - the Rust WebSocket gateway (clients/rust-gateway),
//   - a Django `runworker` (tests/interop/django_worker) and this Node process.
// Two browser pages of one room on Django and two WebSocket clients of the room on each gateway:
// a message typed in a page and sent like a user reaches every gateway's clients exactly once, a
// message sent by a gateway's client shows exactly once in every page's log, and every message
// through any gateway reaches every client of the room exactly once. A page and a client of
// another room on each side hear nothing of it. The worker and a Node client exchange messages
// on normal channels.
//
// With INTEROP_CLUSTER=1 the same test runs on three chanlayer nodes joined through a 3-server
// NATS cluster (cluster mode), each node on its own NATS server: Django (daphne, the worker and
// this process's layer) on node A, the Node gateway on node B, the Rust gateway on node C.
//
// Environment:
//   CHANLAYER_BIN      the server binary (default <repo>/target/release/chanlayer)
//   CHANLAYER_VENV     the Python venv with chanlayer and daphne (default <repo>/.venv)
//   RUST_GATEWAY_BIN   the Rust gateway (default <repo>/target/release/chanlayer-ws-gateway)
//   CHROMIUM           the browser (default /usr/bin/chromium, Debian's package; Playwright
//                      never downloads one)
//   INTEROP_CLUSTER    1: the cluster topology above
//   CHANLAYER_NATS_SERVER  the nats-server of the cluster topology (default: nats-server on PATH)
//   INTEROP_LOGS       where process logs, the browser's console and, on failure, screenshots go
//                      (default: a temporary directory, printed on failure and removed on success)

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { ChannelLayer } from "@chanlayer/client";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..", "..");
const CHANLAYER_BIN = process.env.CHANLAYER_BIN ?? join(REPO, "target", "release", "chanlayer");
const VENV = process.env.CHANLAYER_VENV ?? join(REPO, ".venv");
const PYTHON = join(VENV, "bin", "python");
const RUST_GATEWAY_BIN =
  process.env.RUST_GATEWAY_BIN ?? join(REPO, "target", "release", "chanlayer-ws-gateway");
const NODE_GATEWAY = join(REPO, "clients", "node", "dist", "examples", "ws-gateway", "gateway.js");
const CHAT_EXAMPLE = join(REPO, "clients", "python", "examples", "chat");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** The chat example's end-to-end tests launch Chromium with the same flags. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const LOGS = process.env.INTEROP_LOGS ?? mkdtempSync(join(tmpdir(), "chanlayer-interop-"));
mkdirSync(LOGS, { recursive: true });
const CLUSTER = process.env.INTEROP_CLUSTER === "1";
const NATS_SERVER = process.env.CHANLAYER_NATS_SERVER ?? "nats-server";
/** The Django chat example's namespace: the Python client's default `prefix`. */
const PREFIX = "asgi";
const ROOM = `interop${randomBytes(3).toString("hex")}`;
const WAIT_MS = 15_000;
/** How long to wait, once every message has arrived, for a duplicate to show up. */
const DUPLICATE_WAIT_MS = 500;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 25 ms until it is true, for at most `timeoutMs`. */
async function eventually(check, what, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

/** How many times `text` is in `list`. */
const occurrences = (list, text) => list.filter((item) => item === text).length;

/** Prints the end of the log file at `path`, if there is one. */
function printTail(name, path) {
  if (existsSync(path)) console.error(`\n----- ${name} (${path}) -----\n${readFileSync(path, "utf8").slice(-3000)}`);
}

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL. */
class Proc {
  constructor(name, command, args, options = {}) {
    this.name = name;
    this.logPath = join(LOGS, `${name}.log`);
    const log = createWriteStream(this.logPath);
    this.output = "";
    this.child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream.on("data", (chunk) => {
        this.output += chunk.toString();
        log.write(chunk);
      });
    }
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for a line that `match` accepts and returns it. */
  async waitFor(match, what) {
    await eventually(() => {
      if (!this.running) throw new Error(`${this.name} exited early:\n${this.output.slice(-2000)}`);
      return this.output.split("\n").some(match);
    }, `${this.name}: ${what}`);
    return this.output.split("\n").find(match);
  }

  async stop() {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 8000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts a chanlayer node with extra flags; returns its address once it listens. */
async function startNode(procs, name, extra) {
  const node = new Proc(name, CHANLAYER_BIN, [
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--metrics-listen",
    "127.0.0.1:0",
    "--log-format",
    "json",
    "--lease-grace-ms",
    "2000",
    ...extra,
  ]);
  procs[name] = node;
  const listening = await node.waitFor((l) => l.includes("chanlayer listening"), "listening");
  return JSON.parse(listening).fields.addr;
}

/** Three nats-server processes routed to each other, and a chanlayer node on each. */
async function startCluster(procs) {
  const ports = [];
  for (let i = 0; i < 3; i++) {
    ports.push({ client: await freePort(), route: await freePort(), monitor: await freePort() });
  }
  const dir = mkdtempSync(join(tmpdir(), "chanlayer-interop-nats-"));
  ports.forEach(({ client, route, monitor }, i) => {
    const routes = ports
      .filter((_, j) => j !== i)
      .map((p) => `nats-route://127.0.0.1:${p.route}`)
      .join(", ");
    const conf = join(dir, `n${i}.conf`);
    writeFileSync(
      conf,
      `server_name: n${i}\nlisten: 127.0.0.1:${client}\nhttp: 127.0.0.1:${monitor}\n` +
        `jetstream {\n  store_dir: "${join(dir, `js${i}`)}"\n  max_memory_store: 256MB\n  max_file_store: 256MB\n}\n` +
        `cluster {\n  name: interop\n  listen: 127.0.0.1:${route}\n  routes: [${routes}]\n}\n`,
    );
    procs[`nats${i}`] = new Proc(`nats${i}`, NATS_SERVER, ["-c", conf]);
  });
  // Routed when each server has routes to both others (servers from 2.10 on pool several
  // connections per peer: count the peers).
  for (const { monitor } of ports) {
    await eventually(async () => {
      try {
        const routez = await (await fetch(`http://127.0.0.1:${monitor}/routez`)).json();
        return new Set((routez.routes ?? []).map((r) => r.remote_id)).size >= 2;
      } catch {
        return false;
      }
    }, "NATS routes");
  }
  const targets = [];
  for (const [i, name] of ["a", "b", "c"].entries()) {
    const urls = [i, ...[0, 1, 2].filter((j) => j !== i)].map((j) => `nats://127.0.0.1:${ports[j].client}`);
    const procName = `chanlayer-${name}`;
    targets.push(
      await startNode(procs, procName, [
        "--cluster-nats-url",
        urls.join(","),
        "--cluster-node-name",
        name,
        "--cluster-heartbeat-ms",
        "200",
      ]),
    );
    await procs[procName].waitFor((l) => l.includes("connected to NATS"), "connected to NATS");
  }
  return targets;
}

function jsonLine(event) {
  return (line) => {
    try {
      return JSON.parse(line).event === event;
    } catch {
      return false;
    }
  };
}

/** A chat client of a gateway: a WebSocket, and the chat messages it got. */
class SocketClient {
  constructor(name, url) {
    this.name = name;
    this.received = [];
    this.socket = new WebSocket(url);
    this.socket.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      if (typeof frame.message === "string") this.received.push(frame.message);
    });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once("open", resolve);
      this.socket.once("error", reject);
    });
  }

  async say(text) {
    this.socket.send(JSON.stringify({ message: text }));
  }

  /** The chat messages received so far, in order. */
  async messages() {
    return [...this.received];
  }

  async close() {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.socket.once("close", resolve));
    this.socket.close();
    await Promise.race([closed, sleep(3000)]);
    this.socket.terminate();
  }
}

/** A chat client in the browser: the Django room page, used as a person would. */
class PageClient {
  constructor(name, page) {
    this.name = name;
    this.page = page;
  }

  /** Opens the room page at `url` and waits until its socket is connected; console to `consoleLog`. */
  static async open(name, context, url, consoleLog) {
    const page = await context.newPage();
    page.on("console", (message) => consoleLog.write(`${name} ${message.type()}: ${message.text()}\n`));
    page.on("pageerror", (error) => consoleLog.write(`${name} page error: ${error}\n`));
    await page.goto(url);
    await page.locator("#status.connected").waitFor({ timeout: WAIT_MS });
    return new PageClient(name, page);
  }

  /** Types `text` in the page's input, key by key, and sends it with Enter. */
  async say(text) {
    await this.page.bringToFront(); // Chromium throttles background tabs.
    const input = this.page.locator("#chat-message-input");
    await input.click();
    await input.pressSequentially(text);
    await input.press("Enter");
    // The page empties the input once it has sent the message on its socket.
    await eventually(async () => (await input.inputValue()) === "", `${this.name} sends ${JSON.stringify(text)}`);
  }

  /** The chat messages in the page's log, in order; errors excluded. */
  async messages() {
    return this.page.locator("#chat-log > .message:not(.error)").allInnerTexts();
  }

  /** The errors the page shows in its log. */
  async errors() {
    return this.page.locator("#chat-log > .message.error").allInnerTexts();
  }

  async screenshot() {
    if (!this.page.isClosed()) await this.page.screenshot({ path: join(LOGS, `${this.name}.png`) });
  }

  async close() {
    if (!this.page.isClosed()) await this.page.close();
  }
}

describe(`interop: Django in a browser, Node and Rust share ${CLUSTER ? "a chanlayer cluster" : "one chanlayer"}`, () => {
  const procs = {};
  const clients = {};
  let layer;
  let browser;
  let browserConsole;
  /** How many tests there are, and how many passed: the logs are printed unless all did. */
  let tests = 0;
  let passed = 0;

  before(async () => {
    // One node, or three joined through NATS: [Django's, the Node gateway's, the Rust gateway's].
    const targets = CLUSTER ? await startCluster(procs) : [await startNode(procs, "chanlayer", [])];
    const [target, nodeTarget, rustTarget] = [0, 1, 2].map((i) => targets[i % targets.length]);

    const daphnePort = await freePort();
    const pythonEnv = {
      ...process.env,
      CHANLAYER_TARGET: target,
      PYTHONUNBUFFERED: "1",
      CHAT_ROOM_COUNT_REFRESH: "5",
    };
    procs.daphne = new Proc(
      "daphne",
      PYTHON,
      ["-m", "daphne", "-b", "127.0.0.1", "-p", String(daphnePort), "mysite.asgi:application"],
      { cwd: CHAT_EXAMPLE, env: { ...pythonEnv, DJANGO_SETTINGS_MODULE: "mysite.settings" } },
    );
    procs.worker = new Proc(
      "runworker",
      PYTHON,
      ["-m", "django", "runworker", "interop-echo", "--settings", "django_worker.settings"],
      { cwd: HERE, env: pythonEnv },
    );
    procs.node = new Proc("node-gateway", process.execPath, [
      NODE_GATEWAY,
      "--port",
      "0",
      "--target",
      nodeTarget,
      "--prefix",
      PREFIX,
    ]);
    procs.rust = new Proc("rust-gateway", RUST_GATEWAY_BIN, [
      "--port",
      "0",
      "--target",
      rustTarget,
      "--prefix",
      PREFIX,
    ]);
    // The browser starts while the servers do.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const nodePort = JSON.parse(await procs.node.waitFor(jsonLine("listening"), "listening")).port;
    const rustPort = JSON.parse(await procs.rust.waitFor(jsonLine("listening"), "listening")).port;
    await procs.daphne.waitFor((l) => l.includes("Listening on TCP address"), "listening");
    const context = await browser.newContext({ viewport: { width: 640, height: 560 } });
    browserConsole = createWriteStream(join(LOGS, "chromium-console.log"));

    layer = new ChannelLayer({ target, prefix: PREFIX });
    const room = (base, name) => `${base}/${name}/`;
    const pageUrl = `http://127.0.0.1:${daphnePort}/chat`;
    const socketUrls = {
      node: `ws://127.0.0.1:${nodePort}/ws/chat`,
      rust: `ws://127.0.0.1:${rustPort}/ws/chat`,
    };
    for (const [gateway, url] of Object.entries(socketUrls)) {
      for (const n of [1, 2]) clients[`${gateway}${n}`] = new SocketClient(`${gateway}${n}`, room(url, ROOM));
      // A client of another room on each gateway, which must hear nothing of this room.
      clients[`${gateway}-other`] = new SocketClient(`${gateway}-other`, room(url, `${ROOM}x`));
    }
    const pages = [
      ["django1", ROOM],
      ["django2", ROOM],
      ["django-other", `${ROOM}x`],
    ];
    for (const [name, roomName] of pages) {
      clients[name] = await PageClient.open(name, context, room(pageUrl, roomName), browserConsole);
    }
    await Promise.all(Object.values(clients).map((c) => c.opened));
    // Every gateway joins before accepting, so the room is complete once every socket is open.
    assert.equal(await layer.groupSize(`chat_${ROOM}`), 6);
  });

  after(async () => {
    for (const client of Object.values(clients)) await client.close();
    await browser?.close();
    browserConsole?.end();
    await layer?.close();
    for (const name of ["node", "rust", "daphne", "worker"]) await procs[name]?.stop();
    for (const [name, proc] of Object.entries(procs)) {
      if (name.startsWith("chanlayer") || name.startsWith("nats")) await proc.stop();
    }
    if (passed < tests) {
      for (const proc of Object.values(procs)) printTail(proc.name, proc.logPath);
      printTail("chromium console", join(LOGS, "chromium-console.log"));
      console.error(`\nlogs and screenshots: ${LOGS}`);
    } else if (process.env.INTEROP_LOGS === undefined) {
      rmSync(LOGS, { recursive: true, force: true });
    }
  });

  /** `it`, counting the tests that pass and saving a screenshot of every page when one fails. */
  function check(title, body) {
    tests += 1;
    it(title, async () => {
      try {
        await body();
      } catch (error) {
        for (const client of pageClients()) await client.screenshot().catch(() => {});
        throw error;
      }
      passed += 1;
    });
  }

  const roomClients = () => Object.values(clients).filter((c) => !c.name.endsWith("-other"));
  const otherClients = () => Object.values(clients).filter((c) => c.name.endsWith("-other"));
  const pageClients = () => Object.values(clients).filter((c) => c instanceof PageClient);

  /** Waits until every client of the room has every one of `texts`, then for duplicates. */
  async function expectEverywhere(texts) {
    const hasAll = async (client) => {
      const got = await client.messages();
      return texts.every((t) => got.includes(t));
    };
    await eventually(
      async () => (await Promise.all(roomClients().map(hasAll))).every(Boolean),
      `every client gets ${JSON.stringify(texts)}`,
    );
    await sleep(DUPLICATE_WAIT_MS);
  }

  for (const [from, title] of [
    ["django", "a message typed in the browser page (Django) reaches the Node and Rust clients once"],
    ["node", "a message from a Node gateway client shows once in the browser page, and reaches the Rust clients"],
    ["rust", "a message from a Rust gateway client shows once in the browser page, and reaches the Node clients"],
  ]) {
    check(title, async () => {
      const text = `hello from ${from} ${randomBytes(4).toString("hex")}`;
      await clients[`${from}1`].say(text);
      await expectEverywhere([text]);
      for (const client of roomClients()) {
        assert.equal(occurrences(await client.messages(), text), 1, `${client.name} got it once`);
      }
    });
  }

  check("delivers every message through any gateway to every client exactly once", async () => {
    const before = new Map();
    for (const client of roomClients()) before.set(client.name, (await client.messages()).length);
    const sent = [];
    for (const client of roomClients()) {
      for (let n = 0; n < 5; n++) {
        const text = `${client.name} #${n} ${randomBytes(3).toString("hex")}`;
        sent.push(text);
        await client.say(text);
      }
    }
    await expectEverywhere(sent);
    for (const client of roomClients()) {
      const got = (await client.messages()).slice(before.get(client.name));
      assert.deepEqual([...got].sort(), [...sent].sort(), `${client.name} got each message once`);
      // Messages of one sender arrive in the order it sent them.
      for (const sender of roomClients()) {
        const fromSender = got.filter((m) => m.startsWith(`${sender.name} #`));
        assert.deepEqual(
          fromSender.map((m) => m.split(" ")[1]),
          ["#0", "#1", "#2", "#3", "#4"],
          `${client.name} got ${sender.name}'s messages in order`,
        );
      }
    }
    for (const client of otherClients()) assert.deepEqual(await client.messages(), [], `${client.name} heard nothing`);
    for (const client of pageClients()) assert.deepEqual(await client.errors(), [], `${client.name} shows no error`);
  });

  check("a Django runworker and a Node process exchange messages on normal channels", async () => {
    const replies = `node-replies-${randomBytes(4).toString("hex")}`;
    const texts = ["ping", "ünïcode", "third"];
    for (const text of texts) {
      await layer.send("interop-echo", { type: "echo.request", text, reply_channel: replies });
    }
    for (const text of texts) {
      const reply = await layer.receive(replies, { signal: AbortSignal.timeout(30_000) });
      assert.equal(reply.type, "echo.reply");
      assert.equal(reply.text, text);
      assert.equal(reply.handled_by, "django-runworker");
      assert.equal(reply.pid, procs.worker.child.pid);
    }
  });

  check("leaves no member behind when the pages and sockets close", async () => {
    for (const client of Object.values(clients)) await client.close();
    await eventually(async () => (await layer.groupSize(`chat_${ROOM}`)) === 0, "the room empties");
  });
});
