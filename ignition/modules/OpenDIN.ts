import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { keccak256, toHex, zeroAddress, zeroHash } from "viem";

const role = (name: string) => keccak256(toHex(name));

/**
 * The whole OpenDIN contract set, wired: the timelock owns every parameter and is the treasury,
 * the governor is its only proposer and canceller, anyone may execute a passed proposal, and the
 * SlashingManager is bound to the registry as its only slasher. The deployer keeps no power:
 * it renounces the timelock's admin role as the last step.
 *
 * Parameter sets: ignition/parameters/devnet.json (seconds-long periods) and production.json.
 */
export default buildModule("OpenDIN", (m) => {
  const deployer = m.getAccount(0);
  const initialHolder = m.getParameter("initialHolder", deployer);
  const supply = m.getParameter<bigint>("supply");

  const token = m.contract("DinToken", [initialHolder, supply]);

  const timelock = m.contract("TimelockController", [
    m.getParameter<bigint>("timelockDelay"),
    [],
    [],
    deployer,
  ]);

  const governor = m.contract("DinGovernor", [
    token,
    timelock,
    m.getParameter<bigint>("votingDelay"),
    m.getParameter<bigint>("votingPeriod"),
    m.getParameter<bigint>("proposalThreshold"),
    m.getParameter<bigint>("quorumPercent"),
  ]);

  const registry = m.contract("ProviderRegistry", [
    token,
    timelock,
    m.getParameter<bigint>("minStake"),
    m.getParameter<bigint>("unbondingPeriod"),
  ]);

  const slashingManager = m.contract("SlashingManager", [
    registry,
    timelock,
    m.getParameter<bigint>("caseBond"),
    m.getParameter<bigint>("caseTtl"),
    m.getParameter<bigint>("maxSlashBps"),
    m.getParameter<bigint>("watcherRewardBps"),
  ]);

  const bound = m.call(registry, "bindSlashingManager", [slashingManager]);

  const proposer = m.call(timelock, "grantRole", [role("PROPOSER_ROLE"), governor], { id: "grantProposer" });
  const canceller = m.call(timelock, "grantRole", [role("CANCELLER_ROLE"), governor], { id: "grantCanceller" });
  const executor = m.call(timelock, "grantRole", [role("EXECUTOR_ROLE"), zeroAddress], { id: "grantExecutor" });
  m.call(timelock, "renounceRole", [zeroHash, deployer], {
    id: "renounceAdmin",
    after: [bound, proposer, canceller, executor],
  });

  return { token, timelock, governor, registry, slashingManager };
});

