// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GetServerStatsRequest is the request of `GetServerStats`.
 */
export interface GetServerStatsRequest {
  /**
   * In cluster mode, answer for this node alone instead of the whole cluster. Ignored on a
   * single node.
   */
  'thisNodeOnly'?: (boolean);
}

/**
 * GetServerStatsRequest is the request of `GetServerStats`.
 */
export interface GetServerStatsRequest__Output {
  /**
   * In cluster mode, answer for this node alone instead of the whole cluster. Ignored on a
   * single node.
   */
  'thisNodeOnly': (boolean);
}
