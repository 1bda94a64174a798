// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {OpenDinFixture} from "./base/OpenDinFixture.sol";

/// @notice The operations whose gas docs/gas.md reports, each in a network that already has
/// other providers and cases (so no first-ever storage writes flatter or inflate the figures).
/// `npm run gas` prints Hardhat's gas statistics for this file.
contract GasTest is OpenDinFixture {
    function setUp() public override {
        super.setUp();
        _registerAndStake(bob, 1_000e18);
        _openCase(bob, 1e18);
    }

    function test_Gas_RegisterAndStake() public {
        _registerAndStake(alice, 1_000e18);
        assertEq(registry.getProvider(alice).activeStake, 1_000e18, "staked");
    }

    function test_Gas_SetEndpoint() public {
        _registerAndStake(alice, 1_000e18);
        vm.prank(alice);
        registry.setEndpoint(1, "https://eth.alice-nodes.example/rpc");
        assertEq(registry.endpointChainIds(alice).length, 1, "endpoint count");
    }

    function test_Gas_RequestUnbondAndWithdraw() public {
        _registerAndStake(alice, 1_000e18);
        vm.prank(alice);
        registry.requestUnbond(400e18);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.prank(alice);
        uint256 paid = registry.withdraw();
        assertEq(paid, 400e18, "withdrawn");
    }

    function test_Gas_OpenCase() public {
        _registerAndStake(alice, 1_000e18);
        uint256 caseId = _openCase(alice, 100e18);
        assertEq(caseId, 2, "second case");
    }

    function test_Gas_ExecutedSlash() public {
        _registerAndStake(alice, 1_000e18);
        uint256 caseId = _openCase(alice, 100e18);
        vm.prank(address(timelock));
        uint256 slashed = manager.upholdCase(caseId);
        assertEq(slashed, 100e18, "slashed");
    }
}
