// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IProviderRegistry} from "../../../contracts/interfaces/IProviderRegistry.sol";
import {ISlashingManager} from "../../../contracts/interfaces/ISlashingManager.sol";
import {OpenDinFixture} from "../base/OpenDinFixture.sol";
import {Handler} from "./Handler.sol";

/// @notice What must hold after any sequence of staking, unbonding, withdrawing, cases and their
/// resolution: every token is accounted for, no one leaves with slashable or unreleased stake, no
/// slash exceeds its cap, and no account but the governor can steer the timelock.
/// @dev Each invariant_ function gets its own fuzzing campaign. The handler only makes calls that
/// must succeed, so a revert is a failure (failOnRevert). Runs and depth are set per function below:
/// 256 runs × 200 calls; the file took 67 to 99 s on two cores (`time npx hardhat test solidity` with the
/// two files below).
/// The fuzzer must know the handler's artifact, and Hardhat writes artifacts only for the files it
/// is asked to build: run this file together with its handler,
/// `npx hardhat test solidity test/contracts/invariants/Invariants.t.sol test/contracts/invariants/Handler.sol`,
/// or the whole suite (`npx hardhat test solidity`). Run alone after a clean build, every invariant
/// fails with "[targetSelectors] address does not have an associated contract".
contract InvariantsTest is OpenDinFixture {
    Handler internal handler;
    address internal watcher2 = vm.addr(0x3A7C5);
    /// @notice Whoever sent setUp (the runner's default sender), as the deployer's EOA.
    address internal deployerEoa;

    function setUp() public override {
        super.setUp();
        deployerEoa = tx.origin;
        _fund(watcher2, 1_000e18);
        // Two providers start staked, the third starts unregistered.
        _registerAndStake(alice, 1_000e18);
        _registerAndStake(bob, 2_000e18);
        handler = new Handler(token, registry, manager, address(timelock), [alice, bob, carol], [watcher, watcher2]);
        vm.label(address(handler), "Handler");
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](13);
        selectors[0] = Handler.registerAndStake.selector;
        selectors[1] = Handler.stake.selector;
        selectors[2] = Handler.requestUnbond.selector;
        selectors[3] = Handler.withdraw.selector;
        selectors[4] = Handler.deregister.selector;
        selectors[5] = Handler.setEndpoint.selector;
        selectors[6] = Handler.openCase.selector;
        selectors[7] = Handler.expireCase.selector;
        selectors[8] = Handler.claim.selector;
        selectors[9] = Handler.upholdCase.selector;
        selectors[10] = Handler.rejectCase.selector;
        selectors[11] = Handler.setMaxSlashBps.selector;
        selectors[12] = Handler.warp.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: selectors});
    }

    // ------------------------------------------------------------ token accounting

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_registryHoldsExactlyTheStake() public view {
        uint256 held = token.balanceOf(address(registry));
        assertEq(held, registry.totalActiveStake() + registry.totalUnbondingStake(), "registry balance vs totals");
        address[3] memory providers = handler.providers();
        uint256 sum = 0;
        for (uint256 i = 0; i < providers.length; ++i) {
            IProviderRegistry.Provider memory p = registry.getProvider(providers[i]);
            sum += uint256(p.activeStake) + p.unbondingStake;
        }
        assertEq(held, sum, "registry balance vs sum of provider stakes");
    }

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_unbondingStakeIsSumOfEntries() public view {
        address[3] memory providers = handler.providers();
        for (uint256 i = 0; i < providers.length; ++i) {
            IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(providers[i]);
            uint256 sum = 0;
            for (uint256 j = 0; j < entries.length; ++j) {
                sum += entries[j].amount;
            }
            assertEq(registry.getProvider(providers[i]).unbondingStake, sum, "unbondingStake vs entries");
        }
    }

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_managerHoldsOpenBondsAndClaimable() public view {
        uint256 owed = 0;
        uint256 caseCount = manager.caseCount();
        for (uint256 id = 1; id <= caseCount; ++id) {
            ISlashingManager.Case memory c = manager.getCase(id);
            if (c.status == ISlashingManager.CaseStatus.Open) owed += c.bond;
        }
        address[2] memory watchers = handler.watchers();
        for (uint256 i = 0; i < watchers.length; ++i) {
            owed += manager.claimable(watchers[i]);
        }
        assertEq(token.balanceOf(address(manager)), owed, "manager balance vs open bonds + claimable");
    }

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_openCasesAgreeAcrossContracts() public view {
        address[3] memory providers = handler.providers();
        uint256 caseCount = manager.caseCount();
        for (uint256 i = 0; i < providers.length; ++i) {
            uint256 open = 0;
            for (uint256 id = 1; id <= caseCount; ++id) {
                ISlashingManager.Case memory c = manager.getCase(id);
                if (c.provider == providers[i] && c.status == ISlashingManager.CaseStatus.Open) ++open;
            }
            assertEq(registry.openCases(providers[i]), open, "registry openCases vs manager's open cases");
        }
    }

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_supplyUnchangedAndAccountedFor() public view {
        assertEq(token.totalSupply(), SUPPLY, "total supply");
        address[3] memory providers = handler.providers();
        address[2] memory watchers = handler.watchers();
        uint256 sum = token.balanceOf(address(this)) + token.balanceOf(address(registry))
            + token.balanceOf(address(manager)) + token.balanceOf(address(timelock));
        for (uint256 i = 0; i < providers.length; ++i) {
            sum += token.balanceOf(providers[i]);
        }
        for (uint256 i = 0; i < watchers.length; ++i) {
            sum += token.balanceOf(watchers[i]);
        }
        assertEq(sum, SUPPLY, "balances of every account that can hold tokens");
    }

    // ------------------------------------------------------------ withdrawals and slashes (ghosts)

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_withdrawPaysOnlyReleasedStake() public view {
        assertEq(handler.ghostOverpaidWithdrawals(), 0, "withdrawals that paid more than was released");
        address[3] memory providers = handler.providers();
        for (uint256 i = 0; i < providers.length; ++i) {
            uint256 withdrawn = handler.ghostWithdrawn(providers[i]);
            assertLe(withdrawn, handler.ghostReleasedAtWithdraw(providers[i]), "withdrawn vs released");
            assertLe(withdrawn, handler.ghostUnbondedEver(providers[i]), "withdrawn vs ever unbonded");
        }
    }

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_noWithdrawWhileCaseOpen() public view {
        assertEq(handler.ghostWithdrawalsWithOpenCase(), 0, "withdrawals while a case was open");
    }

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_slashWithinCapAndStake() public view {
        assertEq(handler.ghostSlashesAboveCap(), 0, "slashes above maxSlashBps of the stake");
        assertEq(handler.ghostSlashesAboveStake(), 0, "slashes above the stake");
        assertEq(handler.ghostSlashesShort(), 0, "slashes below min(asked, cap)");
        assertLe(handler.ghostMaxSlash(), handler.ghostCapAtMaxSlash(), "largest slash vs its cap");
        assertLe(handler.ghostMaxSlash(), handler.ghostStakeAtMaxSlash(), "largest slash vs its stake");
    }

    // ------------------------------------------------------------ wiring and roles

    /// hardhat-config: invariant.runs = 256
    /// hardhat-config: invariant.depth = 200
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_noAccountButGovernanceSteers() public view {
        address[] memory known = _knownAccounts();
        bytes32 admin = timelock.DEFAULT_ADMIN_ROLE();
        bytes32 proposer = timelock.PROPOSER_ROLE();
        for (uint256 i = 0; i < known.length; ++i) {
            assertFalse(timelock.hasRole(admin, known[i]), string.concat("admin role held by ", vm.toString(known[i])));
            assertEq(
                timelock.hasRole(proposer, known[i]),
                known[i] == address(governor),
                string.concat("proposer role of ", vm.toString(known[i]))
            );
        }
        assertEq(registry.governance(), address(timelock), "registry governance");
        assertEq(registry.slashingManager(), address(manager), "registry slashing manager");
        assertEq(manager.governance(), address(timelock), "manager governance");
        assertEq(manager.registry(), address(registry), "manager registry");
        assertTrue(address(timelock).code.length != 0, "timelock is a contract");
        assertTrue(address(manager).code.length != 0, "manager is a contract");
    }

    // ------------------------------------------------------------ the handler really acts

    /// @notice One pass through the handler with fixed seeds: every action it offers changes state.
    function test_HandlerActionsSucceed() public {
        uint256 aliceActive = registry.getProvider(alice).activeStake;

        handler.stake(0, 500e18 - 1); // bound(x, 1, balance) maps 500e18 - 1 to 500e18
        assertEq(registry.getProvider(alice).activeStake, aliceActive + 500e18, "alice staked");

        handler.requestUnbond(0, 400e18 - 1);
        assertEq(registry.getProvider(alice).unbondingStake, 400e18, "alice unbonding");

        handler.openCase(0, 0, 300e18 - 1);
        assertEq(manager.caseCount(), 1, "case opened");
        assertEq(registry.openCases(alice), 1, "alice has an open case");

        handler.upholdCase(0);
        assertEq(uint256(manager.getCase(1).status), uint256(ISlashingManager.CaseStatus.Upheld), "case upheld");
        assertEq(handler.ghostMaxSlash(), 300e18, "slashed what was asked, below the cap");
        assertEq(registry.getProvider(alice).activeStake, aliceActive + 500e18 - 400e18 - 300e18, "slashed from active");

        // Released after the unbonding period; a new case blocks the withdrawal until it is rejected.
        handler.warp(UNBONDING_PERIOD);
        handler.openCase(1, 0, 1);
        handler.withdraw(0);
        assertEq(handler.calls("withdrawBlocked"), 1, "withdrawal blocked by the open case");
        assertEq(registry.getProvider(alice).unbondingStake, 400e18, "nothing withdrawn yet");
        handler.rejectCase(0);
        assertEq(uint256(manager.getCase(2).status), uint256(ISlashingManager.CaseStatus.Rejected), "case rejected");

        uint256 aliceBalance = token.balanceOf(alice);
        handler.withdraw(0);
        assertEq(token.balanceOf(alice), aliceBalance + 400e18, "alice withdrew");
        assertEq(handler.ghostWithdrawn(alice), 400e18, "ghost withdrawn");

        // A case left alone past its lifetime is expired; the bond goes back to the watcher.
        handler.openCase(0, 1, 50e18 - 1);
        handler.warp(CASE_TTL + 1);
        handler.expireCase(0);
        assertEq(uint256(manager.getCase(3).status), uint256(ISlashingManager.CaseStatus.Expired), "case expired");

        uint256 watcherBalance = token.balanceOf(watcher);
        uint256 owed = manager.claimable(watcher);
        assertEq(owed, CASE_BOND + 30e18 + CASE_BOND, "bond + reward of case 1, bond of case 3");
        handler.claim(0);
        assertEq(token.balanceOf(watcher), watcherBalance + owed, "watcher claimed");

        handler.setEndpoint(1, 2);
        assertTrue(registry.endpointUrlHash(bob, 3) != bytes32(0), "bob serves chain 3");
        handler.deregister(1);
        assertFalse(registry.getProvider(bob).registered, "bob deregistered");
        assertEq(registry.endpointChainIds(bob).length, 0, "bob's endpoints removed");

        handler.registerAndStake(2, 0); // bound(x, MIN_STAKE, balance) maps 0 to MIN_STAKE
        assertEq(registry.getProvider(carol).activeStake, MIN_STAKE, "carol registered and staked");

        handler.setMaxSlashBps(999);
        assertEq(manager.maxSlashBps(), 1_000, "cap moved by governance");

        assertEq(handler.calls("withdraw"), 1, "one withdrawal");
        assertEq(handler.calls("upholdCase"), 1, "one uphold");
    }

    // ------------------------------------------------------------ internals

    function _knownAccounts() internal view returns (address[] memory known) {
        address[3] memory providers = handler.providers();
        address[2] memory watchers = handler.watchers();
        known = new address[](12);
        known[0] = providers[0];
        known[1] = providers[1];
        known[2] = providers[2];
        known[3] = watchers[0];
        known[4] = watchers[1];
        known[5] = address(this); // the deployer
        known[6] = deployerEoa;
        known[7] = address(handler);
        known[8] = address(registry);
        known[9] = address(manager);
        known[10] = address(token);
        known[11] = address(governor);
    }
}
