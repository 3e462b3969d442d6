// Original file: proto/chanlayer/v1/channel_layer.proto

/**
 * SessionCloseReason is why the server ends a session stream.
 */
export const SessionCloseReason = {
  /**
   * The reason is not known.
   */
  SESSION_CLOSE_REASON_UNSPECIFIED: 'SESSION_CLOSE_REASON_UNSPECIFIED',
  /**
   * The server is shutting down. Resume the session on another stream (or server).
   */
  SESSION_CLOSE_REASON_SHUTDOWN: 'SESSION_CLOSE_REASON_SHUTDOWN',
  /**
   * The client asked with `close`.
   */
  SESSION_CLOSE_REASON_CLIENT_CLOSE: 'SESSION_CLOSE_REASON_CLIENT_CLOSE',
  /**
   * Another stream resumed this session.
   */
  SESSION_CLOSE_REASON_RESUMED_ELSEWHERE: 'SESSION_CLOSE_REASON_RESUMED_ELSEWHERE',
} as const;

/**
 * SessionCloseReason is why the server ends a session stream.
 */
export type SessionCloseReason =
  /**
   * The reason is not known.
   */
  | 'SESSION_CLOSE_REASON_UNSPECIFIED'
  | 0
  /**
   * The server is shutting down. Resume the session on another stream (or server).
   */
  | 'SESSION_CLOSE_REASON_SHUTDOWN'
  | 1
  /**
   * The client asked with `close`.
   */
  | 'SESSION_CLOSE_REASON_CLIENT_CLOSE'
  | 2
  /**
   * Another stream resumed this session.
   */
  | 'SESSION_CLOSE_REASON_RESUMED_ELSEWHERE'
  | 3

/**
 * SessionCloseReason is why the server ends a session stream.
 */
export type SessionCloseReason__Output = typeof SessionCloseReason[keyof typeof SessionCloseReason]
