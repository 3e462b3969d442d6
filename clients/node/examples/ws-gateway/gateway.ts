/**
 * A WebSocket chat gateway in Node that shares rooms with the Django chat example.
 *
 * It speaks the chat page's protocol on `ws://<host>:<port>/ws/chat/<room>/`: the client sends
 * `{"message": <text>}` and receives `{"message": <text>}` for every message of the room (and
 * `{"room_count": <n>}` when the room's size changes). Each socket gets its own specific
 * channel, a member of group `chat_<room>`, exactly as a Django `ChatConsumer` does, and a chat
 * message is `groupSend` as `{"type": "chat_message", "message": <text>}`: Django consumers,
 * this gateway and any other gateway on the same chanlayer server and prefix share the room.
 *
 * Run it (after `npm run build`):
 *
 *     node dist/examples/ws-gateway/gateway.js --port 8001 --target 127.0.0.1:50051
 *
 * Options (or environment): `--host` (`GATEWAY_HOST`, default 127.0.0.1), `--port`
 * (`GATEWAY_PORT`, default 8001; 0 picks a free port), `--target` (`CHANLAYER_TARGET`, default
 * 127.0.0.1:50051), `--prefix` (`CHANLAYER_PREFIX`, default `asgi`, as Django's). It prints one
 * JSON line `{"event": "listening", "port": <port>}` once it accepts connections, and stops on
 * SIGINT or SIGTERM.
 */

import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";

import { WebSocket, WebSocketServer } from "ws";

import { ChannelLayer, type Message } from "../../src/index.js";

/** The WebSocket path of a room, as the Django chat example routes it. */
const ROOM_PATH = /^\/ws\/chat\/([A-Za-z0-9_.-]{1,80})\/$/;

/** The channel-layer group of a room: `chat_<room>`, as in the Channels tutorial. */
export function roomGroupName(room: string): string {
  return `chat_${room}`;
}

/** How a gateway is set up. */
export interface GatewayOptions {
  host: string;
  port: number;
  target: string;
  prefix: string;
}

/** A running gateway. */
export interface Gateway {
  /** The port it listens on. */
  readonly port: number;
  /** Closes every socket, leaves their groups and closes the channel layer. */
  close(): Promise<void>;
}

function log(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** Serves one socket of one room, whose channel already joined the room's group, until it closes. */
async function serveSocket(
  layer: ChannelLayer,
  socket: WebSocket,
  room: string,
  channel: string,
): Promise<void> {
  const group = roomGroupName(room);
  const stop = new AbortController();
  socket.on("close", () => stop.abort());

  socket.on("message", (data, isBinary) => {
    let text: unknown;
    try {
      text = isBinary ? undefined : (JSON.parse(data.toString()) as { message?: unknown }).message;
    } catch {
      text = undefined;
    }
    if (typeof text !== "string") {
      socket.send(JSON.stringify({ error: 'expected {"message": <text>}' }));
      return;
    }
    layer.groupSend(group, { type: "chat_message", message: text }).catch((error: unknown) => {
      log("group_send_failed", { group, error: String(error) });
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ error: "not sent: the server is away" }));
      }
    });
  });

  try {
    await broadcastCount(layer, group);
    for (;;) {
      let event: Message;
      try {
        event = await layer.receive(channel, { signal: stop.signal });
      } catch (error) {
        if (stop.signal.aborted) break;
        throw error;
      }
      if (socket.readyState !== WebSocket.OPEN) break;
      if (event.type === "chat_message") {
        socket.send(JSON.stringify({ message: event.message }));
      } else if (event.type === "room_count") {
        socket.send(JSON.stringify({ room_count: event.count }));
      }
    }
  } catch (error) {
    log("socket_failed", { room, error: String(error) });
    socket.close(1011);
  } finally {
    await leave(layer, group, channel, true);
  }
}

/** Tells the room its size, as the Django consumer does after a join or a leave. */
async function broadcastCount(layer: ChannelLayer, group: string): Promise<void> {
  const count = await layer.groupSize(group);
  await layer.groupSend(group, { type: "room_count", count });
}

async function leave(layer: ChannelLayer, group: string, channel: string, announce: boolean): Promise<void> {
  try {
    await layer.groupDiscard(group, channel);
    if (announce) await broadcastCount(layer, group);
  } catch {
    // The layer is closing or the server is away: the membership goes with the session.
  }
}

/** Starts a gateway. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const layer = new ChannelLayer({ target: options.target, prefix: options.prefix });
  const http = createServer((_request, response) => {
    response.writeHead(404, { "content-type": "text/plain" }).end("WebSocket only: /ws/chat/<room>/\n");
  });
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<Promise<void>>();
  http.on("upgrade", (request: IncomingMessage, stream, head) => {
    const room = ROOM_PATH.exec(new URL(request.url ?? "/", "http://gateway").pathname)?.[1];
    if (room === undefined) {
      stream.end("HTTP/1.1 404 Not Found\r\n\r\n");
      return;
    }
    // Join the group before completing the handshake, as the Django consumer joins before
    // accepting: once a client sees the socket open, it gets every later room message.
    const group = roomGroupName(room);
    const joining = (async (): Promise<void> => {
      let channel: string;
      try {
        channel = await layer.newChannel("websocket");
        await layer.groupAdd(group, channel);
      } catch (error) {
        log("join_failed", { room, error: String(error) });
        stream.end("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        return;
      }
      if (stream.destroyed) {
        await leave(layer, group, channel, false);
        return;
      }
      await new Promise<void>((resolve) => {
        wss.handleUpgrade(request, stream, head, (socket) => {
          serveSocket(layer, socket, room, channel).finally(resolve);
        });
      });
    })();
    const tracked = joining.finally(() => sockets.delete(tracked));
    sockets.add(tracked);
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port, options.host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  return {
    port,
    async close(): Promise<void> {
      for (const socket of wss.clients) socket.close(1001);
      await Promise.race([Promise.allSettled([...sockets]), new Promise((r) => setTimeout(r, 2000))]);
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await layer.close();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: process.env.GATEWAY_HOST ?? "127.0.0.1" },
      port: { type: "string", default: process.env.GATEWAY_PORT ?? "8001" },
      target: { type: "string", default: process.env.CHANLAYER_TARGET ?? "127.0.0.1:50051" },
      prefix: { type: "string", default: process.env.CHANLAYER_PREFIX ?? "asgi" },
    },
  });
  const gateway = await startGateway({
    host: values.host,
    port: Number(values.port),
    target: values.target,
    prefix: values.prefix,
  });
  log("listening", { port: gateway.port, target: values.target });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const forced = setTimeout(() => process.exit(1), 5000);
    forced.unref();
    gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, "/"))) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
