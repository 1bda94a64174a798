// Which JSON-RPC methods the gateway forwards. Providers are public nodes run by strangers, and a
// dev node (Hardhat, Anvil) answers methods that change its state: only read and broadcast methods
// of the public namespaces pass. Everything else is refused with -32601 before any provider sees it.

export type MethodPolicy = {
  /** Namespaces (the part before the first `_`) whose methods may be forwarded. */
  allowedNamespaces: readonly string[];
  /** Methods refused even though their namespace is allowed, with the reason a client reads. */
  deniedMethods: Readonly<Record<string, string>>;
};

const signing = "signing needs the node's keys: sign locally and use eth_sendRawTransaction";
const stateful = "filters and subscriptions live on one node and cannot follow failover: use eth_getLogs";

export const defaultMethodPolicy: MethodPolicy = {
  allowedNamespaces: ["eth", "net", "web3"],
  deniedMethods: {
    eth_sendTransaction: signing,
    eth_sign: signing,
    eth_signTransaction: signing,
    eth_signTypedData: signing,
    eth_signTypedData_v3: signing,
    eth_signTypedData_v4: signing,
    eth_accounts: "a gateway has no accounts",
    eth_coinbase: "a gateway has no accounts",
    eth_newFilter: stateful,
    eth_newBlockFilter: stateful,
    eth_newPendingTransactionFilter: stateful,
    eth_getFilterChanges: stateful,
    eth_getFilterLogs: stateful,
    eth_uninstallFilter: stateful,
    eth_subscribe: stateful,
    eth_unsubscribe: stateful,
    eth_submitWork: "mining methods are not served",
    eth_submitHashrate: "mining methods are not served",
    eth_getWork: "mining methods are not served",
  },
};

/** A method's verdict: null when it may be forwarded, else the reason it is refused. */
export type MethodCheck = (method: string) => string | null;

/** Compiles a policy into a check with a small bounded cache (method names repeat). */
export function compileMethodPolicy(policy: MethodPolicy): MethodCheck {
  const namespaces = new Set(policy.allowedNamespaces);
  const denied = new Map(Object.entries(policy.deniedMethods));
  const cache = new Map<string, string | null>();
  return (method) => {
    const cached = cache.get(method);
    if (cached !== undefined) return cached;
    const underscore = method.indexOf("_");
    const namespace = underscore > 0 ? method.slice(0, underscore) : "";
    let verdict: string | null = denied.get(method) ?? null;
    if (verdict === null && !namespaces.has(namespace)) {
      verdict =
        namespace === ""
          ? "not a namespaced Ethereum JSON-RPC method"
          : `the ${namespace}_ namespace is not served by this gateway (served: ${[...namespaces].map((n) => `${n}_`).join(", ")})`;
    }
    if (cache.size < 1024) cache.set(method, verdict);
    return verdict;
  };
}
