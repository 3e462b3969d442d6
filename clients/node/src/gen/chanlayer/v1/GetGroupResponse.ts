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
  /**
   * In cluster mode, how many nodes known to be up did not answer in time: their members
   * are not counted. Always 0 on a single node.
   */
  'missingNodes'?: (number);
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
  /**
   * In cluster mode, how many nodes known to be up did not answer in time: their members
   * are not counted. Always 0 on a single node.
   */
  'missingNodes': (number);
}
