/** The client on a server listening on a Unix domain socket (`--listen unix:PATH`). */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import * as grpc from "@grpc/grpc-js";

import { ChannelLayer, type ChannelLayerOptions } from "../src/index.js";
import { ServerProcess } from "./support.js";

let dir: string;
let socket: string;
let server: ServerProcess;
const layers: ChannelLayer[] = [];

function layer(options: ChannelLayerOptions = {}): ChannelLayer {
  const created = new ChannelLayer({
    target: server.target,
    prefix: `uds-${randomBytes(6).toString("hex")}`,
    token: "node-sock",
    ...options,
  });
  layers.push(created);
  return created;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "chanlayer-node-"));
  socket = join(dir, "chanlayer.sock");
  server = await ServerProcess.start(
    ["--metrics-listen", "off", "--auth-token", "node-sock"],
    `unix:${socket}`,
  );
});

after(async () => {
  await Promise.all(layers.map((l) => l.close()));
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a Unix socket target", () => {
  it("is where the server listens, with the documented permissions", () => {
    assert.equal(server.target, `unix:${socket}`);
    assert.equal(statSync(socket).mode & 0o777, 0o660);
  });

  it("carries sends, receives and groups", async () => {
    const l = layer();
    await l.send("worker.tasks", { type: "task", n: 1 });
    assert.deepEqual(await l.receive("worker.tasks"), { type: "task", n: 1 });
    const members = await Promise.all([l.newChannel(), l.newChannel(), l.newChannel()]);
    for (const member of members) await l.groupAdd("room", member);
    await l.groupSend("room", { type: "chat.message", text: "hi" });
    for (const member of members) {
      assert.deepEqual(await l.receive(member), { type: "chat.message", text: "hi" });
    }
    await l.flush();
  });

  it("also reads unix:///absolute/path", async () => {
    const l = layer({ target: `unix://${socket}` });
    const channel = await l.newChannel();
    await l.send(channel, { type: "x" });
    assert.deepEqual(await l.receive(channel), { type: "x" });
  });

  it("refuses TLS credentials and a missing path", () => {
    assert.throws(
      () => new ChannelLayer({ target: `unix:${socket}`, credentials: grpc.credentials.createSsl() }),
      /serves no TLS/,
    );
    assert.throws(() => new ChannelLayer({ target: "unix:" }), /names no socket path/);
  });

  it("removes the socket file when the server stops", async () => {
    await Promise.all(layers.splice(0).map((l) => l.close()));
    await server.stop();
    assert.equal(existsSync(socket), false);
  });
});
