/**
 * Message encoding: msgpack maps, byte-compatible with the Python client (and channels_redis):
 * strings are msgpack `str`, `Uint8Array`/`Buffer` values are msgpack `bin`, integers use the
 * smallest integer format and other numbers are float64.
 *
 * JavaScript cannot tell `1.0` from `1`: a whole number is always encoded as an integer.
 *
 * @module
 */

import { decode, encode } from "@msgpack/msgpack";

/** A value a channel-layer message may hold (Channels' message types). */
export type MessageValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | MessageValue[]
  | { [key: string]: MessageValue };

/** A channel-layer message: a map with string keys, usually with a `type`. */
export type Message = { [key: string]: MessageValue };

/** Turns messages into bytes and back. */
export interface Serializer {
  /** Encodes a message. */
  serialize(message: Message): Uint8Array;
  /** Decodes bytes produced by any chanlayer client's serializer. */
  deserialize(data: Uint8Array): Message;
}

/** The default serializer: msgpack, as `msgpack.packb`/`unpackb` with their defaults. */
export const msgpackSerializer: Serializer = {
  serialize(message: Message): Uint8Array {
    return encode(message, { ignoreUndefined: true });
  },
  deserialize(data: Uint8Array): Message {
    const value = decode(data);
    if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
      throw new TypeError("a channel-layer message must decode to a map");
    }
    return value as Message;
  },
};
