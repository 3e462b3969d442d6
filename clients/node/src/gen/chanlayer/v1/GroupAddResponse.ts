// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GroupAddResponse is the response of `GroupAdd`.
 */
export interface GroupAddResponse {
  /**
   * True when the channel was not a member before this call.
   */
  'added'?: (boolean);
}

/**
 * GroupAddResponse is the response of `GroupAdd`.
 */
export interface GroupAddResponse__Output {
  /**
   * True when the channel was not a member before this call.
   */
  'added': (boolean);
}
