// Original file: proto/chanlayer/v1/channel_layer.proto

import type { GroupMember as _chanlayer_v1_GroupMember, GroupMember__Output as _chanlayer_v1_GroupMember__Output } from '../../chanlayer/v1/GroupMember.js';

/**
 * ListGroupMembersResponse is the response of `ListGroupMembers`.
 */
export interface ListGroupMembersResponse {
  /**
   * The members of this page, in name order.
   */
  'members'?: (_chanlayer_v1_GroupMember)[];
  /**
   * The token of the next page, or empty when this page is the last.
   */
  'nextPageToken'?: (string);
  /**
   * How many unexpired members the group has in all.
   */
  'totalSize'?: (number);
  /**
   * In cluster mode, how many nodes known to be up did not answer in time: their members
   * are neither listed nor counted. Always 0 on a single node.
   */
  'missingNodes'?: (number);
}

/**
 * ListGroupMembersResponse is the response of `ListGroupMembers`.
 */
export interface ListGroupMembersResponse__Output {
  /**
   * The members of this page, in name order.
   */
  'members': (_chanlayer_v1_GroupMember__Output)[];
  /**
   * The token of the next page, or empty when this page is the last.
   */
  'nextPageToken': (string);
  /**
   * How many unexpired members the group has in all.
   */
  'totalSize': (number);
  /**
   * In cluster mode, how many nodes known to be up did not answer in time: their members
   * are neither listed nor counted. Always 0 on a single node.
   */
  'missingNodes': (number);
}
