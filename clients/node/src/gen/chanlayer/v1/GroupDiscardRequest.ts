// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GroupDiscardRequest is the request of `GroupDiscard`.
 */
export interface GroupDiscardRequest {
  /**
   * The namespace of the group and the channel.
   */
  'namespace'?: (string);
  /**
   * The group name.
   */
  'group'?: (string);
  /**
   * The channel to remove.
   */
  'channel'?: (string);
}

/**
 * GroupDiscardRequest is the request of `GroupDiscard`.
 */
export interface GroupDiscardRequest__Output {
  /**
   * The namespace of the group and the channel.
   */
  'namespace': (string);
  /**
   * The group name.
   */
  'group': (string);
  /**
   * The channel to remove.
   */
  'channel': (string);
}
