// Original file: proto/chanlayer/v1/channel_layer.proto

import type { SessionOpened as _chanlayer_v1_SessionOpened, SessionOpened__Output as _chanlayer_v1_SessionOpened__Output } from '../../chanlayer/v1/SessionOpened.js';
import type { Delivery as _chanlayer_v1_Delivery, Delivery__Output as _chanlayer_v1_Delivery__Output } from '../../chanlayer/v1/Delivery.js';
import type { OperationResult as _chanlayer_v1_OperationResult, OperationResult__Output as _chanlayer_v1_OperationResult__Output } from '../../chanlayer/v1/OperationResult.js';
import type { ReceiveFailed as _chanlayer_v1_ReceiveFailed, ReceiveFailed__Output as _chanlayer_v1_ReceiveFailed__Output } from '../../chanlayer/v1/ReceiveFailed.js';
import type { ReceiveCancelled as _chanlayer_v1_ReceiveCancelled, ReceiveCancelled__Output as _chanlayer_v1_ReceiveCancelled__Output } from '../../chanlayer/v1/ReceiveCancelled.js';
import type { SessionClosing as _chanlayer_v1_SessionClosing, SessionClosing__Output as _chanlayer_v1_SessionClosing__Output } from '../../chanlayer/v1/SessionClosing.js';
import type { SharedDelivery as _chanlayer_v1_SharedDelivery, SharedDelivery__Output as _chanlayer_v1_SharedDelivery__Output } from '../../chanlayer/v1/SharedDelivery.js';

/**
 * SessionEvent is one event on a session stream.
 */
export interface SessionEvent {
  /**
   * The answer to `open`.
   */
  'opened'?: (_chanlayer_v1_SessionOpened | null);
  /**
   * Messages for a receive.
   */
  'delivery'?: (_chanlayer_v1_Delivery | null);
  /**
   * The result of a send or group operation.
   */
  'result'?: (_chanlayer_v1_OperationResult | null);
  /**
   * A receive that was refused or ended without messages.
   */
  'receiveFailed'?: (_chanlayer_v1_ReceiveFailed | null);
  /**
   * The answer to `cancel`.
   */
  'cancelled'?: (_chanlayer_v1_ReceiveCancelled | null);
  /**
   * The server is about to end the stream (it is shutting down, or `close` was asked).
   */
  'closing'?: (_chanlayer_v1_SessionClosing | null);
  /**
   * One message for several receives: only on streams opened with `shared_deliveries`.
   */
  'sharedDelivery'?: (_chanlayer_v1_SharedDelivery | null);
  /**
   * The event.
   */
  'event'?: "opened"|"delivery"|"result"|"receiveFailed"|"cancelled"|"closing"|"sharedDelivery";
}

/**
 * SessionEvent is one event on a session stream.
 */
export interface SessionEvent__Output {
  /**
   * The answer to `open`.
   */
  'opened'?: (_chanlayer_v1_SessionOpened__Output | null);
  /**
   * Messages for a receive.
   */
  'delivery'?: (_chanlayer_v1_Delivery__Output | null);
  /**
   * The result of a send or group operation.
   */
  'result'?: (_chanlayer_v1_OperationResult__Output | null);
  /**
   * A receive that was refused or ended without messages.
   */
  'receiveFailed'?: (_chanlayer_v1_ReceiveFailed__Output | null);
  /**
   * The answer to `cancel`.
   */
  'cancelled'?: (_chanlayer_v1_ReceiveCancelled__Output | null);
  /**
   * The server is about to end the stream (it is shutting down, or `close` was asked).
   */
  'closing'?: (_chanlayer_v1_SessionClosing__Output | null);
  /**
   * One message for several receives: only on streams opened with `shared_deliveries`.
   */
  'sharedDelivery'?: (_chanlayer_v1_SharedDelivery__Output | null);
  /**
   * The event.
   */
  'event'?: "opened"|"delivery"|"result"|"receiveFailed"|"cancelled"|"closing"|"sharedDelivery";
}
