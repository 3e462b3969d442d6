/**
 * Reads the `google.rpc.Status` of a failed call (trailer `grpc-status-details-bin`) and the
 * `google.rpc.ErrorInfo` detail in it, then maps the call's error to a client error.
 *
 * @module
 * @internal
 */

import type { Metadata, ServiceError } from "@grpc/grpc-js";
import protobuf from "protobufjs";

import { ChanlayerError, ERROR_DOMAIN, errorFromReason, StatusCode } from "./errors.js";

const ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo";

/** The `ErrorInfo` of a status: its reason and domain. */
export interface ErrorInfo {
  reason: string;
  domain: string;
}

function readAny(bytes: Uint8Array): { typeUrl: string; value: Uint8Array } {
  const reader = protobuf.Reader.create(bytes);
  let typeUrl = "";
  let value: Uint8Array = new Uint8Array();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    switch (tag >>> 3) {
      case 1:
        typeUrl = reader.string();
        break;
      case 2:
        value = reader.bytes();
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  return { typeUrl, value };
}

function readErrorInfo(bytes: Uint8Array): ErrorInfo {
  const reader = protobuf.Reader.create(bytes);
  const info: ErrorInfo = { reason: "", domain: "" };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    switch (tag >>> 3) {
      case 1:
        info.reason = reader.string();
        break;
      case 2:
        info.domain = reader.string();
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  return info;
}

/** The `ErrorInfo` in a `grpc-status-details-bin` trailer, if any. */
export function errorInfoFromMetadata(metadata: Metadata | undefined): ErrorInfo | undefined {
  const raw = metadata?.get("grpc-status-details-bin")[0];
  if (raw === undefined || typeof raw === "string") return undefined;
  try {
    const reader = protobuf.Reader.create(raw);
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 === 3 && (tag & 7) === 2) {
        const any = readAny(reader.bytes());
        if (any.typeUrl === ERROR_INFO_TYPE) {
          const info = readErrorInfo(any.value);
          if (info.domain === ERROR_DOMAIN || info.domain === "") return info;
        }
      } else {
        reader.skipType(tag & 7);
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Maps a failed call's error to a client error, by its `ErrorInfo.reason`. */
export function errorFromServiceError(err: unknown, channel?: string): ChanlayerError {
  if (err instanceof ChanlayerError) return err;
  const serviceError = err as Partial<ServiceError>;
  const code = typeof serviceError.code === "number" ? serviceError.code : StatusCode.UNKNOWN;
  const info = errorInfoFromMetadata(serviceError.metadata);
  const message = serviceError.details ?? (err instanceof Error ? err.message : String(err));
  const mapped = errorFromReason(code, info?.reason ?? "", message, channel);
  return mapped;
}
