/** Reconnection and resume over real connections: a cut stream, a server restart, no server. */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import { ChannelLayer, ServerUnavailable } from "../src/index.js";
import { CuttableProxy, eventually, ServerProcess, sleep } from "./support.js";

function namespace(): string {
  return `reconnect-${randomBytes(6).toString("hex")}`;
}

describe("reconnect and resume", () => {
  it("resumes its session after the connection breaks, keeping channels and memberships", async () => {
    const server = await ServerProcess.start(["--lease-grace-ms", "30000"]);
    const proxy = await CuttableProxy.start(server.target);
    const prefix = namespace();
    const layer = new ChannelLayer({ target: proxy.target, prefix });
    const direct = new ChannelLayer({ target: server.target, prefix });
    try {
      const me = await layer.newChannel();
      await layer.groupAdd("chat_resume", me);
      const first = layer.sessionInfo();
      const pending = layer.receive(me);
      await eventually(async () => (await direct.channelInfo(me)).waitingReceives === 1);

      proxy.cut();
      await eventually(() => layer.sessionInfo().reconnects === 1 && layer.sessionInfo().connected, 10_000);
      const info = layer.sessionInfo();
      assert.equal(info.resumed, true);
      assert.equal(info.clientPrefix, first.clientPrefix);
      assert.equal(await direct.groupSize("chat_resume"), 1);

      // The receive pending across the break is registered again and gets the next message.
      await direct.groupSend("chat_resume", { type: "chat_message", message: "after the break" });
      assert.deepEqual(await pending, { type: "chat_message", message: "after the break" });
      await layer.send(me, { type: "self" });
      assert.deepEqual(await layer.receive(me), { type: "self" });
    } finally {
      await layer.close();
      await direct.close();
      await proxy.close();
      await server.stop();
    }
  });

  it("reconnects to a restarted server with the same client prefix", async () => {
    let server = await ServerProcess.start();
    const port = server.port;
    const prefix = namespace();
    const layer = new ChannelLayer({ target: server.target, prefix });
    try {
      const me = await layer.newChannel();
      const clientPrefix = layer.sessionInfo().clientPrefix;
      const pending = layer.receive(me);
      await sleep(50);
      await server.stop(); // sends closing{SHUTDOWN} to the session
      server = await ServerProcess.start([], `127.0.0.1:${port}`);
      await eventually(() => layer.sessionInfo().connected && layer.sessionInfo().reconnects >= 1, 10_000);
      // A new server does not know the token: a new session with the same prefix.
      assert.equal(layer.sessionInfo().resumed, false);
      assert.equal(layer.sessionInfo().clientPrefix, clientPrefix);
      const other = new ChannelLayer({ target: server.target, prefix });
      try {
        await other.send(me, { type: "after.restart" });
      } finally {
        await other.close();
      }
      assert.deepEqual(await pending, { type: "after.restart" });
    } finally {
      await layer.close();
      await server.stop();
    }
  });

  it("fails operations with ServerUnavailable when no server answers", async () => {
    const server = await ServerProcess.start();
    const target = server.target;
    await server.stop();
    const layer = new ChannelLayer({ target, prefix: namespace(), connectTimeoutMs: 300 });
    try {
      const started = Date.now();
      await assert.rejects(layer.send("nobody.home", { type: "x" }), ServerUnavailable);
      await assert.rejects(layer.newChannel(), ServerUnavailable);
      assert.ok(Date.now() - started < 5000);
    } finally {
      await layer.close();
    }
  });
});
