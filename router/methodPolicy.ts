// Which JSON-RPC methods the gateway forwards. Providers are public nodes run by strangers, and a
// dev node (Hardhat, Anvil) answers methods that change its state or its accounts: only the
// methods listed below (reads of chain state, and broadcasting signed transactions) reach a
// provider. An allow-list, so a node's own extension of eth_ (eth_sendUnsignedTransaction on
// Anvil) never passes by default. Everything else is refused with -32601 before any provider sees it.

export type MethodPolicy = {
  /** The methods that may be forwarded. */
  allowedMethods: readonly string[];
  /** Why well-known methods are refused, in words a client reads (others get a generic reason). */
  refusalReasons: Readonly<Record<string, string>>;
};

const signing = "signing needs the node's keys: sign locally and use eth_sendRawTransaction";
const accounts = "a gateway has no accounts: a wallet holds them";
const pending = "pending transactions are each node's own mempool: follow new blocks (eth_newBlockFilter) or logs instead";
const subscriptions = "subscriptions need a WebSocket and this gateway speaks HTTP: poll a filter (eth_newFilter) or eth_getLogs";
const mining = "mining methods are not served";
const resend = "re-sending needs the node's keys: sign a replacement and use eth_sendRawTransaction";

export const defaultMethodPolicy: MethodPolicy = {
  allowedMethods: [
    "eth_blockNumber",
    "eth_chainId",
    "eth_syncing",
    "eth_protocolVersion",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_feeHistory",
    "eth_blobBaseFee",
    "eth_getBalance",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_getTransactionCount",
    "eth_getProof",
    "eth_call",
    "eth_estimateGas",
    "eth_createAccessList",
    "eth_simulateV1",
    "eth_getLogs",
    // Kept by the router itself (filters.ts): a filter on one node would not follow failover.
    "eth_newFilter",
    "eth_newBlockFilter",
    "eth_getFilterChanges",
    "eth_getFilterLogs",
    "eth_uninstallFilter",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getUncleByBlockHashAndIndex",
    "eth_getUncleByBlockNumberAndIndex",
    "eth_getUncleCountByBlockHash",
    "eth_getUncleCountByBlockNumber",
    "eth_getTransactionByHash",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionReceipt",
    "eth_getTransactionBySenderAndNonce",
    "eth_getRawTransactionByHash",
    "eth_getRawTransactionByBlockHashAndIndex",
    "eth_getRawTransactionByBlockNumberAndIndex",
    "eth_getStorageValues",
    // Fills in nonce, gas and fees of an unsigned transaction from chain state; signs nothing.
    "eth_fillTransaction",
    "eth_sendRawTransaction",
    "eth_sendRawTransactionSync",
    "eth_sendRawTransactionConditional",
    "net_version",
    "net_listening",
    "net_peerCount",
    "web3_clientVersion",
    "web3_sha3",
  ],
  refusalReasons: {
    eth_sendTransaction: signing,
    eth_sendUnsignedTransaction: signing,
    eth_sign: signing,
    eth_signTransaction: signing,
    eth_signTypedData: signing,
    eth_signTypedData_v3: signing,
    eth_signTypedData_v4: signing,
    eth_accounts: accounts,
    eth_requestAccounts: accounts,
    eth_coinbase: accounts,
    eth_resend: resend,
    eth_newPendingTransactionFilter: pending,
    eth_subscribe: subscriptions,
    eth_unsubscribe: subscriptions,
    eth_submitWork: mining,
    eth_submitHashrate: mining,
    eth_getWork: mining,
    eth_mining: mining,
    eth_hashrate: mining,
  },
};

/**
 * Answered by the router itself from the chain id in the URL (server.ts), never forwarded: always
 * allowed, whatever the list says, since every wallet asks eth_chainId before anything else.
 */
export const locallyAnswered: readonly string[] = ["eth_chainId", "net_version"];

// What a provider would do with its node's keys or to its node's state, if asked: the default
// policy refuses them, and a list of one's own that lets any through is warned about at start.
const dangerousNamespaces = new Set(["admin", "debug", "personal", "miner", "engine", "clique", "parity", "hardhat", "anvil", "evm", "ganache"]);
const dangerousReasons = new Set([signing, accounts, resend, mining]);

/** The methods of `allowedMethods` that the default policy refuses as dangerous (signing, accounts, node control). */
export function dangerousMethods(allowedMethods: readonly string[]): string[] {
  return allowedMethods.filter((m) => {
    const reason = Object.hasOwn(defaultMethodPolicy.refusalReasons, m) ? defaultMethodPolicy.refusalReasons[m] : undefined;
    return dangerousNamespaces.has(m.slice(0, m.indexOf("_"))) || (reason !== undefined && dangerousReasons.has(reason));
  });
}

/**
 * A reason as a client may read it. A default reason's advice (after its colon) names methods of
 * the default list; with a list of one's own that leaves one out, only the why is kept. An
 * operator's own words are theirs.
 */
function fittingReason(method: string, reason: string, allowed: ReadonlySet<string>): string {
  if (!Object.hasOwn(defaultMethodPolicy.refusalReasons, method) || defaultMethodPolicy.refusalReasons[method] !== reason) return reason;
  const colon = reason.indexOf(": ");
  if (colon < 0) return reason;
  const named = reason.slice(colon).match(/\b[a-z0-9]+_[A-Za-z0-9_]+/g) ?? [];
  return named.every((m) => allowed.has(m)) ? reason : reason.slice(0, colon);
}

/** A method's verdict: null when it may be forwarded, else the reason it is refused. */
export type MethodCheck = (method: string) => string | null;

/** Compiles a policy into a check with a small bounded cache (method names repeat). */
export function compileMethodPolicy(policy: MethodPolicy): MethodCheck {
  const allowed = new Set([...policy.allowedMethods, ...locallyAnswered]);
  const reasons = new Map(Object.entries(policy.refusalReasons).map(([method, reason]) => [method, fittingReason(method, reason, allowed)]));
  const namespaces = new Set([...allowed].map((m) => m.slice(0, m.indexOf("_"))));
  const served = [...namespaces].map((n) => `${n}_`).join(", ");
  // The default list is described in words; a list of one's own is the operator's choice.
  const defaultList = new Set([...defaultMethodPolicy.allowedMethods, ...locallyAnswered]);
  const isDefaultList = allowed.size === defaultList.size && [...allowed].every((m) => defaultList.has(m));
  const notServed = isDefaultList
    ? "not among the methods this gateway serves (reads of chain state and eth_sendRawTransaction; router/README.md lists them)"
    : "not among the methods this gateway serves";
  const cache = new Map<string, string | null>();
  return (method) => {
    const cached = cache.get(method);
    if (cached !== undefined) return cached;
    const underscore = method.indexOf("_");
    const namespace = underscore > 0 ? method.slice(0, underscore) : "";
    let verdict: string | null = null;
    if (!allowed.has(method)) {
      verdict =
        reasons.get(method) ??
        (namespace === ""
          ? "not a namespaced Ethereum JSON-RPC method"
          : namespaces.has(namespace)
            ? notServed
            : `the ${namespace}_ namespace is not served by this gateway (served: ${served})`);
    }
    if (cache.size < 1024) cache.set(method, verdict);
    return verdict;
  };
}
