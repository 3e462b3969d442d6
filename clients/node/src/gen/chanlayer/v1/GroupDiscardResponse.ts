// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GroupDiscardResponse is the response of `GroupDiscard`.
 */
export interface GroupDiscardResponse {
  /**
   * True when the channel was a member before this call.
   */
  'removed'?: (boolean);
}

/**
 * GroupDiscardResponse is the response of `GroupDiscard`.
 */
export interface GroupDiscardResponse__Output {
  /**
   * True when the channel was a member before this call.
   */
  'removed': (boolean);
}
