/** Test support for the WebSocket gateway example: its process, and a chat client of it. */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import WebSocket from "ws";

const GATEWAY = join(dirname(fileURLToPath(import.meta.url)), "..", "examples", "ws-gateway", "gateway.js");

/** A gateway example process and the port it serves. */
export interface GatewayProcess {
  child: ChildProcess;
  port: number;
}

/** Starts the gateway example on a free port, on chanlayer server `target` and namespace `prefix`. */
export async function startGateway(target: string, prefix: string): Promise<GatewayProcess> {
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

/** Stops a gateway with SIGTERM and checks it exits with 0. */
export async function stopGateway(gateway: GatewayProcess): Promise<void> {
  if (gateway.child.exitCode !== null) return;
  const exited = new Promise<number | null>((resolve) => gateway.child.once("exit", resolve));
  gateway.child.kill("SIGTERM");
  const timer = setTimeout(() => gateway.child.kill("SIGKILL"), 8000);
  assert.equal(await exited, 0);
  clearTimeout(timer);
}

/** A chat client: an open socket and the chat messages it got. */
export class ChatClient {
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
