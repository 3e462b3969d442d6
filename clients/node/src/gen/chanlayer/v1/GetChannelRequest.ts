// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GetChannelRequest is the request of `GetChannel`.
 */
export interface GetChannelRequest {
  /**
   * The namespace of the channel.
   */
  'namespace'?: (string);
  /**
   * The channel name.
   */
  'channel'?: (string);
}

/**
 * GetChannelRequest is the request of `GetChannel`.
 */
export interface GetChannelRequest__Output {
  /**
   * The namespace of the channel.
   */
  'namespace': (string);
  /**
   * The channel name.
   */
  'channel': (string);
}
