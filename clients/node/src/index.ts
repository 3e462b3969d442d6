/**
 * `@chanlayer/client`: the Django Channels channel layer, from Node, over a chanlayer server.
 *
 * @packageDocumentation
 */

export {
  ChannelLayer,
  CLIENT_NAME,
  type ChannelInfo,
  type ChannelLayerOptions,
  type GroupMemberInfo,
  type GroupSendResult,
  type ReceiveOptions,
  type ServerStats,
} from "./layer.js";
export {
  ChanlayerError,
  ChanlayerTimeout,
  ChannelFull,
  ClientPrefixInUse,
  ERROR_DOMAIN,
  errorFromReason,
  InvalidChannelName,
  InvalidGroupName,
  LayerClosed,
  MessageTooLarge,
  ServerUnavailable,
  StatusCode,
  TooManyPendingReceives,
  type ChanlayerErrorOptions,
} from "./errors.js";
export {
  isValidChannelName,
  isValidGroupName,
  MAX_NAME_LENGTH,
  requireValidChannelName,
  requireValidGroupName,
} from "./names.js";
export { type Message, type MessageValue, msgpackSerializer, type Serializer } from "./serializer.js";
export type { SessionInfo } from "./session.js";
