import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Abi } from "viem";
import { CliError } from "./cliError.ts";

const artifactPaths = {
  DinToken: "contracts/DinToken.sol/DinToken.json",
  DinGovernor: "contracts/DinGovernor.sol/DinGovernor.json",
  ProviderRegistry: "contracts/ProviderRegistry.sol/ProviderRegistry.json",
  SlashingManager: "contracts/SlashingManager.sol/SlashingManager.json",
  TimelockController: "@openzeppelin/contracts/governance/TimelockController.sol/TimelockController.json",
} as const;

const artifactsDir = fileURLToPath(new URL("../../artifacts/", import.meta.url));

function loadAbi(name: keyof typeof artifactPaths): Abi {
  try {
    return (JSON.parse(readFileSync(artifactsDir + artifactPaths[name], "utf8")) as { abi: Abi }).abi;
  } catch {
    throw new CliError(`the contract ABIs are not built: run "npm run build" first`);
  }
}

/** The ABIs from the Hardhat build, loaded on first use. */
export const abis = {
  get token(): Abi {
    return loadAbi("DinToken");
  },
  get governor(): Abi {
    return loadAbi("DinGovernor");
  },
  get registry(): Abi {
    return loadAbi("ProviderRegistry");
  },
  get manager(): Abi {
    return loadAbi("SlashingManager");
  },
  get timelock(): Abi {
    return loadAbi("TimelockController");
  },
  /** Every error and event of the set, so any revert decodes whichever contract raised it. */
  get all(): Abi {
    const seen = new Set<string>();
    const merged: Abi[number][] = [];
    for (const name of Object.keys(artifactPaths) as (keyof typeof artifactPaths)[]) {
      for (const item of loadAbi(name)) {
        const key = JSON.stringify(item);
        if (item.type !== "function" && !seen.has(key)) {
          seen.add(key);
          merged.push(item);
        }
      }
    }
    return merged;
  },
};
