// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GetGroupResponse is the response of `GetGroup`.
 */
export interface GetGroupResponse {
  /**
   * The group name.
   */
  'group'?: (string);
  /**
   * How many unexpired members the group has.
   */
  'memberCount'?: (number);
}

/**
 * GetGroupResponse is the response of `GetGroup`.
 */
export interface GetGroupResponse__Output {
  /**
   * The group name.
   */
  'group': (string);
  /**
   * How many unexpired members the group has.
   */
  'memberCount': (number);
}
