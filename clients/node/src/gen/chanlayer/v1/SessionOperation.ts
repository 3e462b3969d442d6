// Original file: proto/chanlayer/v1/channel_layer.proto

import type { OpenOperation as _chanlayer_v1_OpenOperation, OpenOperation__Output as _chanlayer_v1_OpenOperation__Output } from '../../chanlayer/v1/OpenOperation.js';
import type { ReceiveOperation as _chanlayer_v1_ReceiveOperation, ReceiveOperation__Output as _chanlayer_v1_ReceiveOperation__Output } from '../../chanlayer/v1/ReceiveOperation.js';
import type { CancelOperation as _chanlayer_v1_CancelOperation, CancelOperation__Output as _chanlayer_v1_CancelOperation__Output } from '../../chanlayer/v1/CancelOperation.js';
import type { SendOperation as _chanlayer_v1_SendOperation, SendOperation__Output as _chanlayer_v1_SendOperation__Output } from '../../chanlayer/v1/SendOperation.js';
import type { GroupAddOperation as _chanlayer_v1_GroupAddOperation, GroupAddOperation__Output as _chanlayer_v1_GroupAddOperation__Output } from '../../chanlayer/v1/GroupAddOperation.js';
import type { GroupDiscardOperation as _chanlayer_v1_GroupDiscardOperation, GroupDiscardOperation__Output as _chanlayer_v1_GroupDiscardOperation__Output } from '../../chanlayer/v1/GroupDiscardOperation.js';
import type { GroupSendOperation as _chanlayer_v1_GroupSendOperation, GroupSendOperation__Output as _chanlayer_v1_GroupSendOperation__Output } from '../../chanlayer/v1/GroupSendOperation.js';
import type { CloseOperation as _chanlayer_v1_CloseOperation, CloseOperation__Output as _chanlayer_v1_CloseOperation__Output } from '../../chanlayer/v1/CloseOperation.js';

/**
 * SessionOperation is one operation on a session stream.
 */
export interface SessionOperation {
  /**
   * Opens the session. Must be the first operation of the stream, and only the first.
   */
  'open'?: (_chanlayer_v1_OpenOperation | null);
  /**
   * Registers demand for messages of a channel.
   */
  'receive'?: (_chanlayer_v1_ReceiveOperation | null);
  /**
   * Withdraws a receive that has not been answered.
   */
  'cancel'?: (_chanlayer_v1_CancelOperation | null);
  /**
   * Sends a message, as `Send` does; acknowledged with `result`.
   */
  'send'?: (_chanlayer_v1_SendOperation | null);
  /**
   * Adds a channel to a group, as `GroupAdd` does; acknowledged with `result`.
   */
  'groupAdd'?: (_chanlayer_v1_GroupAddOperation | null);
  /**
   * Removes a channel from a group, as `GroupDiscard` does; acknowledged with `result`.
   */
  'groupDiscard'?: (_chanlayer_v1_GroupDiscardOperation | null);
  /**
   * Sends a message to a group, as `GroupSend` does; acknowledged with `result`.
   */
  'groupSend'?: (_chanlayer_v1_GroupSendOperation | null);
  /**
   * Ends the session now: its specific channels and their memberships are released at
   * once instead of after the lease grace period. The server then ends the stream.
   */
  'close'?: (_chanlayer_v1_CloseOperation | null);
  /**
   * The operation.
   */
  'operation'?: "open"|"receive"|"cancel"|"send"|"groupAdd"|"groupDiscard"|"groupSend"|"close";
}

/**
 * SessionOperation is one operation on a session stream.
 */
export interface SessionOperation__Output {
  /**
   * Opens the session. Must be the first operation of the stream, and only the first.
   */
  'open'?: (_chanlayer_v1_OpenOperation__Output | null);
  /**
   * Registers demand for messages of a channel.
   */
  'receive'?: (_chanlayer_v1_ReceiveOperation__Output | null);
  /**
   * Withdraws a receive that has not been answered.
   */
  'cancel'?: (_chanlayer_v1_CancelOperation__Output | null);
  /**
   * Sends a message, as `Send` does; acknowledged with `result`.
   */
  'send'?: (_chanlayer_v1_SendOperation__Output | null);
  /**
   * Adds a channel to a group, as `GroupAdd` does; acknowledged with `result`.
   */
  'groupAdd'?: (_chanlayer_v1_GroupAddOperation__Output | null);
  /**
   * Removes a channel from a group, as `GroupDiscard` does; acknowledged with `result`.
   */
  'groupDiscard'?: (_chanlayer_v1_GroupDiscardOperation__Output | null);
  /**
   * Sends a message to a group, as `GroupSend` does; acknowledged with `result`.
   */
  'groupSend'?: (_chanlayer_v1_GroupSendOperation__Output | null);
  /**
   * Ends the session now: its specific channels and their memberships are released at
   * once instead of after the lease grace period. The server then ends the stream.
   */
  'close'?: (_chanlayer_v1_CloseOperation__Output | null);
  /**
   * The operation.
   */
  'operation'?: "open"|"receive"|"cancel"|"send"|"groupAdd"|"groupDiscard"|"groupSend"|"close";
}
