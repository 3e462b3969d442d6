// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * ListGroupMembersRequest is the request of `ListGroupMembers`.
 */
export interface ListGroupMembersRequest {
  /**
   * The namespace of the group.
   */
  'namespace'?: (string);
  /**
   * The group name.
   */
  'group'?: (string);
  /**
   * The largest number of members to return. Zero means 1 000; at most 10 000.
   */
  'pageSize'?: (number);
  /**
   * The `next_page_token` of the previous page, or empty for the first page.
   */
  'pageToken'?: (string);
}

/**
 * ListGroupMembersRequest is the request of `ListGroupMembers`.
 */
export interface ListGroupMembersRequest__Output {
  /**
   * The namespace of the group.
   */
  'namespace': (string);
  /**
   * The group name.
   */
  'group': (string);
  /**
   * The largest number of members to return. Zero means 1 000; at most 10 000.
   */
  'pageSize': (number);
  /**
   * The `next_page_token` of the previous page, or empty for the first page.
   */
  'pageToken': (string);
}
