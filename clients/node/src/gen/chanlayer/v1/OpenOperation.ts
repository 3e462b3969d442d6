// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * OpenOperation opens or resumes a session.
 */
export interface OpenOperation {
  /**
   * The namespace every operation of the session works in.
   */
  'namespace'?: (string);
  /**
   * A client prefix the client proposes: 1 to 64 ASCII letters, digits, `-` and `_`.
   * Specific channel names of the session are `<anything>.<client_prefix>!<local part>`
   * or `<client_prefix>!<local part>`. Refused with ALREADY_EXISTS /
   * `CLIENT_PREFIX_IN_USE` when another session of the namespace holds it. Empty lets the
   * server choose a random one.
   */
  'clientPrefix'?: (string);
  /**
   * The resume token of an earlier stream of this session. When the session still waits
   * within its lease grace period, this stream takes it over with its channels and
   * memberships. A token the server does not know (expired, or from before a restart)
   * opens a new session with the proposed prefix instead: see `SessionOpened.resumed`.
   */
  'resumeToken'?: (string);
  /**
   * The name and version of the client library, for logs, for example `chanlayer-py/0.1.0`.
   */
  'clientName'?: (string);
  /**
   * True when the client understands `SharedDelivery` events. The server then answers the
   * receives of this stream that one `GroupSend` reaches together with one such event
   * instead of one `Delivery` each. A client that leaves it false only sees `Delivery`.
   */
  'sharedDeliveries'?: (boolean);
}

/**
 * OpenOperation opens or resumes a session.
 */
export interface OpenOperation__Output {
  /**
   * The namespace every operation of the session works in.
   */
  'namespace': (string);
  /**
   * A client prefix the client proposes: 1 to 64 ASCII letters, digits, `-` and `_`.
   * Specific channel names of the session are `<anything>.<client_prefix>!<local part>`
   * or `<client_prefix>!<local part>`. Refused with ALREADY_EXISTS /
   * `CLIENT_PREFIX_IN_USE` when another session of the namespace holds it. Empty lets the
   * server choose a random one.
   */
  'clientPrefix': (string);
  /**
   * The resume token of an earlier stream of this session. When the session still waits
   * within its lease grace period, this stream takes it over with its channels and
   * memberships. A token the server does not know (expired, or from before a restart)
   * opens a new session with the proposed prefix instead: see `SessionOpened.resumed`.
   */
  'resumeToken': (string);
  /**
   * The name and version of the client library, for logs, for example `chanlayer-py/0.1.0`.
   */
  'clientName': (string);
  /**
   * True when the client understands `SharedDelivery` events. The server then answers the
   * receives of this stream that one `GroupSend` reaches together with one such event
   * instead of one `Delivery` each. A client that leaves it false only sees `Delivery`.
   */
  'sharedDeliveries': (boolean);
}
