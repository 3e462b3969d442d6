/**
 * Errors of the chanlayer client.
 *
 * Every error the server reports carries a machine-readable `reason` (the `ErrorInfo.reason` of
 * a gRPC status in the `chanlayer.dev` domain, or the `reason` of a session `ErrorDetail`). The
 * client maps reasons, never message text, to the classes below; a reason without a class of
 * its own becomes a plain {@link ChanlayerError}.
 *
 * @module
 */

/** The canonical gRPC status codes the client distinguishes. */
export const StatusCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** The `ErrorInfo.domain` of the server's errors. */
export const ERROR_DOMAIN = "chanlayer.dev";

/** Options shared by every error class. */
export interface ChanlayerErrorOptions {
  /** The canonical gRPC status code, as a number (0 when unknown). */
  code?: number;
  /** The server's machine-readable reason, for example `CHANNEL_FULL` ("" when none). */
  reason?: string;
  /** The error that caused this one. */
  cause?: unknown;
}

/** Base class of every error the client raises for a server or connection failure. */
export class ChanlayerError extends Error {
  /** The canonical gRPC status code, as a number (0 when unknown). */
  readonly code: number;
  /** The server's machine-readable reason, for example `CHANNEL_FULL` ("" when none). */
  readonly reason: string;

  constructor(message: string, options: ChanlayerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 0;
    this.reason = options.reason ?? "";
  }
}

/** A send found its channel holding `capacity` unexpired messages (`CHANNEL_FULL`). */
export class ChannelFull extends ChanlayerError {
  /** The full channel, when known. */
  readonly channel: string | undefined;

  constructor(message: string, options: ChanlayerErrorOptions & { channel?: string } = {}) {
    super(message, { code: StatusCode.RESOURCE_EXHAUSTED, reason: "CHANNEL_FULL", ...options });
    this.channel = options.channel;
  }
}

/** The encoded message exceeds the server's limit (`MESSAGE_TOO_LARGE`). */
export class MessageTooLarge extends ChanlayerError {}

/** A channel name breaks Channels' rules (`INVALID_CHANNEL_NAME`). */
export class InvalidChannelName extends ChanlayerError {}

/** A group name breaks Channels' rules (`INVALID_GROUP_NAME`). */
export class InvalidGroupName extends ChanlayerError {}

/** Another live session of the namespace holds the client prefix (`CLIENT_PREFIX_IN_USE`). */
export class ClientPrefixInUse extends ChanlayerError {}

/** The session holds the server's maximum of pending receives (`TOO_MANY_PENDING_RECEIVES`). */
export class TooManyPendingReceives extends ChanlayerError {}

/**
 * The server cannot be reached within `connectTimeoutMs`, or the connection broke while an
 * operation waited for its acknowledgement (it may or may not have been applied; it is never
 * sent twice).
 */
export class ServerUnavailable extends ChanlayerError {}

/** A unary call did not complete within `callTimeoutMs`. */
export class ChanlayerTimeout extends ChanlayerError {}

/** The layer was closed: no more calls are possible. */
export class LayerClosed extends ChanlayerError {}

/**
 * Builds the error for a server error.
 *
 * @param code - The canonical gRPC status code number.
 * @param reason - The `ErrorInfo` or `ErrorDetail` reason ("" when the server sent none).
 * @param message - The human-readable text, used only as the error's message.
 * @param channel - The channel of a send, carried by {@link ChannelFull}.
 */
export function errorFromReason(
  code: number,
  reason: string,
  message: string,
  channel?: string,
): ChanlayerError {
  const options = { code, reason };
  switch (reason) {
    case "CHANNEL_FULL":
      return new ChannelFull(message || `channel ${channel ?? ""} is full`, {
        ...options,
        ...(channel === undefined ? {} : { channel }),
      });
    case "MESSAGE_TOO_LARGE":
      return new MessageTooLarge(message, options);
    case "INVALID_CHANNEL_NAME":
      return new InvalidChannelName(message, options);
    case "INVALID_GROUP_NAME":
      return new InvalidGroupName(message, options);
    case "CLIENT_PREFIX_IN_USE":
      return new ClientPrefixInUse(message, options);
    case "TOO_MANY_PENDING_RECEIVES":
      return new TooManyPendingReceives(message, options);
    default:
      break;
  }
  if (!reason && (code === StatusCode.RESOURCE_EXHAUSTED || code === StatusCode.OUT_OF_RANGE)) {
    // gRPC's own frame-size limit, hit before the server could look at the message.
    return new MessageTooLarge(message, options);
  }
  if (code === StatusCode.UNAVAILABLE) return new ServerUnavailable(message, options);
  if (code === StatusCode.DEADLINE_EXCEEDED) return new ChanlayerTimeout(message, options);
  return new ChanlayerError(message || reason, options);
}
