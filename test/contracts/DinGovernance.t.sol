// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {DinGovernor} from "../../contracts/DinGovernor.sol";
import {ISlashingManager} from "../../contracts/interfaces/ISlashingManager.sol";
import {OpenDinFixture} from "./base/OpenDinFixture.sol";

/// @notice DinToken's votes and DinGovernor's settings and lifecycle, through real proposals.
contract DinGovernanceTest is OpenDinFixture {
    address internal voter = vm.addr(0x707E);

    function setUp() public override {
        super.setUp();
        token.transfer(voter, 10_000_000e18);
        vm.prank(voter);
        token.delegate(voter);
        vm.warp(block.timestamp + 1);
    }

    // ---------------------------------------------------------------- token

    function test_Token_MintsTheSupplyToTheHolder() public view {
        assertEq(token.totalSupply(), SUPPLY, "supply");
        assertEq(token.balanceOf(voter), 10_000_000e18, "voter balance");
    }

    function test_Token_ClockIsTheTimestamp() public view {
        assertEq(token.clock(), block.timestamp, "clock");
        assertEq(keccak256(bytes(token.CLOCK_MODE())), keccak256("mode=timestamp"), "mode");
    }

    function test_Token_VotesFollowDelegationNotBalance() public {
        assertEq(token.getVotes(voter), 10_000_000e18, "self-delegated votes");
        assertEq(token.getVotes(alice), 0, "undelegated balance has no votes");
        vm.prank(alice);
        token.delegate(bob);
        assertEq(token.getVotes(bob), 10_000e18, "alice's balance votes for bob");
    }

    function test_Token_StakedTokensCarryNoVotes() public {
        vm.prank(alice);
        token.delegate(alice);
        assertEq(token.getVotes(alice), 10_000e18, "before staking");
        _registerAndStake(alice, 4_000e18);
        assertEq(token.getVotes(alice), 6_000e18, "staked tokens left the votes");
        assertEq(token.getVotes(address(registry)), 0, "the registry votes with nothing");
    }

    function test_Token_NoncesStartAtZero() public view {
        assertEq(token.nonces(alice), 0, "permit nonce");
    }

    // ---------------------------------------------------------------- governor settings

    function test_Governor_SettingsAsDeployed() public view {
        assertEq(governor.votingDelay(), VOTING_DELAY, "delay");
        assertEq(governor.votingPeriod(), VOTING_PERIOD, "period");
        assertEq(governor.proposalThreshold(), 0, "threshold");
        assertEq(governor.quorum(block.timestamp - 1), SUPPLY * QUORUM_PERCENT / 100, "quorum");
        assertEq(governor.timelock(), address(timelock), "timelock");
    }

    function test_Governor_ConstructorRejectsOutOfBoundSettings() public {
        _expectBounds(0, 1, 14 days);
        new DinGovernor(token, timelock, 0, VOTING_PERIOD, 0, QUORUM_PERCENT);
        _expectBounds(9, 10, 30 days);
        new DinGovernor(token, timelock, VOTING_DELAY, 9, 0, QUORUM_PERCENT);
        _expectBounds(0, 1, 50);
        new DinGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, 0, 0);
        _expectBounds(51, 1, 50);
        new DinGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, 0, 51);
        _expectBounds(10_000_001e18, 0, 10_000_000e18);
        new DinGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, 10_000_001e18, QUORUM_PERCENT);
    }

    function test_Governor_SettingsChangeOnlyThroughGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorOnlyExecutor.selector, address(this)));
        governor.setVotingPeriod(60);
        _pass(address(governor), abi.encodeCall(governor.setVotingPeriod, (60)), "longer votes");
        assertEq(governor.votingPeriod(), 60, "changed by a passed vote");
    }

    function test_Governor_AnOutOfBoundSettingFailsOnExecution() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c, bytes32 h) =
            _passUntilQueued(address(governor), abi.encodeCall(governor.updateQuorumNumerator, (90)), "quorum 90");
        vm.warp(block.timestamp + TIMELOCK_DELAY + 1);
        vm.expectRevert(abi.encodeWithSelector(DinGovernor.GovernorParameterOutOfBounds.selector, 90, 1, 50));
        governor.execute(t, v, c, h);
    }

    // ---------------------------------------------------------------- lifecycle

    function test_Governor_UpholdsACaseEndToEnd() public {
        _registerAndStake(alice, 1_000e18);
        uint256 caseId = _openCase(alice, 200e18);
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        _pass(address(manager), abi.encodeCall(manager.upholdCase, (caseId)), "uphold");
        assertEq(uint256(manager.getCase(caseId).status), uint256(ISlashingManager.CaseStatus.Upheld), "upheld");
        assertEq(registry.getProvider(alice).activeStake, 800e18, "slashed");
        assertEq(token.balanceOf(address(timelock)) - treasuryBefore, 180e18, "treasury share");
    }

    function test_Governor_RejectsACaseEndToEnd() public {
        _registerAndStake(alice, 1_000e18);
        uint256 caseId = _openCase(alice, 200e18);
        _pass(address(manager), abi.encodeCall(manager.rejectCase, (caseId)), "reject");
        assertEq(uint256(manager.getCase(caseId).status), uint256(ISlashingManager.CaseStatus.Rejected), "rejected");
        assertEq(registry.getProvider(alice).activeStake, 1_000e18, "untouched");
    }

    /// @notice Two cases against one provider, each upheld by the proposal `din gov
    /// propose-slash --jail` builds (upholdCase + jail), executed in turn: the second finds the
    /// provider jailed already, and its slash still happens.
    function test_Governor_TwoUpholdAndJailProposalsBothSlash() public {
        _registerAndStake(alice, 1_000e18);
        uint256 first = _openCase(alice, 200e18);
        uint256 second = _openCase(alice, 100e18);
        (address[] memory t1, uint256[] memory v1, bytes[] memory c1) = _upholdAndJail(first);
        (address[] memory t2, uint256[] memory v2, bytes[] memory c2) = _upholdAndJail(second);
        bytes32 h1 = _passUntilQueued(t1, v1, c1, "Uphold slashing case 1 and jail the provider");
        bytes32 h2 = _passUntilQueued(t2, v2, c2, "Uphold slashing case 2 and jail the provider");
        vm.warp(block.timestamp + TIMELOCK_DELAY + 1);
        governor.execute(t1, v1, c1, h1);
        governor.execute(t2, v2, c2, h2);
        assertEq(uint256(manager.getCase(first).status), uint256(ISlashingManager.CaseStatus.Upheld), "first upheld");
        assertEq(uint256(manager.getCase(second).status), uint256(ISlashingManager.CaseStatus.Upheld), "second upheld");
        assertEq(registry.getProvider(alice).activeStake, 700e18, "both slashes taken");
        assertTrue(registry.getProvider(alice).jailed, "jailed");
    }

    function test_Governor_WithoutQuorumTheProposalIsDefeated() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c) = _call(address(governor), abi.encodeCall(governor.setVotingPeriod, (60)));
        vm.prank(alice);
        token.delegate(alice);
        vm.warp(block.timestamp + 1);
        vm.prank(alice);
        uint256 id = governor.propose(t, v, c, "tiny");
        vm.warp(block.timestamp + VOTING_DELAY + 1);
        vm.prank(alice);
        governor.castVote(id, 1); // 10,000 DIN of 4,000,000 needed
        vm.warp(block.timestamp + VOTING_PERIOD + 1);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Defeated), "defeated");
    }

    function test_Governor_ProposerCancelsWhilePending() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c) = _call(address(governor), abi.encodeCall(governor.setVotingPeriod, (60)));
        vm.prank(voter);
        uint256 id = governor.propose(t, v, c, "changed my mind");
        assertTrue(governor.proposalNeedsQueuing(id), "goes through the timelock");
        vm.prank(voter);
        governor.cancel(t, v, c, keccak256("changed my mind"));
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Canceled), "canceled");
    }

    function test_Timelock_NoAccountButTheGovernorSteers() public view {
        assertFalse(timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), address(this)), "deployer renounced admin");
        assertTrue(timelock.hasRole(timelock.PROPOSER_ROLE(), address(governor)), "governor proposes");
        assertTrue(timelock.hasRole(timelock.CANCELLER_ROLE(), address(governor)), "governor cancels");
        assertFalse(timelock.hasRole(timelock.PROPOSER_ROLE(), voter), "a holder does not propose to the timelock");
        assertTrue(timelock.hasRole(timelock.EXECUTOR_ROLE(), address(0)), "anyone executes a passed proposal");
    }

    // ---------------------------------------------------------------- helpers

    function _expectBounds(uint256 value, uint256 min, uint256 max) internal {
        vm.expectRevert(abi.encodeWithSelector(DinGovernor.GovernorParameterOutOfBounds.selector, value, min, max));
    }

    /// @notice Empty proposal arrays for `count` calls, all of value 0.
    function _calls(uint256 count)
        internal
        pure
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas)
    {
        targets = new address[](count);
        values = new uint256[](count);
        calldatas = new bytes[](count);
    }

    function _call(address target, bytes memory data)
        internal
        pure
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas)
    {
        (targets, values, calldatas) = _calls(1);
        (targets[0], calldatas[0]) = (target, data);
    }

    /// @notice The calls of `din gov propose-slash --case <caseId> --jail`.
    function _upholdAndJail(uint256 caseId)
        internal
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas)
    {
        (targets, values, calldatas) = _calls(2);
        (targets[0], calldatas[0]) = (address(manager), abi.encodeCall(manager.upholdCase, (caseId)));
        (targets[1], calldatas[1]) = (address(registry), abi.encodeCall(registry.jail, (manager.getCase(caseId).provider)));
    }

    function _passUntilQueued(address target, bytes memory data, string memory description)
        internal
        returns (address[] memory t, uint256[] memory v, bytes[] memory c, bytes32 h)
    {
        (t, v, c) = _call(target, data);
        h = _passUntilQueued(t, v, c, description);
    }

    function _passUntilQueued(address[] memory t, uint256[] memory v, bytes[] memory c, string memory description)
        internal
        returns (bytes32 h)
    {
        h = keccak256(bytes(description));
        vm.prank(voter);
        uint256 id = governor.propose(t, v, c, description);
        vm.warp(block.timestamp + VOTING_DELAY + 1);
        vm.prank(voter);
        governor.castVote(id, 1);
        vm.warp(block.timestamp + VOTING_PERIOD + 1);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Succeeded), "succeeded");
        governor.queue(t, v, c, h);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Queued), "queued");
    }

    function _pass(address target, bytes memory data, string memory description) internal {
        (address[] memory t, uint256[] memory v, bytes[] memory c, bytes32 h) = _passUntilQueued(target, data, description);
        vm.warp(block.timestamp + TIMELOCK_DELAY + 1);
        governor.execute(t, v, c, h);
    }
}
