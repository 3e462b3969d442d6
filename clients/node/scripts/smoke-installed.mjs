#!/usr/bin/env node
// Checks the client as a user gets it: run from a project that installed the packed tarball
// (`npm install chanlayer-client-<version>.tgz`), with this file copied into that project so
// that `@chanlayer/client` resolves to the installed package.
//
//   CHANLAYER_BIN=<server binary> node smoke-installed.mjs
//
// It starts the server on a free loopback port, then sends, receives and group-sends through
// the installed package, and checks that a message is byte for byte what Django writes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

import { ChannelFull, ChannelLayer, CLIENT_NAME } from "@chanlayer/client";

const installed = createRequire(import.meta.url).resolve("@chanlayer/client");
assert.match(installed, /node_modules[\\/]@chanlayer[\\/]client[\\/]dist[\\/]src[\\/]index\.js$/);

const bin = process.env.CHANLAYER_BIN;
if (!bin) throw new Error("set CHANLAYER_BIN to the server binary");

const server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--log-format", "json"], {
  stdio: ["ignore", "pipe", "pipe"],
});
const target = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("the server did not start within 10 s")), 10_000);
  const onLine = (line) => {
    if (!line.includes("chanlayer listening")) return;
    const addr = JSON.parse(line).fields?.addr;
    if (addr) {
      clearTimeout(timer);
      resolve(addr);
    }
  };
  createInterface({ input: server.stdout }).on("line", onLine);
  createInterface({ input: server.stderr }).on("line", onLine);
  server.once("exit", (code) => reject(new Error(`the server exited with ${code}`)));
});

const layer = new ChannelLayer({ target, prefix: "smoke", capacity: 1 });
try {
  const me = await layer.newChannel();
  await layer.send(me, { type: "hello", n: 1 });
  assert.deepEqual(await layer.receive(me), { type: "hello", n: 1 });

  await layer.groupAdd("room", me);
  assert.deepEqual(await layer.groupSend("room", { type: "chat_message", message: "hi" }), {
    delivered: 1,
    dropped: 0,
  });
  const event = await layer.receive(me);
  assert.equal(
    Buffer.from(layer.serialize(event)).toString("hex"),
    "82a474797065ac636861745f6d657373616765a76d657373616765a26869",
  );
  await layer.send("worker", { type: "a" });
  await assert.rejects(layer.send("worker", { type: "b" }), ChannelFull);
  assert.equal(await layer.groupSize("room"), 1);
  console.log(`${CLIENT_NAME} from ${installed}: send, receive, groups and errors work against ${target}`);
} finally {
  await layer.close();
  server.kill("SIGTERM");
}
