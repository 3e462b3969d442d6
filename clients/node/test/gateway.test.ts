/** The WebSocket gateway example, as processes, over real sockets and a real server. */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import WebSocket from "ws";

import { ChannelLayer } from "../src/index.js";
import { ChatClient, type GatewayProcess, startGateway, stopGateway } from "./gateway-support.js";
import { eventually, ServerProcess } from "./support.js";

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
