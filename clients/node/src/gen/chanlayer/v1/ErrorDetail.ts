// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * ErrorDetail describes why an operation failed.
 */
export interface ErrorDetail {
  /**
   * The canonical gRPC status code, as its number (for example 8 for RESOURCE_EXHAUSTED).
   */
  'code'?: (number);
  /**
   * The machine-readable reason, for example `CHANNEL_FULL`.
   */
  'reason'?: (string);
  /**
   * A human-readable explanation.
   */
  'message'?: (string);
}

/**
 * ErrorDetail describes why an operation failed.
 */
export interface ErrorDetail__Output {
  /**
   * The canonical gRPC status code, as its number (for example 8 for RESOURCE_EXHAUSTED).
   */
  'code': (number);
  /**
   * The machine-readable reason, for example `CHANNEL_FULL`.
   */
  'reason': (string);
  /**
   * A human-readable explanation.
   */
  'message': (string);
}
