// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;
import {OpenDinFixture} from "./base/OpenDinFixture.sol";
contract SmokeTest is OpenDinFixture {
    function testSlashFlow() public {
        _registerAndStake(alice, 1000e18);
        uint256 id = _openCase(alice, 300e18);
        vm.prank(address(timelock));
        uint256 slashed = manager.upholdCase(id);
        assertEq(slashed, 300e18, "slashed");
        assertEq(manager.claimable(watcher), 10e18 + 30e18, "claimable");
        vm.expectRevert(abi.encodeWithSignature("RegistryNotGovernance(address)", address(this)));
        registry.jail(alice);
    }
}
