/** The WebSocket gateway example, as processes, over real sockets and a real server. */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import WebSocket from "ws";

import { ChannelLayer } from "../src/index.js";
import { eventually, ServerProcess } from "./support.js";

const GATEWAY = join(dirname(fileURLToPath(import.meta.url)), "..", "examples", "ws-gateway", "gateway.js");

interface GatewayProcess {
  child: ChildProcess;
  port: number;
}

async function startGateway(target: string, prefix: string): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [GATEWAY, "--port", "0", "--target", target, "--prefix", prefix], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the gateway did not start within 10 s")), 10_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const record = JSON.parse(line) as { event?: string; port?: number };
      if (record.event === "listening" && record.port !== undefined) {
        clearTimeout(timer);
        resolve(record.port);
      }
    });
    child.once("exit", (code) => reject(new Error(`the gateway exited with ${code}`)));
  });
  return { child, port };
}

async function stopGateway(gateway: GatewayProcess): Promise<void> {
  if (gateway.child.exitCode !== null) return;
  const exited = new Promise<number | null>((resolve) => gateway.child.once("exit", resolve));
  gateway.child.kill("SIGTERM");
  const timer = setTimeout(() => gateway.child.kill("SIGKILL"), 8000);
  assert.equal(await exited, 0);
  clearTimeout(timer);
}

/** A chat client: an open socket and the chat messages it got. */
class ChatClient {
  readonly messages: string[] = [];
  counts: number[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as { message?: string; room_count?: number };
      if (typeof frame.message === "string") this.messages.push(frame.message);
      if (typeof frame.room_count === "number") this.counts.push(frame.room_count);
    });
  }

  static async open(port: number, room: string): Promise<ChatClient> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws/chat/${room}/`);
    const client = new ChatClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return client;
  }

  say(text: string): void {
    this.socket.send(JSON.stringify({ message: text }));
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.socket.once("close", () => resolve()));
    this.socket.close();
    await closed;
  }
}

describe("ws-gateway", () => {
  let server: ServerProcess;
  const prefix = `gw-${randomBytes(6).toString("hex")}`;
  let gateways: GatewayProcess[] = [];
  let layer: ChannelLayer;

  before(async () => {
    server = await ServerProcess.start();
    gateways = await Promise.all([startGateway(server.target, prefix), startGateway(server.target, prefix)]);
    layer = new ChannelLayer({ target: server.target, prefix });
  });

  after(async () => {
    await layer.close();
    await Promise.all(gateways.map(stopGateway));
    await server.stop();
  });

  it("shares a room across gateway processes: every message reaches every client once", async () => {
    const [g1, g2] = gateways as [GatewayProcess, GatewayProcess];
    const lobby = await Promise.all([
      ChatClient.open(g1.port, "lobby"),
      ChatClient.open(g1.port, "lobby"),
      ChatClient.open(g2.port, "lobby"),
    ]);
    const elsewhere = await ChatClient.open(g2.port, "elsewhere");
    assert.equal(await layer.groupSize("chat_lobby"), 3);
    const sent: string[] = [];
    lobby.forEach((client, i) => {
      for (let n = 0; n < 5; n++) {
        const text = `client ${i} says ${n}`;
        sent.push(text);
        client.say(text);
      }
    });
    await eventually(() => lobby.every((c) => c.messages.length >= sent.length));
    await new Promise((r) => setTimeout(r, 200)); // no duplicate arrives late
    for (const client of lobby) assert.deepEqual([...client.messages].sort(), [...sent].sort());
    // Each sender's own messages arrive in the order it sent them.
    for (const client of lobby) {
      const fromZero = client.messages.filter((m) => m.startsWith("client 0 "));
      assert.deepEqual(fromZero, [0, 1, 2, 3, 4].map((n) => `client 0 says ${n}`));
    }
    assert.deepEqual(elsewhere.messages, []);
    await Promise.all([...lobby, elsewhere].map((c) => c.close()));
    await eventually(async () => (await layer.groupSize("chat_lobby")) === 0);
  });

  it("speaks Django's group protocol in both directions", async () => {
    const [g1] = gateways as [GatewayProcess];
    const client = await ChatClient.open(g1.port, "django");
    // A consumer's channel in the same group, as a Django ChatConsumer has.
    const consumer = await layer.newChannel();
    await layer.groupAdd("chat_django", consumer);
    await layer.groupSend("chat_django", { type: "chat_message", message: "from a consumer" });
    await eventually(() => client.messages.includes("from a consumer"));

    client.say("from a socket");
    for (;;) {
      const event = await layer.receive(consumer, { signal: AbortSignal.timeout(5000) });
      if (event.type !== "chat_message" || event.message !== "from a socket") continue;
      // Byte for byte what Django's group_send writes: msgpack.packb({"type": ..., "message": ...}).
      assert.equal(
        Buffer.from(layer.serialize(event)).toString("hex"),
        "82a474797065ac636861745f6d657373616765a76d657373616765ad66726f6d206120736f636b6574",
      );
      break;
    }
    await eventually(() => client.counts.length > 0);
    await client.close();
  });

  it("refuses paths that are not a room", async () => {
    const [g1] = gateways as [GatewayProcess];
    const socket = new WebSocket(`ws://127.0.0.1:${g1.port}/ws/chat/bad room!/`);
    const error = await new Promise<Error>((resolve) => socket.once("error", resolve));
    assert.match(error.message, /404/);
  });
});
