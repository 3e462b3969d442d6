// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * FlushRequest is the request of `Flush`.
 */
export interface FlushRequest {
  /**
   * The namespace to clear.
   */
  'namespace'?: (string);
}

/**
 * FlushRequest is the request of `Flush`.
 */
export interface FlushRequest__Output {
  /**
   * The namespace to clear.
   */
  'namespace': (string);
}
