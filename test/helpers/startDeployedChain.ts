import { network } from "hardhat";
import { startChain, type Chain } from "../../scripts/chain.ts";
import { deployOpenDin } from "../../scripts/deploy.ts";
import type { Deployment } from "../../scripts/deployment.ts";

type Connection = Awaited<ReturnType<typeof network.connect>>;

/**
 * A fresh Hardhat node with the OpenDIN contracts deployed by the Ignition module (devnet
 * parameters), and a Hardhat viem connection to it for typed contract calls.
 */
export async function startDeployedChain() {
  const chain: Chain = await startChain();
  try {
    const deployment: Deployment = await deployOpenDin({ rpcUrl: chain.rpcUrl, parameters: "devnet" });
    const connection: Connection = await network.connect({ network: "localhost", override: { url: chain.rpcUrl } });
    const { viem } = connection;
    const c = deployment.contracts;
    const contracts = {
      token: await viem.getContractAt("DinToken", c.DinToken),
      timelock: await viem.getContractAt("TimelockController", c.TimelockController),
      governor: await viem.getContractAt("DinGovernor", c.DinGovernor),
      registry: await viem.getContractAt("ProviderRegistry", c.ProviderRegistry),
      manager: await viem.getContractAt("SlashingManager", c.SlashingManager),
    };
    const stop = async () => {
      await connection.close();
      await chain.stop();
    };
    return { chain, deployment, connection, viem, contracts, stop };
  } catch (error) {
    await chain.stop();
    throw error;
  }
}

export type DeployedChain = Awaited<ReturnType<typeof startDeployedChain>>;
