// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {DinToken} from "../../../contracts/DinToken.sol";
import {DinGovernor} from "../../../contracts/DinGovernor.sol";
import {ProviderRegistry} from "../../../contracts/ProviderRegistry.sol";
import {SlashingManager} from "../../../contracts/SlashingManager.sol";
import {Test} from "./Test.sol";

/// @notice The whole OpenDIN contract set wired as the Ignition module wires it, with the devnet
/// parameters. Governance actions in unit tests are pranked from the timelock; the governance story
/// itself (propose, vote, queue, execute) is exercised end to end in DinGovernor.t.sol and vitest.
abstract contract OpenDinFixture is Test {
    uint256 internal constant SUPPLY = 100_000_000e18;
    uint256 internal constant MIN_STAKE = 100e18;
    uint64 internal constant UNBONDING_PERIOD = 120;
    uint256 internal constant CASE_BOND = 10e18;
    uint64 internal constant CASE_TTL = 90;
    uint16 internal constant MAX_SLASH_BPS = 5_000;
    uint16 internal constant WATCHER_REWARD_BPS = 1_000;
    uint256 internal constant TIMELOCK_DELAY = 5;
    uint48 internal constant VOTING_DELAY = 1;
    uint32 internal constant VOTING_PERIOD = 30;
    uint256 internal constant QUORUM_PERCENT = 4;

    DinToken internal token;
    TimelockController internal timelock;
    DinGovernor internal governor;
    ProviderRegistry internal registry;
    SlashingManager internal manager;

    address internal alice = vm.addr(0xA11CE);
    address internal bob = vm.addr(0xB0B);
    address internal carol = vm.addr(0xCA201);
    address internal watcher = vm.addr(0x3A7C4);
    address internal stranger = vm.addr(0x5742);

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        token = new DinToken(address(this), SUPPLY);
        address[] memory none = new address[](0);
        timelock = new TimelockController(TIMELOCK_DELAY, none, none, address(this));
        governor = new DinGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, 0, QUORUM_PERCENT);
        registry = new ProviderRegistry(token, address(timelock), MIN_STAKE, UNBONDING_PERIOD);
        manager = new SlashingManager(registry, address(timelock), CASE_BOND, CASE_TTL, MAX_SLASH_BPS, WATCHER_REWARD_BPS);
        registry.bindSlashingManager(address(manager));

        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));
        timelock.grantRole(timelock.EXECUTOR_ROLE(), address(0));
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));

        vm.label(address(token), "DinToken");
        vm.label(address(timelock), "Timelock");
        vm.label(address(governor), "DinGovernor");
        vm.label(address(registry), "ProviderRegistry");
        vm.label(address(manager), "SlashingManager");
        _fund(alice, 10_000e18);
        _fund(bob, 10_000e18);
        _fund(carol, 10_000e18);
        _fund(watcher, 1_000e18);
    }

    /// @notice Gives `account` tokens and approves the registry and the manager to pull them.
    function _fund(address account, uint256 amount) internal {
        token.transfer(account, amount);
        vm.startPrank(account);
        token.approve(address(registry), type(uint256).max);
        token.approve(address(manager), type(uint256).max);
        vm.stopPrank();
    }

    /// @notice Registers `provider` and stakes `amount`.
    function _registerAndStake(address provider, uint256 amount) internal {
        vm.prank(provider);
        registry.registerAndStake("node", "ipfs://meta", amount);
    }

    /// @notice Opens a case from `watcher` against `provider` asking for `amount`.
    function _openCase(address provider, uint256 amount) internal returns (uint256 caseId) {
        vm.prank(watcher);
        caseId = manager.openCase(provider, amount, "evidence");
    }
}
