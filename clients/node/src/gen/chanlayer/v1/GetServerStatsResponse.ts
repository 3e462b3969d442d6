// Original file: proto/chanlayer/v1/channel_layer.proto

import type { Long } from '@grpc/proto-loader';

/**
 * GetServerStatsResponse is the response of `GetServerStats`.
 */
export interface GetServerStatsResponse {
  /**
   * How long the server has run, in seconds.
   */
  'uptimeSeconds'?: (number | string | Long);
  /**
   * How many sessions have a live stream.
   */
  'sessionsOpen'?: (number | string | Long);
  /**
   * How many sessions wait to be resumed within their lease grace period.
   */
  'sessionsDetached'?: (number | string | Long);
  /**
   * How many receives wait for a message, over all sessions.
   */
  'pendingReceives'?: (number | string | Long);
  /**
   * How many channels exist (with queued messages or waiting receives).
   */
  'channels'?: (number | string | Long);
  /**
   * How many groups exist.
   */
  'groups'?: (number | string | Long);
  /**
   * How many group memberships exist.
   */
  'memberships'?: (number | string | Long);
  /**
   * How many messages are queued.
   */
  'queuedMessages'?: (number | string | Long);
  /**
   * The total size of the queued messages, in bytes.
   */
  'queuedBytes'?: (number | string | Long);
  /**
   * How many messages were accepted by Send and GroupSend (one per member), in all.
   */
  'messagesSentTotal'?: (number | string | Long);
  /**
   * How many messages were delivered to a receive, in all.
   */
  'messagesDeliveredTotal'?: (number | string | Long);
  /**
   * How many messages were dropped because their channel was full.
   */
  'droppedChannelFullTotal'?: (number | string | Long);
  /**
   * How many messages expired unread.
   */
  'droppedExpiredTotal'?: (number | string | Long);
  /**
   * How many messages were dropped with the specific channels of a session that ended.
   */
  'droppedSessionGoneTotal'?: (number | string | Long);
  /**
   * How many messages were dropped by Flush.
   */
  'droppedFlushedTotal'?: (number | string | Long);
  /**
   * How many group memberships expired.
   */
  'membershipsExpiredTotal'?: (number | string | Long);
  /**
   * How many group memberships were removed because their session ended.
   */
  'membershipsReleasedTotal'?: (number | string | Long);
  /**
   * How many nodes the figures above are summed over: 1 on a single node (or with
   * `this_node_only`); in cluster mode this node and every other node that answered in
   * time. `uptime_seconds` is always the answering node's.
   */
  'nodes'?: (number);
  /**
   * In cluster mode, how many nodes known to be up did not answer in time: their figures
   * are not counted. Always 0 on a single node.
   */
  'missingNodes'?: (number);
}

/**
 * GetServerStatsResponse is the response of `GetServerStats`.
 */
export interface GetServerStatsResponse__Output {
  /**
   * How long the server has run, in seconds.
   */
  'uptimeSeconds': (number);
  /**
   * How many sessions have a live stream.
   */
  'sessionsOpen': (number);
  /**
   * How many sessions wait to be resumed within their lease grace period.
   */
  'sessionsDetached': (number);
  /**
   * How many receives wait for a message, over all sessions.
   */
  'pendingReceives': (number);
  /**
   * How many channels exist (with queued messages or waiting receives).
   */
  'channels': (number);
  /**
   * How many groups exist.
   */
  'groups': (number);
  /**
   * How many group memberships exist.
   */
  'memberships': (number);
  /**
   * How many messages are queued.
   */
  'queuedMessages': (number);
  /**
   * The total size of the queued messages, in bytes.
   */
  'queuedBytes': (number);
  /**
   * How many messages were accepted by Send and GroupSend (one per member), in all.
   */
  'messagesSentTotal': (number);
  /**
   * How many messages were delivered to a receive, in all.
   */
  'messagesDeliveredTotal': (number);
  /**
   * How many messages were dropped because their channel was full.
   */
  'droppedChannelFullTotal': (number);
  /**
   * How many messages expired unread.
   */
  'droppedExpiredTotal': (number);
  /**
   * How many messages were dropped with the specific channels of a session that ended.
   */
  'droppedSessionGoneTotal': (number);
  /**
   * How many messages were dropped by Flush.
   */
  'droppedFlushedTotal': (number);
  /**
   * How many group memberships expired.
   */
  'membershipsExpiredTotal': (number);
  /**
   * How many group memberships were removed because their session ended.
   */
  'membershipsReleasedTotal': (number);
  /**
   * How many nodes the figures above are summed over: 1 on a single node (or with
   * `this_node_only`); in cluster mode this node and every other node that answered in
   * time. `uptime_seconds` is always the answering node's.
   */
  'nodes': (number);
  /**
   * In cluster mode, how many nodes known to be up did not answer in time: their figures
   * are not counted. Always 0 on a single node.
   */
  'missingNodes': (number);
}
