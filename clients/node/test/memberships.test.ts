/**
 * Group memberships restored when the server lost them: a chanlayer restart under a gateway,
 * a layer reconnecting to a restarted server, and a resume that came after the lease ran out.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import { ChannelLayer } from "../src/index.js";
import { ChatClient, startGateway, stopGateway } from "./gateway-support.js";
import { CuttableProxy, eventually, ServerProcess, sleep } from "./support.js";

function namespace(): string {
  return `members-${randomBytes(6).toString("hex")}`;
}

/** Stops `server` and starts a new server process on the same port. */
async function restart(server: ServerProcess, args: string[] = []): Promise<ServerProcess> {
  const port = server.port;
  await server.stop();
  return ServerProcess.start(args, `127.0.0.1:${port}`);
}

describe("memberships restored", () => {
  it("a gateway's sockets keep their rooms across a chanlayer restart", async () => {
    let server = await ServerProcess.start();
    const prefix = namespace();
    const gateway = await startGateway(server.target, prefix);
    let layer: ChannelLayer | undefined;
    let client: ChatClient | undefined;
    try {
      client = await ChatClient.open(gateway.port, "lobby");
      const before = new ChannelLayer({ target: server.target, prefix });
      try {
        assert.equal(await before.groupSize("chat_lobby"), 1);
      } finally {
        await before.close();
      }

      server = await restart(server);
      layer = new ChannelLayer({ target: server.target, prefix });
      const direct = layer;
      // The gateway reconnects to a server that never heard of its session and adds the
      // socket's channel to its room again.
      await eventually(async () => (await direct.groupSize("chat_lobby")) === 1, 15_000);

      // A group send from another process reaches the socket...
      await layer.groupSend("chat_lobby", { type: "chat_message", message: "after the restart" });
      const socket = client;
      await eventually(() => socket.messages.includes("after the restart"));
      // ...and so does the socket's own message, sent through the gateway.
      socket.say("still here");
      await eventually(() => socket.messages.includes("still here"));
    } finally {
      await client?.close();
      await layer?.close();
      await stopGateway(gateway);
      await server.stop();
    }
  });

  it("restores the memberships a layer holds, and not the discarded or foreign ones", async () => {
    let server = await ServerProcess.start();
    const prefix = namespace();
    const layer = new ChannelLayer({ target: server.target, prefix });
    let direct: ChannelLayer | undefined;
    try {
      const me = await layer.newChannel();
      await layer.groupAdd("kept", me);
      await layer.groupAdd("left", me);
      await layer.groupDiscard("left", me);
      // Someone else's channel: its own process restores it, not this one.
      await layer.groupAdd("kept", "specific.someoneelse!x");
      const pending = layer.receive(me);

      server = await restart(server);
      direct = new ChannelLayer({ target: server.target, prefix });
      const other = direct;
      await eventually(() => layer.sessionInfo().connected && layer.sessionInfo().reconnects >= 1, 15_000);
      assert.equal(layer.sessionInfo().resumed, false);
      await eventually(async () => (await other.groupSize("kept")) === 1);
      assert.deepEqual(
        (await other.groupMembers("kept")).map((m) => m.channel),
        [me],
      );
      assert.equal(await other.groupSize("left"), 0);
      // The membership keeps what was left of its expiry.
      const [member] = await other.groupMembers("kept");
      assert.ok(member !== undefined && member.expiresInMs > 80_000_000 && member.expiresInMs <= 86_400_000);

      const sent = await other.groupSend("kept", { type: "chat_message", message: "restored" });
      assert.deepEqual(sent, { delivered: 1, dropped: 0 });
      assert.deepEqual(await pending, { type: "chat_message", message: "restored" });
    } finally {
      await layer.close();
      await direct?.close();
      await server.stop();
    }
  });

  it("forgets its memberships when the namespace is flushed", async () => {
    let server = await ServerProcess.start();
    const prefix = namespace();
    const layer = new ChannelLayer({ target: server.target, prefix });
    let direct: ChannelLayer | undefined;
    try {
      const me = await layer.newChannel();
      await layer.groupAdd("flushed", me);
      await layer.flush();
      await layer.groupAdd("after_flush", me);

      server = await restart(server);
      direct = new ChannelLayer({ target: server.target, prefix });
      const other = direct;
      await eventually(() => layer.sessionInfo().connected && layer.sessionInfo().reconnects >= 1, 15_000);
      await eventually(async () => (await other.groupSize("after_flush")) === 1);
      assert.equal(await other.groupSize("flushed"), 0);
    } finally {
      await layer.close();
      await direct?.close();
      await server.stop();
    }
  });

  it("restores them when the session resumes after its lease ran out", async () => {
    const server = await ServerProcess.start(["--lease-grace-ms", "300"]);
    const proxy = await CuttableProxy.start(server.target);
    const prefix = namespace();
    const layer = new ChannelLayer({ target: proxy.target, prefix });
    const direct = new ChannelLayer({ target: server.target, prefix });
    try {
      const me = await layer.newChannel();
      await layer.groupAdd("chat_lease", me);
      const clientPrefix = layer.sessionInfo().clientPrefix;
      const pending = layer.receive(me);
      await eventually(async () => (await direct.channelInfo(me)).waitingReceives === 1);

      // The connection is down longer than the lease grace: the server ends the session and
      // its channels leave their groups.
      proxy.refuse(true);
      proxy.cut();
      await eventually(async () => (await direct.groupSize("chat_lease")) === 0, 10_000);
      await sleep(100);
      proxy.refuse(false);

      await eventually(() => layer.sessionInfo().connected && layer.sessionInfo().reconnects >= 1, 15_000);
      assert.equal(layer.sessionInfo().resumed, false);
      assert.equal(layer.sessionInfo().clientPrefix, clientPrefix);
      await eventually(async () => (await direct.groupSize("chat_lease")) === 1);
      await direct.groupSend("chat_lease", { type: "chat_message", message: "after the lease" });
      assert.deepEqual(await pending, { type: "chat_message", message: "after the lease" });
    } finally {
      await layer.close();
      await direct.close();
      await proxy.close();
      await server.stop();
    }
  });

  it("does not add anything again when the session resumed", async () => {
    const server = await ServerProcess.start(["--lease-grace-ms", "30000"]);
    const proxy = await CuttableProxy.start(server.target);
    const prefix = namespace();
    const layer = new ChannelLayer({ target: proxy.target, prefix });
    const direct = new ChannelLayer({ target: server.target, prefix });
    try {
      const me = await layer.newChannel();
      await layer.groupAdd("chat_kept", me);
      // Discarded by another process while the connection is down: a resumed session must
      // not put it back.
      proxy.refuse(true);
      proxy.cut();
      await direct.groupDiscard("chat_kept", me);
      proxy.refuse(false);
      await eventually(() => layer.sessionInfo().connected && layer.sessionInfo().reconnects >= 1, 15_000);
      assert.equal(layer.sessionInfo().resumed, true);
      await sleep(200);
      assert.equal(await direct.groupSize("chat_kept"), 0);
    } finally {
      await layer.close();
      await direct.close();
      await proxy.close();
      await server.stop();
    }
  });
});
