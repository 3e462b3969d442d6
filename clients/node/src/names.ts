/**
 * Channels' name rules and capacity patterns, applied on the client so that a bad name fails
 * before it reaches the network, with the same rules the server enforces.
 *
 * @module
 */

import { InvalidChannelName, InvalidGroupName, StatusCode } from "./errors.js";

/** Names must be shorter than this many characters (Channels' `MAX_NAME_LENGTH`). */
export const MAX_NAME_LENGTH = 100;

const CHANNEL_NAME = /^[a-zA-Z\d\-_.]+(![a-zA-Z\d\-_.]*)?$/;
const GROUP_NAME = /^[a-zA-Z\d\-_.]+$/;

/** True when `name` is a valid channel name: ASCII letters, digits, `-_.`, one optional `!`. */
export function isValidChannelName(name: string): boolean {
  return typeof name === "string" && name.length < MAX_NAME_LENGTH && CHANNEL_NAME.test(name);
}

/** True when `name` is a valid group name: ASCII letters, digits, `-_.`. */
export function isValidGroupName(name: string): boolean {
  return typeof name === "string" && name.length < MAX_NAME_LENGTH && GROUP_NAME.test(name);
}

/** Throws {@link InvalidChannelName} unless `name` is a valid channel name. */
export function requireValidChannelName(name: string): void {
  if (!isValidChannelName(name)) {
    throw new InvalidChannelName(
      `Channel name must be a valid unicode string with length < ${MAX_NAME_LENGTH} containing ` +
        `only ASCII alphanumerics, hyphens, underscores, or periods, not ${JSON.stringify(name)}`,
      { code: StatusCode.INVALID_ARGUMENT, reason: "INVALID_CHANNEL_NAME" },
    );
  }
}

/** Throws {@link InvalidGroupName} unless `name` is a valid group name. */
export function requireValidGroupName(name: string): void {
  if (!isValidGroupName(name)) {
    throw new InvalidGroupName(
      `Group name must be a valid unicode string with length < ${MAX_NAME_LENGTH} containing ` +
        `only ASCII alphanumerics, hyphens, underscores, or periods, not ${JSON.stringify(name)}`,
      { code: StatusCode.INVALID_ARGUMENT, reason: "INVALID_GROUP_NAME" },
    );
  }
}

/** True when `channel` is process-specific (its name holds a `!`). */
export function isSpecific(channel: string): boolean {
  return channel.includes("!");
}

/**
 * Translates a shell-style glob (Python's `fnmatch`) into an anchored regular expression:
 * `*` matches anything, `?` one character, `[seq]` and `[!seq]` a character set.
 */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*") {
      out += "[\\s\\S]*";
    } else if (c === "?") {
      out += "[\\s\\S]";
    } else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) {
        out += "\\[";
        continue;
      }
      let set = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
      if (set.startsWith("!")) set = "^" + set.slice(1);
      else if (set.startsWith("^")) set = "\\" + set;
      out += `[${set}]`;
      i = end;
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
    }
  }
  return new RegExp(`^(?:${out})$`);
}
