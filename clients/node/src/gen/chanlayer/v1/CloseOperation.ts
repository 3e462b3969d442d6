// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * CloseOperation ends a session for good.
 */
export interface CloseOperation {
}

/**
 * CloseOperation ends a session for good.
 */
export interface CloseOperation__Output {
}
