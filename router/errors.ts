// Errors are values with names. Each carries a stable `code` (for logs and tests) and the JSON-RPC
// error code a client sees: standard codes where one fits (EIP-1474's -32002 and -32005 mean what
// they say here), and codes EIP-1474 leaves free for the gateway's own, so that a client library
// does not read "every attempt failed" as its -32003 "transaction rejected".

import type { ProviderSetStatus } from "./providerSet.ts";

/** JSON-RPC error codes the router answers with. */
export const RpcCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** The chain id in the path has no eligible provider. */
  unknownChain: -32001,
  /** The chain is known but no provider can take the request right now. */
  noProvider: -32002,
  /** Every attempt on every provider tried failed. */
  upstreamFailed: -32050,
  /** The overall deadline passed before any provider answered. */
  deadlineExceeded: -32051,
  /** A size, batch or capacity limit was hit (the conventional "limit exceeded"). */
  limitExceeded: -32005,
} as const;

export type RouterErrorCode =
  | "parse_error"
  | "invalid_request"
  | "method_not_allowed"
  | "body_too_large"
  | "batch_too_large"
  | "too_deep"
  | "unsupported_media_type"
  | "router_loop"
  | "unknown_chain"
  | "no_provider"
  | "upstream_failed"
  | "deadline_exceeded"
  | "over_capacity"
  | "over_budget"
  | "client_over_capacity"
  | "endpoint_refused"
  | "indexer_unreachable"
  | "snapshot_invalid"
  | "invalid_option";

/** The root of the router's errors: a name, a stable code, and the JSON-RPC code a client sees. */
export class RouterError extends Error {
  readonly code: RouterErrorCode;
  readonly rpcCode: number;
  /** HTTP status when the error rejects a whole HTTP request (not one call of a batch). */
  readonly httpStatus: number;

  constructor(code: RouterErrorCode, message: string, rpcCode: number = RpcCode.internalError, httpStatus = 200) {
    super(message);
    this.name = "RouterError";
    this.code = code;
    this.rpcCode = rpcCode;
    this.httpStatus = httpStatus;
  }
}

/** The client sent something the router will not route: bad JSON, a bad shape, a limit crossed. */
export class ClientInputError extends RouterError {
  constructor(code: RouterErrorCode, message: string, rpcCode: number, httpStatus = 400) {
    super(code, message, rpcCode, httpStatus);
    this.name = "ClientInputError";
  }
}

/** `POST /rpc/:chainId` for a chain without eligible providers. */
export class UnknownChainError extends RouterError {
  constructor(chainId: string, served: readonly number[]) {
    const list = served.length > 0 ? served.join(", ") : "none yet";
    super(
      "unknown_chain",
      `chain ${chainId} is not served: no eligible provider (registered, staked at least the minimum, not jailed) has an endpoint for it (served chains: ${list})`,
      RpcCode.unknownChain,
      404,
    );
    this.name = "UnknownChainError";
  }
}

/** Why a router has no provider set yet (the indexer away at start-up, no snapshot), in words: its answers and /health say it. */
export function noProviderSetYet(indexer: ProviderSetStatus["state"], snapshotKept: boolean): string {
  const why = indexer === "unreachable" ? "the indexer is unreachable" : "its first set from the indexer has not come yet";
  return `this router has no provider set yet: ${why}${snapshotKept ? " and no usable snapshot was loaded" : ""}`;
}

/** `POST /rpc/:chainId` before the router has any provider set (the indexer away at start-up, no snapshot): not the chain's fault. */
export class NoProviderSetError extends RouterError {
  constructor(indexer: ProviderSetStatus["state"], snapshotKept: boolean) {
    super("no_provider", `${noProviderSetYet(indexer, snapshotKept)}; retry shortly`, RpcCode.noProvider, 503);
    this.name = "NoProviderSetError";
  }
}

/** A provider's endpoint resolves to an address the router refuses to connect to. */
export class EndpointRefusedError extends RouterError {
  readonly address: string;
  constructor(host: string, address: string, reason: string) {
    super(
      "endpoint_refused",
      `refusing to connect to ${host} (${address}): ${reason} addresses are not allowed outside devnet mode (--devnet)`,
      RpcCode.internalError,
    );
    this.name = "EndpointRefusedError";
    this.address = address;
  }
}

/** A router option is out of range; says which and what is allowed. */
export class RouterOptionError extends RouterError {
  constructor(message: string) {
    super("invalid_option", message);
    this.name = "RouterOptionError";
  }
}

/** The snapshot file exists but cannot be used. */
export class SnapshotError extends RouterError {
  constructor(path: string, reason: string) {
    super("snapshot_invalid", `the provider-set snapshot at ${path} cannot be used: ${reason}`);
    this.name = "SnapshotError";
  }
}
