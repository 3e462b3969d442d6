// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GetGroupRequest is the request of `GetGroup`.
 */
export interface GetGroupRequest {
  /**
   * The namespace of the group.
   */
  'namespace'?: (string);
  /**
   * The group name.
   */
  'group'?: (string);
}

/**
 * GetGroupRequest is the request of `GetGroup`.
 */
export interface GetGroupRequest__Output {
  /**
   * The namespace of the group.
   */
  'namespace': (string);
  /**
   * The group name.
   */
  'group': (string);
}
