// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GroupSendResponse is the response of `GroupSend`.
 */
export interface GroupSendResponse {
  /**
   * How many members got the message, queued or handed to a waiting receive.
   */
  'delivered'?: (number);
  /**
   * How many members did not get the message because their channel was full.
   */
  'dropped'?: (number);
}

/**
 * GroupSendResponse is the response of `GroupSend`.
 */
export interface GroupSendResponse__Output {
  /**
   * How many members got the message, queued or handed to a waiting receive.
   */
  'delivered': (number);
  /**
   * How many members did not get the message because their channel was full.
   */
  'dropped': (number);
}
