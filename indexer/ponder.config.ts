import { readFileSync } from "node:fs";
import { createConfig } from "ponder";
import {
  DinGovernorAbi,
  ProviderRegistryAbi,
  SlashingManagerAbi,
  TimelockControllerAbi,
} from "./abis.generated.ts";

// Ponder loads this file in its own process, so its inputs arrive as environment variables, set
// by scripts/indexer.ts (`npm run indexer`, `din indexer`, the devnet):
//   DIN_DEPLOYMENT        the deployment file (addresses, chain id, start block); default the devnet's
//   DIN_RPC_URL           the chain's JSON-RPC URL; default the devnet chain
//   DIN_POLLING_MS        how often to poll for new blocks; default 200 (the devnet mines on demand)
//   DIN_DATA_DIR          PGlite's folder, when DATABASE_URL is not set
//   DATABASE_URL          PostgreSQL instead of PGlite

type Deployment = {
  chainId: number;
  startBlock: number;
  contracts: Record<"ProviderRegistry" | "SlashingManager" | "DinGovernor" | "TimelockController", `0x${string}`>;
};

const deploymentPath = process.env.DIN_DEPLOYMENT ?? "../.devnet/deployment.json";
const deployment = JSON.parse(readFileSync(deploymentPath, "utf8")) as Deployment;
const rpcUrl = process.env.DIN_RPC_URL ?? "http://127.0.0.1:8545";
const startBlock = deployment.startBlock;
const chain = "opendin";

export default createConfig({
  database: process.env.DATABASE_URL
    ? { kind: "postgres", connectionString: process.env.DATABASE_URL }
    : { kind: "pglite", directory: process.env.DIN_DATA_DIR ?? ".ponder/pglite" },
  chains: {
    [chain]: {
      id: deployment.chainId,
      rpc: rpcUrl,
      pollingInterval: Number(process.env.DIN_POLLING_MS ?? 200),
      // Local chains restart from block 0 with new contents: never trust a cached response.
      disableCache: deployment.chainId === 31337,
    },
  },
  contracts: {
    ProviderRegistry: { chain, abi: ProviderRegistryAbi, address: deployment.contracts.ProviderRegistry, startBlock },
    SlashingManager: { chain, abi: SlashingManagerAbi, address: deployment.contracts.SlashingManager, startBlock },
    DinGovernor: { chain, abi: DinGovernorAbi, address: deployment.contracts.DinGovernor, startBlock },
    TimelockController: { chain, abi: TimelockControllerAbi, address: deployment.contracts.TimelockController, startBlock },
  },
});
