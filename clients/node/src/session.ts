/**
 * The `Session` stream of one client: batching, multiplexed receives, reconnection.
 *
 * - **Batching.** Operations issued within one tick of the event loop are written as one
 *   frame (the writer runs from `setImmediate`).
 * - **Receives.** Each waiting `receive()` call is one pending receive on the server. Every
 *   delivery goes into a local per-channel buffer first, and waiters take messages from that
 *   buffer. So a receive aborted at any point loses nothing: a message already on its way
 *   (`ReceiveCancelled.was_pending` false) stays in the buffer for the next `receive()` of the
 *   channel. Specific channels prefetch (`max_messages` > 1) since they have a single reader;
 *   buffered messages past their expiry are dropped.
 * - **Reconnection.** When the stream fails or the server says it shuts down, the session
 *   reconnects with exponential backoff and resumes with its resume token and client prefix;
 *   pending receives are registered again. Operations written but not acknowledged when the
 *   stream broke fail with {@link ServerUnavailable} (they may or may not have been applied:
 *   they are never sent twice). Operations waiting longer than `connectTimeoutMs` for a
 *   connection fail with {@link ServerUnavailable}.
 * - **Memberships.** The session remembers the group memberships of its own specific channels
 *   ({@link Memberships}). When a stream reopens and the server did not know the session (it
 *   restarted, or the lease grace ran out), a `groupAdd` for each is written before any other
 *   operation, so group members keep getting group messages without adding them again.
 *
 * @module
 * @internal
 */

import type * as grpc from "@grpc/grpc-js";

import {
  ChanlayerError,
  errorFromReason,
  LayerClosed,
  ServerUnavailable,
  StatusCode,
} from "./errors.js";
import type { ChannelLayerServiceClient } from "./gen/chanlayer/v1/ChannelLayerService.js";
import type { OperationResult__Output } from "./gen/chanlayer/v1/OperationResult.js";
import type { SessionEvent__Output } from "./gen/chanlayer/v1/SessionEvent.js";
import type { SessionOpened__Output } from "./gen/chanlayer/v1/SessionOpened.js";
import type { SessionOperation } from "./gen/chanlayer/v1/SessionOperation.js";
import type { SessionRequest } from "./gen/chanlayer/v1/SessionRequest.js";
import type { SessionResponse__Output } from "./gen/chanlayer/v1/SessionResponse.js";
import { Memberships } from "./memberships.js";
import { isSpecific } from "./names.js";
import { errorFromServiceError } from "./status.js";

const INITIAL_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2000;
const CLOSE_WAIT_MS = 2000;
/** The most operations one frame carries. */
const MAX_FRAME_OPERATIONS = 4096;
/** Room left in a frame for everything but message payloads. */
const FRAME_OVERHEAD_BYTES = 64 * 1024;
/** Status codes after which reconnecting cannot help. */
const PERMANENT_CODES = new Set<number>([
  StatusCode.INVALID_ARGUMENT,
  StatusCode.UNAUTHENTICATED,
  StatusCode.PERMISSION_DENIED,
  StatusCode.ALREADY_EXISTS,
  StatusCode.UNIMPLEMENTED,
  StatusCode.FAILED_PRECONDITION,
]);

/** How a session is set up. */
export interface SessionConfig {
  stub: ChannelLayerServiceClient;
  namespace: string;
  clientPrefix: string;
  clientName: string;
  connectTimeoutMs: number;
  prefetch: number;
  metadata: () => grpc.Metadata;
}

/** What the client knows about its session. */
export interface SessionInfo {
  /** True while a stream is open. */
  readonly connected: boolean;
  /** The session's client prefix. */
  readonly clientPrefix: string;
  /** True when the last stream took over an earlier stream's session. */
  readonly resumed: boolean;
  /** How many streams were opened after the first one. */
  readonly reconnects: number;
  /** The server's answer to the last `open`, once there was one. */
  readonly opened: SessionOpened__Output | undefined;
}

interface PendingOp {
  operation: SessionOperation;
  size: number;
  resolve: (result: OperationResult__Output) => void;
  reject: (error: Error) => void;
  channel: string | undefined;
  written: boolean;
  queuedAt: number;
}

interface Waiter {
  resolve: (payload: Buffer) => void;
  reject: (error: unknown) => void;
}

interface ChannelState {
  /** Delivered messages no waiter took yet, oldest first, with their local deadline. */
  buffer: { deadline: number; payload: Buffer }[];
  /** Waiting `receive()` calls, oldest first. */
  waiters: Waiter[];
  /** Receive ids pending on the server for this channel (cancelled ones excluded). */
  active: Set<number>;
  /** Receive ids whose cancel is not answered yet. */
  cancelling: Set<number>;
}

type Stream = grpc.ClientDuplexStream<SessionRequest, SessionResponse__Output>;

/** One session stream at a time, reopened and resumed until {@link Session.close}. */
export class Session {
  private readonly config: SessionConfig;
  private stream: Stream | undefined;
  private connected = false;
  private started = false;
  private closing = false;
  private failure: ChanlayerError | undefined;
  private opened: SessionOpened__Output | undefined;
  private resumeToken = "";
  private resumed = false;
  private streams = 0;
  private nextId = 1;
  private flushScheduled = false;
  /** Operations not written yet (send and group operations, receives, cancels). */
  private queue: { operation: SessionOperation; op?: PendingOp }[] = [];
  /** Send and group operations waiting for their result, by request id. */
  private readonly ops = new Map<number, PendingOp>();
  private readonly channels = new Map<string, ChannelState>();
  /** The channel of each receive id that is pending or being cancelled. */
  private readonly receiveChannels = new Map<number, string>();
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private wakeBackoff: (() => void) | undefined;
  private runLoop: Promise<void> | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  /** The group memberships of this session's own specific channels. */
  readonly memberships = new Memberships();
  /** Request ids of membership restores not answered yet. */
  private readonly restoring = new Set<number>();

  constructor(config: SessionConfig) {
    this.config = config;
  }

  /** What the client knows about its session. */
  info(): SessionInfo {
    return {
      connected: this.connected,
      clientPrefix: this.opened?.clientPrefix ?? this.config.clientPrefix,
      resumed: this.resumed,
      reconnects: Math.max(0, this.streams - 1),
      opened: this.opened,
    };
  }

  /** Waits until a stream is open, for at most `connectTimeoutMs`. */
  async ready(): Promise<SessionOpened__Output> {
    this.raiseIfFailed();
    this.start();
    if (!this.connected) {
      await new Promise<void>((resolve, reject) => {
        const entry = { resolve: () => done(resolve), reject: (e: Error) => done(() => reject(e)) };
        const timer = setTimeout(() => {
          entry.reject(
            new ServerUnavailable(
              `no session with the server within ${this.config.connectTimeoutMs} ms`,
              { code: StatusCode.UNAVAILABLE },
            ),
          );
        }, this.config.connectTimeoutMs);
        const done = (then: () => void): void => {
          clearTimeout(timer);
          this.readyWaiters = this.readyWaiters.filter((w) => w !== entry);
          then();
        };
        this.readyWaiters.push(entry);
      });
    }
    return this.opened as SessionOpened__Output;
  }

  /**
   * Queues a send or group operation and waits for its result. `build` gets the request id.
   * Rejects with the operation's error (mapped by reason).
   */
  request(
    build: (requestId: number) => SessionOperation,
    size: number,
    channel?: string,
  ): Promise<OperationResult__Output> {
    this.raiseIfFailed();
    this.start();
    const requestId = this.nextId++;
    const operation = build(requestId);
    return new Promise<OperationResult__Output>((resolve, reject) => {
      const op: PendingOp = {
        operation,
        size,
        resolve,
        reject,
        channel,
        written: false,
        queuedAt: Date.now(),
      };
      this.ops.set(requestId, op);
      this.enqueue(operation, op);
      this.armTimeouts();
    });
  }

  /**
   * Waits for the next message of `channel`. Aborting `signal` withdraws the receive; a
   * message already on its way is kept for the next receive of the channel.
   */
  receive(channel: string, signal?: AbortSignal): Promise<Buffer> {
    this.raiseIfFailed();
    if (signal?.aborted) return Promise.reject(signal.reason);
    const buffered = this.popBuffered(channel);
    if (buffered !== undefined) return Promise.resolve(buffered);
    this.start();
    const state = this.channelState(channel);
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = (): void => {
        const index = state.waiters.indexOf(waiter);
        if (index >= 0) state.waiters.splice(index, 1);
        reject(signal?.reason);
        this.reconcile(channel, state);
      };
      const waiter: Waiter = {
        resolve: (payload) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(payload);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      state.waiters.push(waiter);
      this.reconcile(channel, state);
    });
  }

  /**
   * Ends the session. With `release`, the server drops the session's specific channels and
   * memberships at once; without, they stay for the lease grace period (resumable).
   */
  async close(release: boolean): Promise<void> {
    if (this.closing) {
      await this.runLoop;
      return;
    }
    this.closing = true;
    const stream = this.stream;
    if (stream !== undefined && this.connected) {
      if (release) {
        this.queue.push({ operation: { close: {} } });
        this.flush();
      }
      const ended = new Promise<void>((resolve) => {
        stream.once("close", resolve);
        stream.once("end", resolve);
        stream.once("error", () => resolve());
      });
      if (!release) stream.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        ended,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, CLOSE_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      stream.cancel();
    } else if (stream !== undefined) {
      // Still opening: abandon the attempt.
      stream.cancel();
    }
    this.wakeBackoff?.();
    this.fail(new LayerClosed("the channel layer is closed"));
    await this.runLoop;
  }

  // ---- receive bookkeeping ----

  private channelState(channel: string): ChannelState {
    let state = this.channels.get(channel);
    if (state === undefined) {
      state = { buffer: [], waiters: [], active: new Set(), cancelling: new Set() };
      this.channels.set(channel, state);
    }
    return state;
  }

  private popBuffered(channel: string): Buffer | undefined {
    const state = this.channels.get(channel);
    if (state === undefined) return undefined;
    const now = Date.now();
    let payload: Buffer | undefined;
    while (state.buffer.length > 0) {
      const item = state.buffer.shift() as { deadline: number; payload: Buffer };
      if (item.deadline > now) {
        payload = item.payload;
        break;
      }
    }
    this.forgetIfIdle(channel, state);
    return payload;
  }

  private forgetIfIdle(channel: string, state: ChannelState): void {
    if (
      state.buffer.length === 0 &&
      state.waiters.length === 0 &&
      state.active.size === 0 &&
      state.cancelling.size === 0
    ) {
      this.channels.delete(channel);
    }
  }

  /** Brings the server's pending receives of `channel` in line with its local waiters. */
  private reconcile(channel: string, state: ChannelState): void {
    if (this.connected) {
      const wanted = state.waiters.length;
      while (state.active.size < wanted) {
        const receiveId = this.nextId++;
        state.active.add(receiveId);
        this.receiveChannels.set(receiveId, channel);
        this.enqueue({
          receive: {
            receiveId,
            channel,
            maxMessages: isSpecific(channel) ? this.config.prefetch : 1,
          },
        });
      }
      while (state.active.size > wanted) {
        const newest = Math.max(...state.active);
        state.active.delete(newest);
        state.cancelling.add(newest);
        this.enqueue({ cancel: { receiveId: newest } });
      }
    }
    this.forgetIfIdle(channel, state);
  }

  private wake(channel: string, state: ChannelState): void {
    const now = Date.now();
    while (state.waiters.length > 0 && state.buffer.length > 0) {
      const item = state.buffer.shift() as { deadline: number; payload: Buffer };
      if (item.deadline <= now) continue;
      (state.waiters.shift() as Waiter).resolve(item.payload);
    }
    this.reconcile(channel, state);
  }

  // ---- writing ----

  private enqueue(operation: SessionOperation, op?: PendingOp): void {
    this.queue.push(op === undefined ? { operation } : { operation, op });
    if (this.connected && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    const stream = this.stream;
    if (!this.connected || stream === undefined) return;
    const budget = Number(this.opened?.maxMessageBytes ?? 4 * 1024 * 1024) + 1024 * 1024 - FRAME_OVERHEAD_BYTES;
    while (this.queue.length > 0) {
      const operations: SessionOperation[] = [];
      let bytes = 0;
      while (this.queue.length > 0 && operations.length < MAX_FRAME_OPERATIONS) {
        const next = this.queue[0] as { operation: SessionOperation; op?: PendingOp };
        const size = next.op?.size ?? 0;
        if (operations.length > 0 && bytes + size > budget) break;
        this.queue.shift();
        bytes += size;
        operations.push(next.operation);
        if (next.op !== undefined) next.op.written = true;
      }
      stream.write({ operations });
    }
  }

  // ---- connection ----

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.runLoop = this.run();
  }

  private async run(): Promise<void> {
    let backoff = INITIAL_BACKOFF_MS;
    while (!this.closing && this.failure === undefined) {
      let wasOpened = false;
      try {
        wasOpened = await this.serveOnce();
      } catch (error) {
        const mapped = errorFromServiceError(error);
        if (PERMANENT_CODES.has(mapped.code) && !this.closing) {
          this.fail(mapped);
          return;
        }
      }
      if (wasOpened) backoff = INITIAL_BACKOFF_MS;
      if (this.closing || this.failure !== undefined) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff * (0.5 + Math.random()));
        this.wakeBackoff = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeBackoff = undefined;
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /**
   * Opens one stream and serves it until it ends. Resolves with whether it was opened;
   * rejects with the stream's error when it failed before `opened`.
   */
  private serveOnce(): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const stream = this.config.stub.session(this.config.metadata());
      this.stream = stream;
      let opened = false;
      let finished = false;
      const finish = (error?: unknown): void => {
        if (finished) return;
        finished = true;
        this.teardown(stream);
        if (error !== undefined && !opened) reject(error);
        else resolve(opened);
      };
      stream.on("data", (frame: SessionResponse__Output) => {
        for (const event of frame.events) {
          if (event.event === "opened" && event.opened) {
            opened = true;
            this.onOpened(event.opened);
          } else {
            this.dispatch(event);
          }
        }
      });
      stream.on("error", (error) => finish(error));
      stream.on("end", () => finish());
      stream.on("close", () => finish());
      stream.write({
        operations: [
          {
            open: {
              namespace: this.config.namespace,
              clientPrefix: this.opened?.clientPrefix ?? this.config.clientPrefix,
              resumeToken: this.resumeToken,
              clientName: this.config.clientName,
              sharedDeliveries: true,
            },
          },
        ],
      });
    });
  }

  /** True when `channel` is a specific channel of this session's client prefix. */
  isOwnSpecific(channel: string): boolean {
    const bang = channel.indexOf("!");
    if (bang < 0) return false;
    const head = channel.slice(0, bang);
    const clientPrefix = this.opened?.clientPrefix ?? this.config.clientPrefix;
    return head === clientPrefix || head.endsWith(`.${clientPrefix}`);
  }

  private onOpened(opened: SessionOpened__Output): void {
    const hadSession = this.streams > 0;
    this.opened = opened;
    this.resumeToken = opened.resumeToken;
    this.resumed = opened.resumed;
    this.streams += 1;
    this.connected = true;
    if ((hadSession && !opened.resumed) || this.restoring.size > 0) {
      // The server lost the session (a restart, or the lease ran out): its memberships went
      // with it. Restore them before anything else, so no group message is missed.
      this.restoreMemberships();
    }
    for (const [channel, state] of [...this.channels]) this.reconcile(channel, state);
    for (const waiter of this.readyWaiters.slice()) waiter.resolve();
    this.flush();
  }

  /** Puts a `groupAdd` for each remembered membership at the head of the queue. */
  private restoreMemberships(): void {
    this.restoring.clear();
    const restores = this.memberships.toRestore().map(({ group, channel, groupExpirySeconds }) => {
      const requestId = this.nextId++;
      this.restoring.add(requestId);
      return { operation: { groupAdd: { requestId, group, channel, groupExpirySeconds } } };
    });
    this.queue.unshift(...restores);
  }

  private dispatch(event: SessionEvent__Output): void {
    switch (event.event) {
      case "delivery": {
        const delivery = event.delivery;
        if (!delivery) return;
        const channel = this.receiveChannels.get(delivery.receiveId) ?? delivery.channel;
        this.receiveChannels.delete(delivery.receiveId);
        const state = this.channelState(channel);
        state.active.delete(delivery.receiveId);
        const now = Date.now();
        for (const message of delivery.messages) {
          state.buffer.push({ deadline: now + Number(message.expiresInMs), payload: message.message });
        }
        this.wake(channel, state);
        return;
      }
      case "sharedDelivery": {
        // One message for several receives (the members of a group that wait here).
        const shared = event.sharedDelivery;
        if (!shared) return;
        const deadline = Date.now() + Number(shared.expiresInMs);
        for (const receiveId of shared.receiveIds) {
          const channel = this.receiveChannels.get(receiveId);
          this.receiveChannels.delete(receiveId);
          if (channel === undefined) continue;
          const state = this.channelState(channel);
          state.active.delete(receiveId);
          state.buffer.push({ deadline, payload: shared.message });
          this.wake(channel, state);
        }
        return;
      }
      case "receiveFailed": {
        const failed = event.receiveFailed;
        if (!failed) return;
        const channel = this.receiveChannels.get(failed.receiveId);
        this.receiveChannels.delete(failed.receiveId);
        if (channel === undefined) return;
        const state = this.channelState(channel);
        const wasActive = state.active.delete(failed.receiveId);
        state.cancelling.delete(failed.receiveId);
        const detail = failed.error;
        if (wasActive && state.waiters.length > 0) {
          (state.waiters.shift() as Waiter).reject(
            errorFromReason(detail?.code ?? 0, detail?.reason ?? "", detail?.message ?? "receive failed"),
          );
        }
        this.reconcile(channel, state);
        return;
      }
      case "cancelled": {
        const cancelled = event.cancelled;
        if (!cancelled) return;
        const channel = this.receiveChannels.get(cancelled.receiveId);
        this.receiveChannels.delete(cancelled.receiveId);
        if (channel === undefined) return;
        // When was_pending is false the delivery came earlier on the stream: it is buffered.
        const state = this.channelState(channel);
        state.cancelling.delete(cancelled.receiveId);
        this.reconcile(channel, state);
        return;
      }
      case "result": {
        const result = event.result;
        if (!result) return;
        // A restored membership: nobody waits for it. One that failed is the server's to
        // report (the channel is invalid or the group full); it is not retried.
        if (this.restoring.delete(result.requestId)) return;
        const op = this.ops.get(result.requestId);
        if (op === undefined) return;
        this.ops.delete(result.requestId);
        if (result.error) {
          const { code, reason, message } = result.error;
          op.reject(errorFromReason(code, reason, message, op.channel));
        } else {
          op.resolve(result);
        }
        return;
      }
      case "closing": {
        const reason = event.closing?.reason;
        if (reason === "SESSION_CLOSE_REASON_RESUMED_ELSEWHERE") {
          this.fail(
            new ChanlayerError("another stream resumed this session", {
              code: StatusCode.ABORTED,
              reason: "RESUMED_ELSEWHERE",
            }),
          );
        }
        // SHUTDOWN: the stream ends after this frame and the run loop resumes elsewhere.
        return;
      }
      default:
        return;
    }
  }

  /** Forgets a stream that ended: fails what it had in flight, keeps what it never wrote. */
  private teardown(stream: Stream): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.connected = false;
    stream.removeAllListeners("data");
    stream.on("error", () => undefined);
    const lost = new ServerUnavailable("the session stream broke before the server answered", {
      code: StatusCode.UNAVAILABLE,
    });
    for (const [requestId, op] of [...this.ops]) {
      if (op.written) {
        this.ops.delete(requestId);
        op.reject(lost);
      }
    }
    // Receives and cancels are re-derived from the waiters when the next stream opens.
    this.queue = this.queue.filter((item) => item.op !== undefined);
    this.receiveChannels.clear();
    for (const [channel, state] of [...this.channels]) {
      state.active.clear();
      state.cancelling.clear();
      this.forgetIfIdle(channel, state);
    }
    this.armTimeouts();
  }

  /** While disconnected, fails operations that waited longer than `connectTimeoutMs`. */
  private armTimeouts(): void {
    if (this.connected || this.timeoutTimer !== undefined || this.ops.size === 0) return;
    this.timeoutTimer = setTimeout(() => {
      this.timeoutTimer = undefined;
      if (this.connected) return;
      const limit = Date.now() - this.config.connectTimeoutMs;
      for (const [requestId, op] of [...this.ops]) {
        if (!op.written && op.queuedAt <= limit) {
          this.ops.delete(requestId);
          this.queue = this.queue.filter((item) => item.op !== op);
          op.reject(
            new ServerUnavailable(`no session with the server within ${this.config.connectTimeoutMs} ms`, {
              code: StatusCode.UNAVAILABLE,
            }),
          );
        }
      }
      this.armTimeouts();
    }, 100);
    this.timeoutTimer.unref();
  }

  private raiseIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closing) throw new LayerClosed("the channel layer is closed");
  }

  /** Fails everything for good. */
  private fail(error: ChanlayerError): void {
    if (this.failure === undefined) this.failure = error;
    const failure = this.failure;
    this.queue = [];
    for (const op of this.ops.values()) op.reject(failure);
    this.ops.clear();
    for (const state of this.channels.values()) {
      for (const waiter of state.waiters.splice(0)) waiter.reject(failure);
    }
    this.channels.clear();
    for (const waiter of this.readyWaiters.slice()) waiter.reject(failure);
    if (this.timeoutTimer !== undefined) clearTimeout(this.timeoutTimer);
    this.timeoutTimer = undefined;
    const stream = this.stream;
    if (stream !== undefined && !this.closing) stream.cancel();
  }
}
