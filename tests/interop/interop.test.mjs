// Interop test: one chanlayer server shared by
//   - the Django chat example (clients/python/examples/chat) on daphne,
//   - the Node WebSocket gateway (clients/node/examples/ws-gateway),
//   - the Rust WebSocket gateway (clients/rust-gateway),
//   - a Django `runworker` (tests/interop/django_worker) and this Node process.
// WebSocket clients on each gateway join one room: every message sent through any gateway must
// reach every client of the room exactly once. The worker and a Node client exchange messages
// on normal channels.
//
// Environment:
//   CHANLAYER_BIN      the server binary (default <repo>/target/release/chanlayer)
//   CHANLAYER_VENV     the Python venv with chanlayer and daphne (default <repo>/.venv)
//   RUST_GATEWAY_BIN   the Rust gateway (default <repo>/target/release/chanlayer-ws-gateway)
//   INTEROP_LOGS       where process logs go (default: a temporary directory, printed on failure)

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { ChannelLayer } from "@chanlayer/client";
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
const LOGS = process.env.INTEROP_LOGS ?? mkdtempSync(join(tmpdir(), "chanlayer-interop-"));
mkdirSync(LOGS, { recursive: true });
/** The Django chat example's namespace: the Python client's default `prefix`. */
const PREFIX = "asgi";
const ROOM = `interop${randomBytes(3).toString("hex")}`;
const WAIT_MS = 15_000;

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

  /** Waits for a JSON line with `event` (or a line containing `text`) and returns it. */
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

function jsonLine(event) {
  return (line) => {
    try {
      return JSON.parse(line).event === event;
    } catch {
      return false;
    }
  };
}

/** A chat client: a WebSocket on one gateway, and the chat messages it got. */
class ChatClient {
  constructor(name, url, origin) {
    this.name = name;
    this.messages = [];
    this.socket = new WebSocket(url, origin ? { origin } : {});
    this.socket.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      if (typeof frame.message === "string") this.messages.push(frame.message);
    });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once("open", resolve);
      this.socket.once("error", reject);
    });
  }

  say(text) {
    this.socket.send(JSON.stringify({ message: text }));
  }

  async close() {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.socket.once("close", resolve));
    this.socket.close();
    await Promise.race([closed, sleep(3000)]);
    this.socket.terminate();
  }
}

describe("interop: Django, Node and Rust share one chanlayer", () => {
  const procs = {};
  const clients = {};
  let layer;
  let failed = false;

  before(async () => {
    const chanlayer = new Proc("chanlayer", CHANLAYER_BIN, [
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--log-format",
      "json",
      "--lease-grace-ms",
      "2000",
    ]);
    procs.chanlayer = chanlayer;
    const listening = await chanlayer.waitFor((l) => l.includes("chanlayer listening"), "listening");
    const target = JSON.parse(listening).fields.addr;

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
      target,
      "--prefix",
      PREFIX,
    ]);
    procs.rust = new Proc("rust-gateway", RUST_GATEWAY_BIN, [
      "--port",
      "0",
      "--target",
      target,
      "--prefix",
      PREFIX,
    ]);
    const nodePort = JSON.parse(await procs.node.waitFor(jsonLine("listening"), "listening")).port;
    const rustPort = JSON.parse(await procs.rust.waitFor(jsonLine("listening"), "listening")).port;
    await procs.daphne.waitFor((l) => l.includes("Listening on TCP address"), "listening");

    layer = new ChannelLayer({ target, prefix: PREFIX });
    // The chat page's own URL and origin, as a browser on the Django site sends them.
    const daphneOrigin = `http://127.0.0.1:${daphnePort}`;
    const urls = {
      django: [`ws://127.0.0.1:${daphnePort}/ws/chat/${ROOM}/`, daphneOrigin],
      node: [`ws://127.0.0.1:${nodePort}/ws/chat/${ROOM}/`, undefined],
      rust: [`ws://127.0.0.1:${rustPort}/ws/chat/${ROOM}/`, undefined],
    };
    for (const [gateway, [url, origin]] of Object.entries(urls)) {
      for (const n of [1, 2]) clients[`${gateway}${n}`] = new ChatClient(`${gateway}${n}`, url, origin);
    }
    // A client of another room on each gateway, which must hear nothing of this room.
    for (const [gateway, [url, origin]] of Object.entries(urls)) {
      clients[`${gateway}-other`] = new ChatClient(`${gateway}-other`, url.replace(ROOM, `${ROOM}x`), origin);
    }
    await Promise.all(Object.values(clients).map((c) => c.opened));
    // Every gateway joins before accepting, so the room is complete once every socket is open.
    assert.equal(await layer.groupSize(`chat_${ROOM}`), 6);
  });

  after(async () => {
    for (const client of Object.values(clients)) await client.close();
    await layer?.close();
    for (const name of ["node", "rust", "daphne", "worker", "chanlayer"]) await procs[name]?.stop();
    if (failed) {
      for (const proc of Object.values(procs)) {
        console.error(`\n----- ${proc.name} (${proc.logPath}) -----\n${readFileSync(proc.logPath, "utf8").slice(-3000)}`);
      }
    }
  });

  const roomClients = () => Object.values(clients).filter((c) => !c.name.endsWith("-other"));
  const otherClients = () => Object.values(clients).filter((c) => c.name.endsWith("-other"));

  async function expectEverywhere(texts) {
    await eventually(
      () => roomClients().every((c) => texts.every((t) => c.messages.includes(t))),
      `every client gets ${JSON.stringify(texts)}`,
    );
  }

  for (const [from, to] of [
    ["django", ["node", "rust"]],
    ["node", ["django", "rust"]],
    ["rust", ["django", "node"]],
  ]) {
    it(`a message typed on the ${from} side reaches the ${to.join(" and ")} clients`, async () => {
      try {
        const text = `hello from ${from} ${randomBytes(4).toString("hex")}`;
        clients[`${from}1`].say(text);
        await expectEverywhere([text]);
        for (const gateway of to) {
          assert.ok(clients[`${gateway}1`].messages.includes(text));
          assert.ok(clients[`${gateway}2`].messages.includes(text));
        }
      } catch (error) {
        failed = true;
        throw error;
      }
    });
  }

  it("delivers every message through any gateway to every client exactly once", async () => {
    try {
      const before = new Map(roomClients().map((c) => [c.name, c.messages.length]));
      const sent = [];
      for (const client of roomClients()) {
        for (let n = 0; n < 5; n++) {
          const text = `${client.name} #${n} ${randomBytes(3).toString("hex")}`;
          sent.push(text);
          client.say(text);
        }
      }
      await expectEverywhere(sent);
      await sleep(500); // a duplicate would arrive by now
      for (const client of roomClients()) {
        const got = client.messages.slice(before.get(client.name));
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
      for (const client of otherClients()) assert.deepEqual(client.messages, [], `${client.name} heard nothing`);
    } catch (error) {
      failed = true;
      throw error;
    }
  });

  it("a Django runworker and a Node process exchange messages on normal channels", async () => {
    try {
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
    } catch (error) {
      failed = true;
      throw error;
    }
  });

  it("leaves no member behind when the sockets close", async () => {
    try {
      for (const client of Object.values(clients)) await client.close();
      await eventually(async () => (await layer.groupSize(`chat_${ROOM}`)) === 0, "the room empties");
    } catch (error) {
      failed = true;
      throw error;
    }
  });
});
