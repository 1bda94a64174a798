// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IProviderRegistry} from "../../contracts/interfaces/IProviderRegistry.sol";
import {ISlashingManager} from "../../contracts/interfaces/ISlashingManager.sol";
import {SlashingManager} from "../../contracts/SlashingManager.sol";
import {OpenDinFixture} from "./base/OpenDinFixture.sol";

/// @notice Unit tests of every external function of SlashingManager: state, events, reverts, and the
/// arithmetic of the slash split. Governance is pranked from the timelock (also the treasury).
contract SlashingManagerTest is OpenDinFixture {
    bytes internal constant EVIDENCE = "evidence";
    uint256 internal constant STAKE = 1_000e18;

    // ---------------------------------------------------------------- helpers

    function _status(uint256 caseId) internal view returns (uint256) {
        return uint256(manager.getCase(caseId).status);
    }

    function _uphold(uint256 caseId) internal returns (uint256 slashed) {
        vm.prank(address(timelock));
        slashed = manager.upholdCase(caseId);
    }

    function _reject(uint256 caseId) internal {
        vm.prank(address(timelock));
        manager.rejectCase(caseId);
    }

    function _notOpen(uint256 caseId, ISlashingManager.CaseStatus status) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISlashingManager.ManagerCaseNotOpen.selector, caseId, status);
    }

    function _unknown(uint256 caseId) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISlashingManager.ManagerUnknownCase.selector, caseId);
    }

    function _notGovernance(address caller) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISlashingManager.ManagerNotGovernance.selector, caller);
    }

    function _outOfBounds(uint256 value, uint256 min, uint256 max) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISlashingManager.ManagerParameterOutOfBounds.selector, value, min, max);
    }

    function _stakeOf(address provider) internal view returns (uint256) {
        IProviderRegistry.Provider memory p = registry.getProvider(provider);
        return uint256(p.activeStake) + p.unbondingStake;
    }

    /// @dev Token held by the manager must be Σ bonds of open cases + Σ claimable of the given accounts.
    function _assertManagerHoldsBondsAndClaims(address[] memory accounts, string memory what) internal view {
        uint256 expected = 0;
        uint256 count = manager.caseCount();
        for (uint256 id = 1; id <= count; ++id) {
            ISlashingManager.Case memory c = manager.getCase(id);
            if (c.status == ISlashingManager.CaseStatus.Open) expected += c.bond;
        }
        for (uint256 i = 0; i < accounts.length; ++i) {
            expected += manager.claimable(accounts[i]);
        }
        assertEq(token.balanceOf(address(manager)), expected, what);
    }

    // ---------------------------------------------------------------- constructor and views

    function test_Constructor_SetsParametersAndViews() public view {
        assertEq(manager.registry(), address(registry), "registry");
        assertEq(manager.governance(), address(timelock), "governance");
        assertEq(manager.caseBond(), CASE_BOND, "caseBond");
        assertEq(manager.caseTtl(), CASE_TTL, "caseTtl");
        assertEq(manager.maxSlashBps(), MAX_SLASH_BPS, "maxSlashBps");
        assertEq(manager.watcherRewardBps(), WATCHER_REWARD_BPS, "watcherRewardBps");
        assertEq(manager.caseCount(), 0, "caseCount");
        assertEq(manager.claimable(watcher), 0, "claimable");
    }

    function test_Constructor_EmitsEveryParameterFromZero() public {
        vm.expectEmit();
        emit ISlashingManager.CaseBondChanged(0, 2e18);
        vm.expectEmit();
        emit ISlashingManager.CaseTtlChanged(0, 60);
        vm.expectEmit();
        emit ISlashingManager.MaxSlashBpsChanged(0, 100);
        vm.expectEmit();
        emit ISlashingManager.WatcherRewardBpsChanged(0, 0);
        SlashingManager m = new SlashingManager(registry, address(timelock), 2e18, 60, 100, 0);
        assertEq(m.caseBond(), 2e18, "caseBond");
        assertEq(m.caseTtl(), 60, "caseTtl");
        assertEq(m.maxSlashBps(), 100, "maxSlashBps");
        assertEq(m.watcherRewardBps(), 0, "watcherRewardBps");
    }

    function test_Constructor_RevertsOnZeroRegistry() public {
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerZeroAddress.selector));
        new SlashingManager(
            IProviderRegistry(address(0)), address(timelock), CASE_BOND, CASE_TTL, MAX_SLASH_BPS, WATCHER_REWARD_BPS
        );
    }

    function test_Constructor_RevertsOnZeroGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerZeroAddress.selector));
        new SlashingManager(registry, address(0), CASE_BOND, CASE_TTL, MAX_SLASH_BPS, WATCHER_REWARD_BPS);
    }

    function test_Constructor_RevertsOnCaseBondOutOfBounds() public {
        uint256 minBond = manager.MIN_CASE_BOND();
        uint256 maxBond = manager.MAX_CASE_BOND();
        vm.expectRevert(_outOfBounds(minBond - 1, minBond, maxBond));
        new SlashingManager(registry, address(timelock), minBond - 1, CASE_TTL, MAX_SLASH_BPS, WATCHER_REWARD_BPS);
        vm.expectRevert(_outOfBounds(maxBond + 1, minBond, maxBond));
        new SlashingManager(registry, address(timelock), maxBond + 1, CASE_TTL, MAX_SLASH_BPS, WATCHER_REWARD_BPS);
    }

    function test_Constructor_RevertsOnCaseTtlOutOfBounds() public {
        uint64 minTtl = manager.MIN_CASE_TTL();
        uint64 maxTtl = manager.MAX_CASE_TTL();
        vm.expectRevert(_outOfBounds(minTtl - 1, minTtl, maxTtl));
        new SlashingManager(registry, address(timelock), CASE_BOND, minTtl - 1, MAX_SLASH_BPS, WATCHER_REWARD_BPS);
        vm.expectRevert(_outOfBounds(uint256(maxTtl) + 1, minTtl, maxTtl));
        new SlashingManager(registry, address(timelock), CASE_BOND, maxTtl + 1, MAX_SLASH_BPS, WATCHER_REWARD_BPS);
    }

    function test_Constructor_RevertsWhenCaseTtlNotBelowUnbondingPeriod() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.ManagerCaseTtlTooLong.selector, UNBONDING_PERIOD, UNBONDING_PERIOD
            )
        );
        new SlashingManager(
            registry, address(timelock), CASE_BOND, UNBONDING_PERIOD, MAX_SLASH_BPS, WATCHER_REWARD_BPS
        );
    }

    function test_Constructor_RevertsOnSlashBpsOutOfBounds() public {
        vm.expectRevert(_outOfBounds(0, 1, 5_000));
        new SlashingManager(registry, address(timelock), CASE_BOND, CASE_TTL, 0, WATCHER_REWARD_BPS);
        vm.expectRevert(_outOfBounds(5_001, 1, 5_000));
        new SlashingManager(registry, address(timelock), CASE_BOND, CASE_TTL, 5_001, WATCHER_REWARD_BPS);
    }

    function test_Constructor_RevertsOnWatcherRewardBpsOutOfBounds() public {
        vm.expectRevert(_outOfBounds(5_001, 0, 5_000));
        new SlashingManager(registry, address(timelock), CASE_BOND, CASE_TTL, MAX_SLASH_BPS, 5_001);
    }

    function test_GetCase_UnknownIdIsEmpty() public view {
        ISlashingManager.Case memory c = manager.getCase(42);
        assertEq(c.provider, address(0), "provider");
        assertEq(c.watcher, address(0), "watcher");
        assertEq(c.expiresAt, 0, "expiresAt");
        assertEq(c.bond, 0, "bond");
        assertEq(c.amount, 0, "amount");
        assertEq(c.evidenceHash, bytes32(0), "evidenceHash");
        assertEq(uint256(c.status), uint256(ISlashingManager.CaseStatus.None), "status");
    }

    function test_SlashAmountIfUpheld_RevertsOnUnknownCase() public {
        vm.expectRevert(_unknown(0));
        manager.slashAmountIfUpheld(0);
        vm.expectRevert(_unknown(1));
        manager.slashAmountIfUpheld(1);
    }

    function test_SlashAmountIfUpheld_ReturnsAskedBelowCapAndCapAbove() public {
        _registerAndStake(alice, STAKE);
        uint256 below = _openCase(alice, 300e18);
        uint256 above = _openCase(alice, 800e18);
        assertEq(manager.slashAmountIfUpheld(below), 300e18, "below cap");
        assertEq(manager.slashAmountIfUpheld(above), 500e18, "above cap");
        // The cap follows the stake now, not at opening.
        vm.prank(alice);
        registry.stake(1_000e18);
        assertEq(manager.slashAmountIfUpheld(above), 800e18, "after more stake");
    }

    function test_SlashAmountIfUpheld_StillAnswersForClosedCase() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        _uphold(id);
        // 700 left: cap 350, asked 300.
        assertEq(manager.slashAmountIfUpheld(id), 300e18, "closed case");
    }

    // ---------------------------------------------------------------- openCase

    function test_OpenCase_StoresCaseAndPullsBond() public {
        _registerAndStake(alice, STAKE);
        uint256 watcherBefore = token.balanceOf(watcher);
        uint256 registryBefore = token.balanceOf(address(registry));

        vm.prank(watcher);
        uint256 id = manager.openCase(alice, 300e18, EVIDENCE);

        assertEq(id, 1, "first id");
        assertEq(manager.caseCount(), 1, "caseCount");
        ISlashingManager.Case memory c = manager.getCase(id);
        assertEq(c.provider, alice, "provider");
        assertEq(c.watcher, watcher, "watcher");
        assertEq(c.expiresAt, block.timestamp + CASE_TTL, "expiresAt");
        assertEq(uint256(c.status), uint256(ISlashingManager.CaseStatus.Open), "status");
        assertEq(c.bond, CASE_BOND, "bond");
        assertEq(c.amount, 300e18, "amount");
        assertEq(c.evidenceHash, keccak256(EVIDENCE), "evidenceHash");

        assertEq(token.balanceOf(watcher), watcherBefore - CASE_BOND, "watcher paid bond");
        assertEq(token.balanceOf(address(manager)), CASE_BOND, "manager holds bond");
        assertEq(token.balanceOf(address(registry)), registryBefore, "registry untouched");
        assertEq(registry.openCases(alice), 1, "registry openCases");
        assertEq(_stakeOf(alice), STAKE, "stake untouched");
        assertEq(manager.claimable(watcher), 0, "nothing claimable yet");
    }

    function test_OpenCase_EmitsCaseOpenedAndRegistryCount() public {
        _registerAndStake(alice, STAKE);
        uint64 expiresAt = uint64(block.timestamp) + CASE_TTL;
        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseOpened(1, alice, watcher, 300e18, CASE_BOND, expiresAt, keccak256(EVIDENCE), EVIDENCE);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.OpenCasesChanged(alice, 1);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(watcher, address(manager), CASE_BOND);
        _openCase(alice, 300e18);
    }

    function test_OpenCase_IdsIncrementAndCountPerProvider() public {
        _registerAndStake(alice, STAKE);
        _registerAndStake(bob, STAKE);
        assertEq(_openCase(alice, 1e18), 1, "id 1");
        assertEq(_openCase(alice, 2e18), 2, "id 2");
        assertEq(_openCase(bob, 3e18), 3, "id 3");
        assertEq(manager.caseCount(), 3, "caseCount");
        assertEq(registry.openCases(alice), 2, "alice openCases");
        assertEq(registry.openCases(bob), 1, "bob openCases");
        assertEq(token.balanceOf(address(manager)), 3 * CASE_BOND, "three bonds held");
        assertEq(manager.getCase(3).provider, bob, "case 3 provider");
    }

    function test_OpenCase_RevertsOnZeroAmount() public {
        _registerAndStake(alice, STAKE);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerZeroAmount.selector));
        vm.prank(watcher);
        manager.openCase(alice, 0, EVIDENCE);
    }

    function test_OpenCase_RevertsOnEmptyEvidence() public {
        _registerAndStake(alice, STAKE);
        uint256 max = manager.MAX_EVIDENCE_LENGTH();
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerInvalidEvidenceLength.selector, 0, max));
        vm.prank(watcher);
        manager.openCase(alice, 1e18, "");
    }

    function test_OpenCase_RevertsOnEvidenceOneByteTooLong() public {
        _registerAndStake(alice, STAKE);
        uint256 max = manager.MAX_EVIDENCE_LENGTH();
        bytes memory evidence = new bytes(max + 1);
        vm.expectRevert(
            abi.encodeWithSelector(ISlashingManager.ManagerInvalidEvidenceLength.selector, max + 1, max)
        );
        vm.prank(watcher);
        manager.openCase(alice, 1e18, evidence);
    }

    function test_OpenCase_AcceptsEvidenceOfMaxLength() public {
        _registerAndStake(alice, STAKE);
        bytes memory evidence = new bytes(manager.MAX_EVIDENCE_LENGTH());
        evidence[0] = 0x01;
        vm.prank(watcher);
        uint256 id = manager.openCase(alice, 1e18, evidence);
        assertEq(manager.getCase(id).evidenceHash, keccak256(evidence), "evidenceHash of max-length evidence");
    }

    function test_OpenCase_RevertsOnProviderNeverRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerNothingAtStake.selector, stranger));
        vm.prank(watcher);
        manager.openCase(stranger, 1e18, EVIDENCE);
    }

    function test_OpenCase_RevertsOnRegisteredProviderWithoutStake() public {
        vm.prank(alice);
        registry.register("node", "");
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerNothingAtStake.selector, alice));
        vm.prank(watcher);
        manager.openCase(alice, 1e18, EVIDENCE);
    }

    function test_OpenCase_RevertsOnProviderThatWithdrewEverything() public {
        _registerAndStake(alice, STAKE);
        vm.prank(alice);
        registry.deregister();
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.prank(alice);
        registry.withdraw();
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerNothingAtStake.selector, alice));
        vm.prank(watcher);
        manager.openCase(alice, 1e18, EVIDENCE);
    }

    function test_OpenCase_DeregisteredProviderWithUnbondingStakeCanBeReported() public {
        _registerAndStake(alice, STAKE);
        vm.prank(alice);
        registry.deregister();
        assertFalse(registry.getProvider(alice).registered, "deregistered");

        uint256 id = _openCase(alice, 300e18);
        assertEq(uint256(manager.getCase(id).status), uint256(ISlashingManager.CaseStatus.Open), "open");
        assertEq(registry.openCases(alice), 1, "openCases");

        // The unbonding stake is released but held while the case is open.
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryWithdrawalBlockedByOpenCases.selector, 1)
        );
        vm.prank(alice);
        registry.withdraw();
    }

    function test_OpenCase_RevertsWithoutBondAllowance() public {
        _registerAndStake(alice, STAKE);
        token.transfer(stranger, 100e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(manager), 0, CASE_BOND
            )
        );
        vm.prank(stranger);
        manager.openCase(alice, 1e18, EVIDENCE);
    }

    function test_OpenCase_UsesBondAndTtlCurrentAtOpening() public {
        _registerAndStake(alice, STAKE);
        uint256 first = _openCase(alice, 1e18);
        uint64 firstExpiry = manager.getCase(first).expiresAt;

        vm.startPrank(address(timelock));
        manager.setCaseBond(20e18);
        manager.setCaseTtl(60);
        vm.stopPrank();
        vm.warp(block.timestamp + 7);

        uint256 second = _openCase(alice, 1e18);
        assertEq(manager.getCase(second).bond, 20e18, "new bond");
        assertEq(manager.getCase(second).expiresAt, block.timestamp + 60, "new ttl");
        assertEq(manager.getCase(first).bond, CASE_BOND, "old case keeps its bond");
        assertEq(manager.getCase(first).expiresAt, firstExpiry, "old case keeps its expiry");
        assertEq(token.balanceOf(address(manager)), CASE_BOND + 20e18, "both bonds held");
    }

    // ---------------------------------------------------------------- upholdCase

    function test_Uphold_BelowCap_SlashesAskedAndSplits() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        uint256 registryBefore = token.balanceOf(address(registry));
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        uint256 watcherBefore = token.balanceOf(watcher);

        uint256 slashed = _uphold(id);

        assertEq(slashed, 300e18, "slashed");
        assertEq(_status(id), uint256(ISlashingManager.CaseStatus.Upheld), "status");
        assertEq(manager.claimable(watcher), CASE_BOND + 30e18, "bond + 10% reward");
        assertEq(token.balanceOf(address(manager)), CASE_BOND + 30e18, "manager holds the claim");
        assertEq(token.balanceOf(address(timelock)), treasuryBefore + 270e18, "treasury share");
        assertEq(token.balanceOf(address(registry)), registryBefore - 300e18, "registry paid the slash");
        assertEq(token.balanceOf(watcher), watcherBefore, "reward is pulled, not pushed");
        assertEq(registry.getProvider(alice).activeStake, 700e18, "active stake");
        assertEq(registry.totalActiveStake(), 700e18, "total active stake");
        assertEq(registry.openCases(alice), 0, "openCases");
    }

    function test_Uphold_EmitsEvents() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.OpenCasesChanged(alice, 0);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Slashed(alice, id, 300e18, 300e18, 700e18, 0);
        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseUpheld(id, alice, 300e18, 30e18, 270e18);
        vm.expectEmit(address(manager));
        emit ISlashingManager.ClaimableIncreased(watcher, CASE_BOND + 30e18, CASE_BOND + 30e18);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(address(manager), address(timelock), 270e18);
        _uphold(id);
    }

    function test_Uphold_CapsAtMaxSlashBps() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 800e18);
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        assertEq(_uphold(id), 500e18, "capped at 50% of 1000");
        assertEq(registry.getProvider(alice).activeStake, 500e18, "half left");
        assertEq(manager.claimable(watcher), CASE_BOND + 50e18, "reward on the capped slash");
        assertEq(token.balanceOf(address(timelock)), treasuryBefore + 450e18, "treasury on the capped slash");
    }

    function test_Uphold_AskedExactlyAtCapIsNotReduced() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 500e18);
        assertEq(_uphold(id), 500e18, "asked == cap");
    }

    function test_Uphold_OneWeiAboveCapIsCapped() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 500e18 + 1);
        assertEq(_uphold(id), 500e18, "asked cap + 1");
    }

    function test_Uphold_CapFollowsMaxSlashBpsAtResolution() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.prank(address(timelock));
        manager.setMaxSlashBps(1_000);
        assertEq(manager.slashAmountIfUpheld(id), 100e18, "view");
        assertEq(_uphold(id), 100e18, "10% of 1000");
    }

    function test_Uphold_RewardFollowsWatcherRewardBpsAtResolution() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.prank(address(timelock));
        manager.setWatcherRewardBps(5_000);
        _uphold(id);
        assertEq(manager.claimable(watcher), CASE_BOND + 150e18, "half of the slash");
    }

    function test_Uphold_CapCountsUnbondingStakeAndReachesIntoIt() public {
        _registerAndStake(alice, STAKE);
        vm.startPrank(alice);
        registry.requestUnbond(300e18);
        vm.warp(block.timestamp + 10);
        registry.requestUnbond(400e18);
        vm.stopPrank();
        // active 300, unbonding 700 (entries 300, 400): cap 500 of 1000.
        uint256 id = _openCase(alice, 900e18);
        assertEq(manager.slashAmountIfUpheld(id), 500e18, "cap over active + unbonding");

        vm.expectEmit(address(registry));
        emit IProviderRegistry.Slashed(alice, id, 500e18, 300e18, 0, 500e18);
        assertEq(_uphold(id), 500e18, "slashed");

        IProviderRegistry.Provider memory p = registry.getProvider(alice);
        assertEq(p.activeStake, 0, "active emptied first");
        assertEq(p.unbondingStake, 500e18, "then 200 from unbonding");
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        assertEq(entries.length, 2, "entries kept");
        assertEq(entries[0].amount, 300e18, "oldest entry untouched");
        assertEq(entries[1].amount, 200e18, "newest entry cut");
        assertEq(registry.totalUnbondingStake(), 500e18, "total unbonding");
    }

    function test_Uphold_DeregisteredProviderSlashedFromUnbonding() public {
        _registerAndStake(alice, STAKE);
        vm.prank(alice);
        registry.deregister();
        uint256 id = _openCase(alice, 300e18);
        assertEq(_uphold(id), 300e18, "slashed");
        assertEq(registry.getProvider(alice).unbondingStake, 700e18, "unbonding left");

        vm.warp(block.timestamp + UNBONDING_PERIOD);
        uint256 before = token.balanceOf(alice);
        vm.prank(alice);
        assertEq(registry.withdraw(), 700e18, "withdrawn");
        assertEq(token.balanceOf(alice), before + 700e18, "alice paid the rest");
    }

    function test_Uphold_UnblocksProviderWithdrawals() public {
        _registerAndStake(alice, STAKE);
        vm.prank(alice);
        registry.requestUnbond(400e18);
        uint256 id = _openCase(alice, 100e18);

        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryWithdrawalBlockedByOpenCases.selector, 1)
        );
        vm.prank(alice);
        registry.withdraw();

        _uphold(id); // 100 from active: active 500, unbonding 400
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.prank(alice);
        assertEq(registry.withdraw(), 400e18, "withdrawal after the case closed");
    }

    function test_Uphold_SecondCaseCapUsesReducedStakeAndWithdrawalsWaitForBoth() public {
        _registerAndStake(alice, STAKE);
        vm.prank(alice);
        registry.requestUnbond(200e18);
        uint256 first = _openCase(alice, 500e18);
        uint256 second = _openCase(alice, 500e18);
        assertEq(manager.slashAmountIfUpheld(second), 500e18, "before the first");

        assertEq(_uphold(first), 500e18, "first");
        assertEq(registry.openCases(alice), 1, "one still open");
        assertEq(manager.slashAmountIfUpheld(second), 250e18, "cap on what is left");
        assertEq(_uphold(second), 250e18, "second");
        assertEq(_stakeOf(alice), 250e18, "left");
        assertEq(manager.claimable(watcher), 2 * CASE_BOND + 50e18 + 25e18, "two bonds and two rewards");
    }

    function test_Uphold_ZeroWatcherRewardSendsWholeSlashToTreasury() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.prank(address(timelock));
        manager.setWatcherRewardBps(0);
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseUpheld(id, alice, 300e18, 0, 300e18);
        _uphold(id);
        assertEq(manager.claimable(watcher), CASE_BOND, "bond only");
        assertEq(token.balanceOf(address(timelock)), treasuryBefore + 300e18, "all to treasury");
    }

    function test_Uphold_RewardRoundsDownOddWeiToTreasury() public {
        // 38 wei staked: cap 19, asked 19, reward floor(19 * 1000 / 10000) = 1, treasury 18.
        _registerWithStake(alice, 38);
        uint256 id = _openCase(alice, 19);
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseUpheld(id, alice, 19, 1, 18);
        assertEq(_uphold(id), 19, "slashed");
        assertEq(manager.claimable(watcher), CASE_BOND + 1, "reward rounded down");
        assertEq(token.balanceOf(address(timelock)), treasuryBefore + 18, "treasury gets the odd wei");
    }

    function test_Uphold_StakeTooSmallForCapSlashesNothingAndReturnsBond() public {
        // 1 wei staked: cap floor(1 * 5000 / 10000) = 0.
        _registerWithStake(alice, 1);
        uint256 id = _openCase(alice, 1);
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        assertEq(_uphold(id), 0, "nothing slashed");
        assertEq(_stakeOf(alice), 1, "stake intact");
        assertEq(_status(id), uint256(ISlashingManager.CaseStatus.Upheld), "status");
        assertEq(manager.claimable(watcher), CASE_BOND, "bond back");
        assertEq(token.balanceOf(address(timelock)), treasuryBefore, "treasury unchanged");
        assertEq(registry.openCases(alice), 0, "case closed");
    }

    function test_Uphold_RevertsForNonGovernance() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        address[3] memory callers = [stranger, watcher, address(governor)];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_notGovernance(callers[i]));
            vm.prank(callers[i]);
            manager.upholdCase(id);
        }
        assertEq(_status(id), uint256(ISlashingManager.CaseStatus.Open), "still open");
    }

    function test_Uphold_AllowedAtExactlyExpiresAt() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.warp(manager.getCase(id).expiresAt);
        assertEq(_uphold(id), 300e18, "resolvable through expiresAt");
    }

    function test_Uphold_RevertsAfterExpiry() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        uint64 expiresAt = manager.getCase(id).expiresAt;
        vm.warp(uint256(expiresAt) + 1);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerCaseExpired.selector, id, expiresAt));
        _uphold(id);
    }

    function test_Uphold_RevertsOnUpheldCase() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        _uphold(id);
        vm.expectRevert(_notOpen(id, ISlashingManager.CaseStatus.Upheld));
        _uphold(id);
        assertEq(registry.getProvider(alice).activeStake, 700e18, "slashed once");
    }

    function test_Uphold_RevertsOnRejectedCase() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        _reject(id);
        vm.expectRevert(_notOpen(id, ISlashingManager.CaseStatus.Rejected));
        _uphold(id);
    }

    function test_Uphold_RevertsOnExpiredCase() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.warp(block.timestamp + CASE_TTL + 1);
        manager.expireCase(id);
        vm.expectRevert(_notOpen(id, ISlashingManager.CaseStatus.Expired));
        _uphold(id);
    }

    function test_Uphold_RevertsOnUnknownCase() public {
        vm.expectRevert(_unknown(0));
        _uphold(0);
        _registerAndStake(alice, STAKE);
        _openCase(alice, 1e18);
        vm.expectRevert(_unknown(2));
        _uphold(2);
    }

    // ---------------------------------------------------------------- rejectCase

    function test_Reject_SendsBondToTreasuryAndLeavesStake() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        uint256 registryBefore = token.balanceOf(address(registry));

        _reject(id);

        assertEq(_status(id), uint256(ISlashingManager.CaseStatus.Rejected), "status");
        assertEq(token.balanceOf(address(timelock)), treasuryBefore + CASE_BOND, "bond to treasury");
        assertEq(token.balanceOf(address(manager)), 0, "manager empty");
        assertEq(manager.claimable(watcher), 0, "watcher gets nothing");
        assertEq(token.balanceOf(address(registry)), registryBefore, "registry untouched");
        assertEq(_stakeOf(alice), STAKE, "stake untouched");
        assertEq(registry.openCases(alice), 0, "openCases");
    }

    function test_Reject_EmitsEvents() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseRejected(id, alice, CASE_BOND);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.OpenCasesChanged(alice, 0);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(address(manager), address(timelock), CASE_BOND);
        _reject(id);
    }

    function test_Reject_UnblocksProviderWithdrawals() public {
        _registerAndStake(alice, STAKE);
        vm.prank(alice);
        registry.requestUnbond(400e18);
        uint256 id = _openCase(alice, 100e18);
        _reject(id);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.prank(alice);
        assertEq(registry.withdraw(), 400e18, "withdrawal after rejection");
    }

    function test_Reject_RevertsForNonGovernance() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.expectRevert(_notGovernance(stranger));
        vm.prank(stranger);
        manager.rejectCase(id);
        vm.expectRevert(_notGovernance(address(governor)));
        vm.prank(address(governor));
        manager.rejectCase(id);
    }

    function test_Reject_RevertsAfterExpiry() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        uint64 expiresAt = manager.getCase(id).expiresAt;
        vm.warp(uint256(expiresAt) + 1);
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerCaseExpired.selector, id, expiresAt));
        _reject(id);
    }

    function test_Reject_RevertsOnResolvedCases() public {
        _registerAndStake(alice, STAKE);
        uint256 upheld = _openCase(alice, 1e18);
        uint256 rejected = _openCase(alice, 1e18);
        _uphold(upheld);
        _reject(rejected);
        vm.expectRevert(_notOpen(upheld, ISlashingManager.CaseStatus.Upheld));
        _reject(upheld);
        vm.expectRevert(_notOpen(rejected, ISlashingManager.CaseStatus.Rejected));
        _reject(rejected);
    }

    function test_Reject_RevertsOnUnknownCase() public {
        vm.expectRevert(_unknown(7));
        _reject(7);
    }

    // ---------------------------------------------------------------- expireCase

    function test_Expire_RevertsBeforeAndAtExpiresAt() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        uint64 expiresAt = manager.getCase(id).expiresAt;
        bytes memory notExpired =
            abi.encodeWithSelector(ISlashingManager.ManagerCaseNotExpired.selector, id, expiresAt);
        vm.expectRevert(notExpired);
        manager.expireCase(id);
        vm.warp(expiresAt);
        vm.expectRevert(notExpired);
        manager.expireCase(id);
    }

    function test_Expire_AnyoneAfterExpiry_CreditsBondBack() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.warp(uint256(manager.getCase(id).expiresAt) + 1);
        uint256 treasuryBefore = token.balanceOf(address(timelock));

        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseExpired(id, alice, CASE_BOND);
        vm.expectEmit(address(manager));
        emit ISlashingManager.ClaimableIncreased(watcher, CASE_BOND, CASE_BOND);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.OpenCasesChanged(alice, 0);
        vm.prank(stranger);
        manager.expireCase(id);

        assertEq(_status(id), uint256(ISlashingManager.CaseStatus.Expired), "status");
        assertEq(manager.claimable(watcher), CASE_BOND, "bond claimable");
        assertEq(manager.claimable(stranger), 0, "caller gets nothing");
        assertEq(token.balanceOf(address(manager)), CASE_BOND, "bond still held until claimed");
        assertEq(token.balanceOf(address(timelock)), treasuryBefore, "treasury unchanged");
        assertEq(_stakeOf(alice), STAKE, "stake untouched");
        assertEq(registry.openCases(alice), 0, "openCases");
    }

    function test_Expire_UnblocksProviderWithdrawals() public {
        _registerAndStake(alice, STAKE);
        vm.prank(alice);
        registry.requestUnbond(STAKE);
        _openCase(alice, 100e18);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryWithdrawalBlockedByOpenCases.selector, 1)
        );
        vm.prank(alice);
        registry.withdraw();
        manager.expireCase(1);
        vm.prank(alice);
        assertEq(registry.withdraw(), STAKE, "withdrawal after expiry");
    }

    function test_Expire_RevertsOnClosedCases() public {
        _registerAndStake(alice, STAKE);
        uint256 upheld = _openCase(alice, 1e18);
        uint256 rejected = _openCase(alice, 1e18);
        uint256 expired = _openCase(alice, 1e18);
        _uphold(upheld);
        _reject(rejected);
        vm.warp(block.timestamp + CASE_TTL + 1);
        manager.expireCase(expired);
        vm.expectRevert(_notOpen(upheld, ISlashingManager.CaseStatus.Upheld));
        manager.expireCase(upheld);
        vm.expectRevert(_notOpen(rejected, ISlashingManager.CaseStatus.Rejected));
        manager.expireCase(rejected);
        vm.expectRevert(_notOpen(expired, ISlashingManager.CaseStatus.Expired));
        manager.expireCase(expired);
        uint256 reward = uint256(1e18) * WATCHER_REWARD_BPS / 10_000;
        assertEq(manager.claimable(watcher), 2 * CASE_BOND + reward, "upheld bond and reward + expired bond, once each");
    }

    function test_Expire_RevertsOnUnknownCase() public {
        vm.expectRevert(_unknown(1));
        manager.expireCase(1);
    }

    // ---------------------------------------------------------------- claim

    function test_Claim_PaysAndZeroes() public {
        _registerAndStake(alice, STAKE);
        _uphold(_openCase(alice, 300e18));
        uint256 before = token.balanceOf(watcher);

        vm.expectEmit(address(manager));
        emit ISlashingManager.Claimed(watcher, 40e18);
        vm.expectEmit(address(token));
        emit IERC20.Transfer(address(manager), watcher, 40e18);
        vm.prank(watcher);
        uint256 paid = manager.claim();

        assertEq(paid, 40e18, "returned amount");
        assertEq(token.balanceOf(watcher), before + 40e18, "watcher paid");
        assertEq(manager.claimable(watcher), 0, "zeroed");
        assertEq(token.balanceOf(address(manager)), 0, "manager empty");
    }

    function test_Claim_RevertsWhenNothingToClaim() public {
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerNothingToClaim.selector, stranger));
        vm.prank(stranger);
        manager.claim();
    }

    function test_Claim_RevertsOnSecondClaim() public {
        _registerAndStake(alice, STAKE);
        uint256 id = _openCase(alice, 300e18);
        vm.warp(block.timestamp + CASE_TTL + 1);
        manager.expireCase(id);
        vm.prank(watcher);
        manager.claim();
        vm.expectRevert(abi.encodeWithSelector(ISlashingManager.ManagerNothingToClaim.selector, watcher));
        vm.prank(watcher);
        manager.claim();
    }

    function test_Claim_AccumulatesAcrossCases() public {
        _registerAndStake(alice, STAKE);
        uint256 a = _openCase(alice, 1e18);
        uint256 b = _openCase(alice, 1e18);
        vm.warp(block.timestamp + CASE_TTL + 1);
        manager.expireCase(a);
        vm.expectEmit(address(manager));
        emit ISlashingManager.ClaimableIncreased(watcher, CASE_BOND, 2 * CASE_BOND);
        manager.expireCase(b);
        vm.prank(watcher);
        assertEq(manager.claim(), 2 * CASE_BOND, "both bonds in one claim");
    }

    function test_Manager_HoldsExactlyOpenBondsPlusClaims() public {
        _registerAndStake(alice, STAKE);
        _registerAndStake(bob, STAKE);
        _fund(stranger, 100e18);
        uint256 upheld = _openCase(alice, 200e18);
        uint256 rejected = _openCase(bob, 200e18);
        vm.prank(stranger);
        uint256 expired = manager.openCase(bob, 50e18, EVIDENCE);
        _openCase(alice, 10e18); // stays open

        address[] memory accounts = new address[](2);
        accounts[0] = watcher;
        accounts[1] = stranger;
        _assertManagerHoldsBondsAndClaims(accounts, "after opening");
        _uphold(upheld);
        _reject(rejected);
        _assertManagerHoldsBondsAndClaims(accounts, "after resolving");
        vm.warp(block.timestamp + CASE_TTL + 1);
        manager.expireCase(expired);
        _assertManagerHoldsBondsAndClaims(accounts, "after expiring");
        vm.prank(stranger);
        manager.claim();
        _assertManagerHoldsBondsAndClaims(accounts, "after a claim");
        assertEq(token.balanceOf(address(manager)), manager.claimable(watcher) + CASE_BOND, "figures");
    }

    // ---------------------------------------------------------------- setters

    function test_SetCaseBond_UpdatesAndEmits() public {
        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseBondChanged(CASE_BOND, 25e18);
        vm.prank(address(timelock));
        manager.setCaseBond(25e18);
        assertEq(manager.caseBond(), 25e18, "caseBond");
    }

    function test_SetCaseBond_AcceptsBothBounds() public {
        vm.startPrank(address(timelock));
        manager.setCaseBond(manager.MIN_CASE_BOND());
        assertEq(manager.caseBond(), 1e18, "min");
        manager.setCaseBond(manager.MAX_CASE_BOND());
        assertEq(manager.caseBond(), 1_000_000e18, "max");
        vm.stopPrank();
    }

    function test_SetCaseBond_RevertsOutOfBounds() public {
        vm.startPrank(address(timelock));
        vm.expectRevert(_outOfBounds(1e18 - 1, 1e18, 1_000_000e18));
        manager.setCaseBond(1e18 - 1);
        vm.expectRevert(_outOfBounds(1_000_000e18 + 1, 1e18, 1_000_000e18));
        manager.setCaseBond(1_000_000e18 + 1);
        vm.stopPrank();
        assertEq(manager.caseBond(), CASE_BOND, "unchanged");
    }

    function test_SetCaseBond_RevertsForNonGovernance() public {
        vm.expectRevert(_notGovernance(address(this)));
        manager.setCaseBond(2e18);
        vm.expectRevert(_notGovernance(address(governor)));
        vm.prank(address(governor));
        manager.setCaseBond(2e18);
    }

    function test_SetCaseTtl_UpdatesAndEmits() public {
        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseTtlChanged(CASE_TTL, 45);
        vm.prank(address(timelock));
        manager.setCaseTtl(45);
        assertEq(manager.caseTtl(), 45, "caseTtl");
    }

    function test_SetCaseTtl_AcceptsMinAndOneBelowUnbondingPeriod() public {
        vm.startPrank(address(timelock));
        manager.setCaseTtl(30);
        assertEq(manager.caseTtl(), 30, "min");
        manager.setCaseTtl(UNBONDING_PERIOD - 1);
        assertEq(manager.caseTtl(), UNBONDING_PERIOD - 1, "just below the unbonding period");
        vm.stopPrank();
    }

    function test_SetCaseTtl_AcceptsMaxWhenUnbondingPeriodIsLonger() public {
        uint64 maxTtl = manager.MAX_CASE_TTL();
        vm.startPrank(address(timelock));
        registry.setUnbondingPeriod(maxTtl + 1);
        manager.setCaseTtl(maxTtl);
        vm.stopPrank();
        assertEq(manager.caseTtl(), maxTtl, "max");
    }

    function test_SetCaseTtl_RevertsWhenNotBelowUnbondingPeriod() public {
        vm.startPrank(address(timelock));
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.ManagerCaseTtlTooLong.selector, UNBONDING_PERIOD, UNBONDING_PERIOD
            )
        );
        manager.setCaseTtl(UNBONDING_PERIOD);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISlashingManager.ManagerCaseTtlTooLong.selector, UNBONDING_PERIOD + 1, UNBONDING_PERIOD
            )
        );
        manager.setCaseTtl(UNBONDING_PERIOD + 1);
        vm.stopPrank();
        assertEq(manager.caseTtl(), CASE_TTL, "unchanged");
    }

    function test_SetCaseTtl_RevertsOutOfBounds() public {
        vm.startPrank(address(timelock));
        vm.expectRevert(_outOfBounds(29, 30, 90 days));
        manager.setCaseTtl(29);
        vm.expectRevert(_outOfBounds(90 days + 1, 30, 90 days));
        manager.setCaseTtl(90 days + 1);
        vm.stopPrank();
    }

    function test_SetCaseTtl_RevertsForNonGovernance() public {
        vm.expectRevert(_notGovernance(stranger));
        vm.prank(stranger);
        manager.setCaseTtl(60);
    }

    function test_SetMaxSlashBps_UpdatesAndEmits() public {
        vm.expectEmit(address(manager));
        emit ISlashingManager.MaxSlashBpsChanged(MAX_SLASH_BPS, 1_234);
        vm.prank(address(timelock));
        manager.setMaxSlashBps(1_234);
        assertEq(manager.maxSlashBps(), 1_234, "maxSlashBps");
    }

    function test_SetMaxSlashBps_AcceptsBothBounds() public {
        vm.startPrank(address(timelock));
        manager.setMaxSlashBps(1);
        assertEq(manager.maxSlashBps(), 1, "min");
        manager.setMaxSlashBps(manager.MAX_SLASH_BPS());
        assertEq(manager.maxSlashBps(), 5_000, "max");
        vm.stopPrank();
    }

    function test_SetMaxSlashBps_RevertsOutOfBounds() public {
        vm.startPrank(address(timelock));
        vm.expectRevert(_outOfBounds(0, 1, 5_000));
        manager.setMaxSlashBps(0);
        vm.expectRevert(_outOfBounds(5_001, 1, 5_000));
        manager.setMaxSlashBps(5_001);
        vm.stopPrank();
    }

    function test_SetMaxSlashBps_RevertsForNonGovernance() public {
        vm.expectRevert(_notGovernance(watcher));
        vm.prank(watcher);
        manager.setMaxSlashBps(100);
    }

    function test_SetWatcherRewardBps_UpdatesAndEmits() public {
        vm.expectEmit(address(manager));
        emit ISlashingManager.WatcherRewardBpsChanged(WATCHER_REWARD_BPS, 2_500);
        vm.prank(address(timelock));
        manager.setWatcherRewardBps(2_500);
        assertEq(manager.watcherRewardBps(), 2_500, "watcherRewardBps");
    }

    function test_SetWatcherRewardBps_AcceptsBothBounds() public {
        vm.startPrank(address(timelock));
        manager.setWatcherRewardBps(0);
        assertEq(manager.watcherRewardBps(), 0, "min");
        manager.setWatcherRewardBps(manager.MAX_WATCHER_REWARD_BPS());
        assertEq(manager.watcherRewardBps(), 5_000, "max");
        vm.stopPrank();
    }

    function test_SetWatcherRewardBps_RevertsOutOfBounds() public {
        vm.expectRevert(_outOfBounds(5_001, 0, 5_000));
        vm.prank(address(timelock));
        manager.setWatcherRewardBps(5_001);
    }

    function test_SetWatcherRewardBps_RevertsForNonGovernance() public {
        vm.expectRevert(_notGovernance(alice));
        vm.prank(alice);
        manager.setWatcherRewardBps(0);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_SetMaxSlashBps_AcceptsExactlyTheBounds(uint16 bps) public {
        vm.prank(address(timelock));
        if (bps >= 1 && bps <= 5_000) {
            manager.setMaxSlashBps(bps);
            assertEq(manager.maxSlashBps(), bps, "set");
        } else {
            vm.expectRevert(_outOfBounds(bps, 1, 5_000));
            manager.setMaxSlashBps(bps);
        }
    }

    function testFuzz_SetWatcherRewardBps_AcceptsExactlyTheBounds(uint16 bps) public {
        vm.prank(address(timelock));
        if (bps <= 5_000) {
            manager.setWatcherRewardBps(bps);
            assertEq(manager.watcherRewardBps(), bps, "set");
        } else {
            vm.expectRevert(_outOfBounds(bps, 0, 5_000));
            manager.setWatcherRewardBps(bps);
        }
    }

    function testFuzz_SetCaseTtl_AcceptsExactlyTheBounds(uint64 ttl) public {
        vm.prank(address(timelock));
        if (ttl < 30 || ttl > 90 days) {
            vm.expectRevert(_outOfBounds(ttl, 30, 90 days));
        } else if (ttl >= UNBONDING_PERIOD) {
            vm.expectRevert(
                abi.encodeWithSelector(ISlashingManager.ManagerCaseTtlTooLong.selector, ttl, UNBONDING_PERIOD)
            );
        }
        manager.setCaseTtl(ttl);
        if (ttl >= 30 && ttl < UNBONDING_PERIOD) assertEq(manager.caseTtl(), ttl, "set");
        else assertEq(manager.caseTtl(), CASE_TTL, "unchanged");
    }

    function testFuzz_OpenCase_StoresEvidenceHashAndAmount(bytes calldata evidence, uint256 amount) public {
        vm.assume(evidence.length != 0 && evidence.length <= 16_384);
        amount = bound(amount, 1, type(uint256).max);
        _registerAndStake(alice, STAKE);
        vm.prank(watcher);
        uint256 id = manager.openCase(alice, amount, evidence);
        assertEq(manager.getCase(id).evidenceHash, keccak256(evidence), "evidenceHash");
        assertEq(manager.getCase(id).amount, amount, "amount");
        assertLe(manager.slashAmountIfUpheld(id), STAKE / 2, "never above the cap");
    }

    /// @notice The slash is min(asked, maxSlashBps of active + unbonding), taken active first; the
    /// watcher gets bond + floor(slashed * rewardBps / BPS); the treasury exactly the rest.
    function testFuzz_Uphold_SplitIsExact(
        uint256 stake,
        uint256 unbonded,
        uint256 asked,
        uint16 maxBps,
        uint16 rewardBps
    ) public {
        stake = bound(stake, 1, 1_000_000e18);
        unbonded = bound(unbonded, 0, stake);
        asked = bound(asked, 1, stake);
        maxBps = uint16(bound(maxBps, 1, 5_000));
        rewardBps = uint16(bound(rewardBps, 0, 5_000));

        _fund(carol, stake);
        _registerWithStake(carol, stake);
        if (unbonded != 0) {
            vm.prank(carol);
            registry.requestUnbond(unbonded);
        }
        vm.startPrank(address(timelock));
        manager.setMaxSlashBps(maxBps);
        manager.setWatcherRewardBps(rewardBps);
        vm.stopPrank();
        uint256 id = _openCase(carol, asked);

        uint256 cap = stake * maxBps / 10_000;
        uint256 expected = asked < cap ? asked : cap;
        uint256 reward = expected * rewardBps / 10_000;
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        uint256 registryBefore = token.balanceOf(address(registry));
        assertEq(manager.slashAmountIfUpheld(id), expected, "view agrees");

        vm.expectEmit(address(manager));
        emit ISlashingManager.CaseUpheld(id, carol, expected, reward, expected - reward);
        uint256 slashed = _uphold(id);

        assertEq(slashed, expected, "slashed == min(asked, cap)");
        assertLe(slashed, cap, "never above the cap");
        assertLe(slashed, stake, "never above the stake");
        assertLe(slashed * 2, stake, "never above half the stake");
        // Floor: reward * BPS <= slashed * rewardBps < (reward + 1) * BPS.
        assertLe(reward * 10_000, slashed * rewardBps, "reward not rounded up");
        assertGe((reward + 1) * 10_000, slashed * rewardBps + 1, "reward not rounded down by more than 1 wei");
        assertEq(manager.claimable(watcher), CASE_BOND + reward, "watcher claim");
        assertEq(token.balanceOf(address(timelock)) - treasuryBefore, slashed - reward, "treasury share");
        assertEq(
            (manager.claimable(watcher) - CASE_BOND) + (token.balanceOf(address(timelock)) - treasuryBefore),
            slashed,
            "slashed == reward + toTreasury"
        );
        assertEq(registryBefore - token.balanceOf(address(registry)), slashed, "registry paid exactly the slash");
        assertEq(token.balanceOf(address(manager)), manager.claimable(watcher), "manager holds only the claim");

        _assertTakenActiveFirst(carol, stake - unbonded, unbonded, slashed);
    }

    /// @dev Registers without the minimum (register, then stake), for stakes of a few wei.
    function _registerWithStake(address provider, uint256 amount) internal {
        vm.startPrank(provider);
        registry.register("node", "");
        registry.stake(amount);
        vm.stopPrank();
    }

    function _assertTakenActiveFirst(address provider, uint256 active, uint256 unbonded, uint256 slashed) internal view {
        IProviderRegistry.Provider memory p = registry.getProvider(provider);
        uint256 fromActive = slashed < active ? slashed : active;
        assertEq(p.activeStake, active - fromActive, "active first");
        assertEq(p.unbondingStake, unbonded - (slashed - fromActive), "then unbonding");
    }

    /// @notice Several cases against one provider, upheld one after another: each slash stays within
    /// the cap on what is left, and together they never take the whole stake.
    function testFuzz_Uphold_RepeatedCasesStayWithinCapAndStake(
        uint256 stake,
        uint256 asked1,
        uint256 asked2,
        uint256 asked3,
        uint16 maxBps
    ) public {
        stake = bound(stake, 1, 1_000_000e18);
        maxBps = uint16(bound(maxBps, 1, 5_000));
        uint256[3] memory asked =
            [bound(asked1, 1, 2 * stake), bound(asked2, 1, 2 * stake), bound(asked3, 1, 2 * stake)];
        _fund(carol, stake);
        _registerWithStake(carol, stake);
        vm.prank(address(timelock));
        manager.setMaxSlashBps(maxBps);

        uint256[3] memory ids;
        for (uint256 i = 0; i < 3; ++i) {
            ids[i] = _openCase(carol, asked[i]);
        }
        uint256 left = stake;
        uint256 total = 0;
        for (uint256 i = 0; i < 3; ++i) {
            uint256 cap = left * maxBps / 10_000;
            uint256 slashed = _uphold(ids[i]);
            assertLe(slashed, cap, "within the cap on what is left");
            assertLe(slashed, asked[i], "within what was asked");
            assertEq(slashed, asked[i] < cap ? asked[i] : cap, "exact");
            left -= slashed;
            total += slashed;
            assertEq(_stakeOf(carol), left, "stake accounted");
        }
        assertLe(total, stake, "never above the stake");
        assertEq(token.balanceOf(address(manager)), manager.claimable(watcher), "manager holds only claims");
    }
}
