/** The channel-layer contract over real gRPC against the real server binary. */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import {
  ChanlayerError,
  ChannelFull,
  ChannelLayer,
  type ChannelLayerOptions,
  InvalidChannelName,
  InvalidGroupName,
  LayerClosed,
  MessageTooLarge,
} from "../src/index.js";
import { eventually, ServerProcess } from "./support.js";

let server: ServerProcess;
const layers: ChannelLayer[] = [];

function layer(options: ChannelLayerOptions = {}): ChannelLayer {
  // A namespace per test keeps tests apart on one server.
  const created = new ChannelLayer({
    target: server.target,
    prefix: `test-${randomBytes(6).toString("hex")}`,
    ...options,
  });
  layers.push(created);
  return created;
}

before(async () => {
  server = await ServerProcess.start(["--max-message-bytes", "65536"]);
});

after(async () => {
  await Promise.all(layers.map((l) => l.close()));
  await server.stop();
});

describe("send and receive", () => {
  it("delivers a message to a normal channel, in order", async () => {
    const l = layer();
    await l.send("worker.tasks", { type: "task", n: 1 });
    await l.send("worker.tasks", { type: "task", n: 2 });
    assert.deepEqual(await l.receive("worker.tasks"), { type: "task", n: 1 });
    assert.deepEqual(await l.receive("worker.tasks"), { type: "task", n: 2 });
  });

  it("wakes a receive that waits, across two layers", async () => {
    const a = layer();
    const b = layer({ prefix: a.prefix });
    const received = b.receive("waiting.channel");
    await new Promise((r) => setTimeout(r, 50));
    await a.send("waiting.channel", { type: "hello", text: "from a" });
    assert.deepEqual(await received, { type: "hello", text: "from a" });
  });

  it("keeps bytes and strings distinct", async () => {
    const l = layer();
    const message = { type: "binary", raw: new Uint8Array([0, 1, 255]), text: "ÿ", nested: { list: [1, "a", null, true] } };
    await l.send("bytes.channel", message);
    const got = await l.receive("bytes.channel");
    assert.ok(got.raw instanceof Uint8Array);
    assert.deepEqual([...(got.raw as Uint8Array)], [0, 1, 255]);
    assert.equal(got.text, "ÿ");
    assert.deepEqual(got.nested, { list: [1, "a", null, true] });
  });

  it("batches many operations issued in one tick", async () => {
    const l = layer({ capacity: 1000 });
    await Promise.all(Array.from({ length: 300 }, (_, n) => l.send("batch.channel", { type: "n", n })));
    assert.equal((await l.channelInfo("batch.channel")).queuedMessages, 300);
    for (let n = 0; n < 300; n++) assert.equal((await l.receive("batch.channel")).n, n);
  });

  it("gives each specific channel its own messages", async () => {
    const l = layer();
    const one = await l.newChannel();
    const two = await l.newChannel();
    assert.match(one, /^specific\.[0-9a-f]{32}![0-9a-f]{32}$/);
    assert.notEqual(one, two);
    await l.send(two, { type: "for.two" });
    await l.send(one, { type: "for.one" });
    assert.deepEqual(await l.receive(one), { type: "for.one" });
    assert.deepEqual(await l.receive(two), { type: "for.two" });
  });

  it("names specific channels with the session's client prefix", async () => {
    const l = layer({ clientPrefix: "nodetest" + randomBytes(4).toString("hex") });
    const name = await l.newChannel("websocket");
    assert.ok(name.startsWith(`websocket.${l.sessionInfo().clientPrefix}!`));
  });
});

describe("groups", () => {
  it("fans a group send out to every member, once", async () => {
    const l = layer();
    const members = await Promise.all([l.newChannel(), l.newChannel(), l.newChannel()]);
    for (const m of members) assert.equal(await l.groupAdd("chat_room", m), true);
    assert.equal(await l.groupAdd("chat_room", members[0] as string), false);
    assert.equal(await l.groupSize("chat_room"), 3);
    assert.deepEqual(
      (await l.groupMembers("chat_room")).map((m) => m.channel),
      [...members].sort(),
    );
    const result = await l.groupSend("chat_room", { type: "chat_message", message: "hi" });
    assert.deepEqual(result, { delivered: 3, dropped: 0 });
    for (const m of members) assert.deepEqual(await l.receive(m), { type: "chat_message", message: "hi" });
    for (const m of members) assert.equal((await l.channelInfo(m)).queuedMessages, 0);
  });

  it("hands a group send to members already waiting, each its own message", async () => {
    const l = layer();
    const members = await Promise.all(Array.from({ length: 20 }, () => l.newChannel()));
    for (const m of members) await l.groupAdd("waiting_room", m);
    const received = members.map((m) => l.receive(m));
    for (const m of members) {
      while ((await l.channelInfo(m)).waitingReceives === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(await l.groupSend("waiting_room", { type: "chat_message", n: 1 }), {
      delivered: 20,
      dropped: 0,
    });
    const messages = (await Promise.all(received)) as Record<string, unknown>[];
    for (const message of messages) assert.deepEqual(message, { type: "chat_message", n: 1 });
    (messages[0] as Record<string, unknown>).n = 2;
    assert.equal((messages[1] as Record<string, unknown>).n, 1);
  });

  it("stops sending to a discarded member", async () => {
    const l = layer();
    const [a, b] = [await l.newChannel(), await l.newChannel()];
    await l.groupAdd("g", a);
    await l.groupAdd("g", b);
    assert.equal(await l.groupDiscard("g", a), true);
    assert.equal(await l.groupDiscard("g", a), false);
    assert.deepEqual(await l.groupSend("g", { type: "x" }), { delivered: 1, dropped: 0 });
    assert.equal((await l.channelInfo(a)).queuedMessages, 0);
    assert.equal((await l.channelInfo(b)).queuedMessages, 1);
  });

  it("drops for full members and counts them, without an error", async () => {
    const l = layer({ channelCapacity: { "specific.*": 1 } });
    const m = await l.newChannel();
    await l.groupAdd("full", m);
    assert.deepEqual(await l.groupSend("full", { type: "one" }), { delivered: 1, dropped: 0 });
    assert.deepEqual(await l.groupSend("full", { type: "two" }), { delivered: 0, dropped: 1 });
  });
});

describe("errors", () => {
  it("raises ChannelFull at capacity", async () => {
    const l = layer({ channelCapacity: [["small.*", 2]] });
    await l.send("small.one", { type: "a" });
    await l.send("small.one", { type: "b" });
    const error = await l.send("small.one", { type: "c" }).catch((e: unknown) => e);
    assert.ok(error instanceof ChannelFull, String(error));
    assert.equal(error.reason, "CHANNEL_FULL");
    assert.equal(error.channel, "small.one");
    // Other channels use the default capacity.
    for (let i = 0; i < 3; i++) await l.send("large.one", { type: "a" });
  });

  it("raises MessageTooLarge above the server's limit", async () => {
    const l = layer();
    await l.send("size.ok", { type: "small" }); // opens the session, learning the limit
    const error = await l.send("size.big", { type: "big", data: "x".repeat(70_000) }).catch((e: unknown) => e);
    assert.ok(error instanceof MessageTooLarge, String(error));
    const groupError = await l.groupSend("size", { type: "big", data: "x".repeat(70_000) }).catch((e: unknown) => e);
    assert.ok(groupError instanceof MessageTooLarge, String(groupError));
  });

  it("rejects invalid names before sending", async () => {
    const l = layer();
    await assert.rejects(l.send("bad name", { type: "x" }), InvalidChannelName);
    await assert.rejects(l.send("a!b!c", { type: "x" }), InvalidChannelName);
    await assert.rejects(l.send("x".repeat(100), { type: "x" }), InvalidChannelName);
    await assert.rejects(l.receive("é"), InvalidChannelName);
    await assert.rejects(l.groupAdd("bad!group", "ok"), InvalidGroupName);
    await l.send("x".repeat(99), { type: "x" });
  });

  it("maps the server's ErrorInfo reason of a unary call", async () => {
    const l = layer({ prefix: "not a namespace!" });
    const error = await l.flush().catch((e: unknown) => e);
    assert.ok(error instanceof ChanlayerError, String(error));
    assert.equal(error.reason, "INVALID_NAMESPACE");
    assert.equal(error.code, 3);
  });

  it("refuses calls after close", async () => {
    const l = layer();
    await l.send("closing.channel", { type: "x" });
    await l.close();
    await assert.rejects(l.send("closing.channel", { type: "x" }), LayerClosed);
  });
});

describe("abort", () => {
  it("aborts a waiting receive with the signal's reason", async () => {
    const l = layer();
    const controller = new AbortController();
    const pending = l.receive("abort.channel", { signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    await assert.rejects(pending, { name: "AbortError" });
    await eventually(async () => (await l.channelInfo("abort.channel")).waitingReceives === 0);
    await assert.rejects(l.receive("abort.channel", { signal: AbortSignal.abort() }), { name: "AbortError" });
    await assert.rejects(l.receive("abort.channel", { signal: AbortSignal.timeout(20) }), { name: "TimeoutError" });
  });

  it("never loses a message to a receive aborted as it arrives", async () => {
    const l = layer({ capacity: 1000 });
    const sender = layer({ prefix: l.prefix, capacity: 1000 });
    const channel = await l.newChannel();
    const count = 100;
    const seen: number[] = [];
    let wonRace = 0;
    for (let n = 0; n < count; n++) {
      const controller = new AbortController();
      const pending = l.receive(channel, { signal: controller.signal }).catch(() => undefined);
      await sender.send(channel, { type: "n", n });
      controller.abort();
      const got = await pending;
      if (got !== undefined) {
        wonRace += 1;
        seen.push(got.n as number);
      }
    }
    // Every message not taken by a receive that won the race is still there, once, in order.
    while (seen.length < count) seen.push((await l.receive(channel)).n as number);
    assert.deepEqual(seen, Array.from({ length: count }, (_, n) => n));
    assert.ok(wonRace < count);
    const extra = new AbortController();
    setTimeout(() => extra.abort(), 100);
    await assert.rejects(l.receive(channel, { signal: extra.signal }), { name: "AbortError" });
  });
});

describe("flush and introspection", () => {
  it("flushes the namespace and only it", async () => {
    const l = layer();
    const other = layer();
    await l.send("f.channel", { type: "x" });
    await other.send("f.channel", { type: "x" });
    const m = await l.newChannel();
    await l.groupAdd("fg", m);
    await l.flush();
    assert.equal((await l.channelInfo("f.channel")).queuedMessages, 0);
    assert.equal(await l.groupSize("fg"), 0);
    assert.equal((await other.channelInfo("f.channel")).queuedMessages, 1);
  });

  it("reports server stats and session info", async () => {
    const l = layer();
    await l.newChannel();
    const stats = await l.serverStats();
    assert.ok(stats.sessionsOpen >= 1);
    assert.ok(stats.uptimeSeconds >= 0);
    const info = l.sessionInfo();
    assert.equal(info.connected, true);
    assert.equal(info.resumed, false);
    assert.ok(info.opened !== undefined && info.opened.maxMessageBytes === 65536);
  });

  it("releases the session's memberships on close", async () => {
    const l = layer();
    const watcher = layer({ prefix: l.prefix });
    await l.groupAdd("leased", await l.newChannel());
    assert.equal(await watcher.groupSize("leased"), 1);
    await l.close();
    await eventually(async () => (await watcher.groupSize("leased")) === 0);
  });
});
