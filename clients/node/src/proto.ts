/**
 * Loads the protocol (`proto/chanlayer/v1/channel_layer.proto`, a copy of the repository's
 * contract kept in sync by `scripts/gen-proto.mjs`) with the options the generated types in
 * `src/gen/` were written for.
 *
 * @module
 * @internal
 */

import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

import type { ProtoGrpcType } from "./gen/channel_layer.js";
import type { ChannelLayerServiceClient } from "./gen/chanlayer/v1/ChannelLayerService.js";

/** The loader options; `scripts/gen-proto.mjs` passes the same ones to the type generator. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

const PROTO_ROOT = fileURLToPath(new URL("../../proto/", import.meta.url));

let loaded: ProtoGrpcType | undefined;

/** The loaded package definition (loaded once per process). */
export function protoPackage(): ProtoGrpcType {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync("chanlayer/v1/channel_layer.proto", {
      ...LOADER_OPTIONS,
      includeDirs: [PROTO_ROOT],
    });
    loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return loaded;
}

/** Creates a stub of `ChannelLayerService`. */
export function createStub(
  target: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
): ChannelLayerServiceClient {
  const Service = protoPackage().chanlayer.v1.ChannelLayerService;
  return new Service(target, credentials, options);
}
