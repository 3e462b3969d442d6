// Original file: proto/chanlayer/v1/channel_layer.proto


/**
 * GetServerStatsRequest is the request of `GetServerStats`.
 */
export interface GetServerStatsRequest {
}

/**
 * GetServerStatsRequest is the request of `GetServerStats`.
 */
export interface GetServerStatsRequest__Output {
}
