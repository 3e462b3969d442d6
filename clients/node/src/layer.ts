/**
 * {@link ChannelLayer}: the Django Channels channel layer, from Node.
 *
 * @module
 */

import { randomBytes } from "node:crypto";

import * as grpc from "@grpc/grpc-js";

import { ChanlayerError, MessageTooLarge, StatusCode } from "./errors.js";
import type { CapacityRule } from "./gen/chanlayer/v1/CapacityRule.js";
import type { ChannelLayerServiceClient } from "./gen/chanlayer/v1/ChannelLayerService.js";
import type { FlushResponse__Output } from "./gen/chanlayer/v1/FlushResponse.js";
import type { GetGroupResponse__Output } from "./gen/chanlayer/v1/GetGroupResponse.js";
import type { ListGroupMembersResponse__Output } from "./gen/chanlayer/v1/ListGroupMembersResponse.js";
import type { GetChannelResponse__Output } from "./gen/chanlayer/v1/GetChannelResponse.js";
import type { GetServerStatsResponse__Output } from "./gen/chanlayer/v1/GetServerStatsResponse.js";
import {
  globToRegExp,
  requireValidChannelName,
  requireValidGroupName,
} from "./names.js";
import { createStub } from "./proto.js";
import { type Message, msgpackSerializer, type Serializer } from "./serializer.js";
import { Session, type SessionInfo } from "./session.js";
import { errorFromServiceError } from "./status.js";

/** The client library's name and version, sent with `open` for the server's logs. */
export const CLIENT_NAME = "chanlayer-node/0.1.0";

/** The most capacity rules a group send may carry. */
const MAX_CAPACITY_RULES = 64;

/** Options of a {@link ChannelLayer}; every one is optional. */
export interface ChannelLayerOptions {
  /**
   * The server, `host:port` (default `127.0.0.1:50051`), or `unix:/path/to/chanlayer.sock`
   * (also `unix:///path`) for a server listening on a Unix domain socket
   * (`chanlayer --listen unix:PATH`), which serves no TLS.
   */
  target?: string;
  /**
   * The namespace, Django's channel-layer `prefix` (default `asgi`, as the Python client):
   * use the same one as the Django project to share its channels and groups.
   */
  prefix?: string;
  /** Seconds a message may wait unread before it is dropped (default 60). */
  expiry?: number;
  /** Seconds a group membership lasts after the last `groupAdd` (default 86 400). */
  groupExpiry?: number;
  /** Capacity of a channel no `channelCapacity` pattern matches (default 100). */
  capacity?: number;
  /**
   * Per-channel capacities, as Channels' `channel_capacity`: keys are shell-style globs
   * (`"http.request"`, `"websocket.send*"`), or pass `[RegExp, capacity]` pairs for regular
   * expressions matched at the start of the name. The first matching pattern wins.
   */
  channelCapacity?: Record<string, number> | ReadonlyArray<readonly [string | RegExp, number]>;
  /** How messages become bytes (default: msgpack, compatible with the Python client). */
  serializer?: Serializer;
  /** A bearer token sent in the `authorization` metadata of every call. */
  token?: string;
  /** Channel credentials (default: insecure; use `grpc.credentials.createSsl(...)` for TLS). */
  credentials?: grpc.ChannelCredentials;
  /** Extra gRPC channel options. */
  channelOptions?: grpc.ChannelOptions;
  /** Milliseconds a call waits for the server before failing with `ServerUnavailable` (default 10 000). */
  connectTimeoutMs?: number;
  /** Deadline of unary calls, in milliseconds (default 30 000). */
  callTimeoutMs?: number;
  /** Most messages one receive on a specific channel fetches ahead (default 16; 1 disables). */
  prefetch?: number;
  /** The client prefix to propose (default: 32 random hex digits). */
  clientPrefix?: string;
}

/** Options of one {@link ChannelLayer.receive}. */
export interface ReceiveOptions {
  /** Aborting it withdraws the receive; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** The result of a {@link ChannelLayer.groupSend}. */
export interface GroupSendResult {
  /** Members that got the message. */
  delivered: number;
  /** Members whose channel was full and did not get it. */
  dropped: number;
}

/** One member of a group, from {@link ChannelLayer.groupMembers}. */
export interface GroupMemberInfo {
  /** The member channel's name. */
  channel: string;
  /** Milliseconds until the membership expires. */
  expiresInMs: number;
}

/** The depth of a channel, from {@link ChannelLayer.channelInfo}. */
export type ChannelInfo = GetChannelResponse__Output;

/** The server's counters and gauges, from {@link ChannelLayer.serverStats}. */
export type ServerStats = GetServerStatsResponse__Output;

interface CompiledRule {
  test: RegExp;
  capacity: number;
  rule: CapacityRule;
}

/**
 * A channel layer on a chanlayer server, with the semantics of Django Channels' layers: a
 * Django project configured with `chanlayer.ChannelLayer` on the same server and prefix shares
 * channels and groups with it.
 *
 * One `ChannelLayer` holds one gRPC connection and one session stream, opened at the first
 * call that needs it. Sends and group operations ride the stream (operations issued in one
 * tick share a frame); flush and introspection are unary calls. Call {@link close} when done:
 * an open stream keeps the process alive.
 *
 * ```ts
 * const layer = new ChannelLayer({ target: "127.0.0.1:50051" });
 * const me = await layer.newChannel();
 * await layer.groupAdd("chat_lobby", me);
 * await layer.groupSend("chat_lobby", { type: "chat_message", message: "hi" });
 * const message = await layer.receive(me); // { type: "chat_message", message: "hi" }
 * await layer.close();
 * ```
 */
export class ChannelLayer {
  /** The extensions of the Channels contract this layer implements. */
  readonly extensions: readonly string[] = ["groups", "flush"];
  /** The server, `host:port`. */
  readonly target: string;
  /** The namespace (Django's `prefix`). */
  readonly prefix: string;
  /** Seconds a message may wait unread. */
  readonly expiry: number;
  /** Seconds a group membership lasts. */
  readonly groupExpiry: number;
  /** Capacity of a channel no pattern matches. */
  readonly capacity: number;

  private readonly serializer: Serializer;
  private readonly rules: CompiledRule[];
  private readonly stub: ChannelLayerServiceClient;
  private readonly token: string | undefined;
  private readonly callTimeoutMs: number;
  private readonly session: Session;
  private readonly proposedPrefix: string;
  private closed = false;

  constructor(options: ChannelLayerOptions = {}) {
    this.target = options.target ?? "127.0.0.1:50051";
    this.prefix = options.prefix ?? "asgi";
    this.expiry = options.expiry ?? 60;
    this.groupExpiry = options.groupExpiry ?? 86400;
    this.capacity = options.capacity ?? 100;
    this.serializer = options.serializer ?? msgpackSerializer;
    this.rules = compileRules(options.channelCapacity ?? {});
    this.token = options.token;
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
    this.proposedPrefix = options.clientPrefix ?? randomBytes(16).toString("hex");
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    checkUnixTarget(this.target, credentials);
    this.stub = createStub(this.target, credentials, {
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
      ...options.channelOptions,
    });
    this.session = new Session({
      stub: this.stub,
      namespace: this.prefix,
      clientPrefix: this.proposedPrefix,
      clientName: CLIENT_NAME,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      prefetch: Math.max(1, Math.floor(options.prefetch ?? 16)),
      metadata: () => this.metadata(),
    });
  }

  // ---- Channel layer API ----

  /**
   * Sends `message` to `channel`.
   *
   * @throws {@link ChannelFull} the channel holds `capacity` unexpired messages.
   * @throws {@link MessageTooLarge} the encoded message exceeds the server's limit.
   * @throws {@link InvalidChannelName} the channel name breaks Channels' rules.
   */
  async send(channel: string, message: Message): Promise<void> {
    requireValidChannelName(channel);
    const payload = this.encode(message);
    await this.checkSize(payload);
    const capacity = this.capacityOf(channel);
    const expiryMs = this.expiryMs();
    await this.session.request(
      (requestId) => ({ send: { requestId, channel, message: payload, capacity, expiryMs } }),
      payload.length,
      channel,
    );
  }

  /**
   * Waits for the next message of `channel` and returns it.
   *
   * Pass `{ signal }` to abort: the receive is withdrawn and the promise rejects with
   * `signal.reason`. A message that was already on its way is kept for the next receive of
   * the channel, never lost.
   */
  async receive(channel: string, options: ReceiveOptions = {}): Promise<Message> {
    requireValidChannelName(channel);
    const payload = await this.session.receive(channel, options.signal);
    return this.serializer.deserialize(payload);
  }

  /**
   * Returns a new process-specific channel name, `{prefix}.{clientPrefix}!{random}`, leased to
   * this layer's session (its messages and memberships go when the session ends for good).
   */
  async newChannel(prefix = "specific"): Promise<string> {
    const opened = await this.session.ready();
    const name = `${prefix}.${opened.clientPrefix}!${randomBytes(16).toString("hex")}`;
    requireValidChannelName(name);
    return name;
  }

  // ---- Groups extension ----

  /**
   * Adds `channel` to `group`, or refreshes its membership. Resolves true when it was new.
   *
   * Memberships of this layer's own specific channels are remembered: when the server lost
   * them (it restarted, or the session's lease ran out while the connection was down), the
   * layer adds them again as soon as it reconnects, before any other operation.
   */
  async groupAdd(group: string, channel: string): Promise<boolean> {
    requireValidGroupName(group);
    requireValidChannelName(channel);
    const groupExpirySeconds = Math.max(1, Math.floor(this.groupExpiry));
    if (this.session.isOwnSpecific(channel)) {
      this.session.memberships.remember(group, channel, groupExpirySeconds);
    }
    const result = await this.session.request(
      (requestId) => ({ groupAdd: { requestId, group, channel, groupExpirySeconds } }),
      0,
    );
    return result.changed;
  }

  /** Removes `channel` from `group`. Resolves true when it was a member. */
  async groupDiscard(group: string, channel: string): Promise<boolean> {
    requireValidGroupName(group);
    requireValidChannelName(channel);
    this.session.memberships.forget(group, channel);
    const result = await this.session.request(
      (requestId) => ({ groupDiscard: { requestId, group, channel } }),
      0,
    );
    return result.changed;
  }

  /**
   * Sends `message` to every member of `group`. A member whose channel is full does not get
   * it (never an error); the result counts such drops.
   */
  async groupSend(group: string, message: Message): Promise<GroupSendResult> {
    requireValidGroupName(group);
    const payload = this.encode(message);
    await this.checkSize(payload);
    const capacity = this.capacity;
    const channelCapacity = this.rules.map((r) => r.rule);
    const expiryMs = this.expiryMs();
    const result = await this.session.request(
      (requestId) => ({
        groupSend: { requestId, group, message: payload, capacity, channelCapacity, expiryMs },
      }),
      payload.length,
    );
    return { delivered: result.deliveredCount, dropped: result.droppedCount };
  }

  // ---- Flush extension ----

  /** Removes every channel, message and group of this layer's namespace. */
  async flush(): Promise<void> {
    await this.unary<FlushResponse__Output>((stub, metadata, options, callback) =>
      stub.flush({ namespace: this.prefix }, metadata, options, callback),
    );
    this.session.memberships.clear();
  }

  // ---- Introspection ----

  /** How many unexpired members `group` has (0 when it does not exist). */
  async groupSize(group: string): Promise<number> {
    requireValidGroupName(group);
    const response = await this.unary<GetGroupResponse__Output>((stub, metadata, options, callback) =>
      stub.getGroup({ namespace: this.prefix, group }, metadata, options, callback),
    );
    return response.memberCount;
  }

  /** The members of `group` in name order (every page). */
  async groupMembers(group: string): Promise<GroupMemberInfo[]> {
    requireValidGroupName(group);
    const members: GroupMemberInfo[] = [];
    let pageToken = "";
    for (;;) {
      const token = pageToken;
      const page = await this.unary<ListGroupMembersResponse__Output>((stub, metadata, options, callback) =>
        stub.listGroupMembers(
          { namespace: this.prefix, group, pageSize: 1000, pageToken: token },
          metadata,
          options,
          callback,
        ),
      );
      for (const member of page.members) {
        members.push({ channel: member.channel, expiresInMs: Number(member.expiresInMs) });
      }
      if (!page.nextPageToken) return members;
      pageToken = page.nextPageToken;
    }
  }

  /** The depth of `channel`: its queued messages and waiting receives. */
  async channelInfo(channel: string): Promise<ChannelInfo> {
    requireValidChannelName(channel);
    return this.unary<ChannelInfo>((stub, metadata, options, callback) =>
      // PascalCase: `getChannel` is grpc.Client's own method.
      stub.GetChannel({ namespace: this.prefix, channel }, metadata, options, callback),
    );
  }

  /** The server's counters and gauges. */
  async serverStats(): Promise<ServerStats> {
    return this.unary<ServerStats>((stub, metadata, options, callback) =>
      stub.getServerStats({}, metadata, options, callback),
    );
  }

  /** What the client knows about its session stream (prefix, resumes, reconnects). */
  sessionInfo(): SessionInfo {
    return this.session.info();
  }

  // ---- Serialization ----

  /** Encodes a message with this layer's serializer. */
  serialize(message: Message): Uint8Array {
    return this.encode(message);
  }

  /** Decodes a message with this layer's serializer. */
  deserialize(data: Uint8Array): Message {
    return this.serializer.deserialize(data);
  }

  /**
   * Closes the layer. By default the session is released: the server drops its specific
   * channels and their memberships now. With `{ release: false }` they stay for the server's
   * lease grace period. Pending receives and operations reject with `LayerClosed`.
   */
  async close(options: { release?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.session.close(options.release ?? true);
    } finally {
      this.stub.close();
    }
  }

  // ---- internals ----

  private encode(message: Message): Uint8Array {
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      throw new TypeError("a channel-layer message must be an object");
    }
    if (Object.prototype.hasOwnProperty.call(message, "__asgi_channel__")) {
      throw new TypeError("'__asgi_channel__' is a reserved key");
    }
    return this.serializer.serialize(message);
  }

  private async checkSize(payload: Uint8Array): Promise<void> {
    const opened = this.session.info().opened;
    const limit = opened === undefined ? undefined : Number(opened.maxMessageBytes);
    if (limit !== undefined && limit > 0 && payload.length > limit) {
      throw new MessageTooLarge(
        `the encoded message is ${payload.length} bytes, more than the server's ${limit}`,
        { code: StatusCode.INVALID_ARGUMENT, reason: "MESSAGE_TOO_LARGE" },
      );
    }
  }

  private capacityOf(channel: string): number {
    for (const rule of this.rules) {
      if (rule.test.test(channel)) return rule.capacity;
    }
    return this.capacity;
  }

  private expiryMs(): number {
    return Math.max(1, Math.round(this.expiry * 1000));
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.token !== undefined) metadata.set("authorization", `Bearer ${this.token}`);
    return metadata;
  }

  private unary<T>(
    call: (
      stub: ChannelLayerServiceClient,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: (error: grpc.ServiceError | null, response?: T) => void,
    ) => unknown,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new ChanlayerError("the channel layer is closed"));
    return new Promise<T>((resolve, reject) => {
      call(
        this.stub,
        this.metadata(),
        { deadline: Date.now() + this.callTimeoutMs },
        (error, response) => {
          if (error) reject(errorFromServiceError(error));
          else resolve(response as T);
        },
      );
    });
  }
}

function compileRules(
  channelCapacity: Record<string, number> | ReadonlyArray<readonly [string | RegExp, number]>,
): CompiledRule[] {
  const entries: (readonly [string | RegExp, number])[] = Array.isArray(channelCapacity)
    ? [...(channelCapacity as ReadonlyArray<readonly [string | RegExp, number]>)]
    : Object.entries(channelCapacity as Record<string, number>);
  if (entries.length > MAX_CAPACITY_RULES) {
    throw new RangeError(`channelCapacity may hold at most ${MAX_CAPACITY_RULES} patterns`);
  }
  return entries.map(([pattern, capacity]) =>
    typeof pattern === "string"
      ? { test: globToRegExp(pattern), capacity, rule: { glob: pattern, capacity } }
      : {
          test: new RegExp(`^(?:${pattern.source})`, pattern.flags.replace(/[gy]/g, "")),
          capacity,
          rule: { regex: pattern.source, capacity },
        },
  );
}

/**
 * Checks a `unix:` target (gRPC's naming: `unix:path`, `unix:///absolute/path`): it names a
 * path, and comes with insecure credentials, since the server serves no TLS on a socket.
 */
function checkUnixTarget(target: string, credentials: grpc.ChannelCredentials): void {
  if (!target.startsWith("unix:")) return;
  let path = target.slice("unix:".length);
  if (path.startsWith("//")) {
    path = path.slice(2);
    if (!path.startsWith("/")) {
      throw new TypeError(
        `${JSON.stringify(target)}: a Unix socket target is unix:/absolute/path, unix:///absolute/path or unix:relative/path`,
      );
    }
  }
  if (path === "") {
    throw new TypeError(`${JSON.stringify(target)} names no socket path (unix:/run/chanlayer/chanlayer.sock)`);
  }
  if (credentials._isSecure()) {
    throw new TypeError(
      `target ${JSON.stringify(target)} is a Unix socket, where the server serves no TLS: use insecure credentials (the socket file's permissions decide who connects)`,
    );
  }
}
