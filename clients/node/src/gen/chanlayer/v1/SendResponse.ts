// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * SendResponse is the response of `Send`.
 */
export interface SendResponse {
  /**
   * True when the message was handed straight to a waiting receive, false when it was
   * queued.
   */
  'delivered'?: (boolean);
}

/**
 * SendResponse is the response of `Send`.
 */
export interface SendResponse__Output {
  /**
   * True when the message was handed straight to a waiting receive, false when it was
   * queued.
   */
  'delivered': (boolean);
}
