// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "./Vm.sol";

/// @notice The base of every Solidity test here: the cheatcode handle and assertions that say
/// what differed.
abstract contract Test {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @notice One target contract for the invariant fuzzer.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    error AssertionFailed(string message);

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert AssertionFailed(what);
    }

    function assertFalse(bool condition, string memory what) internal pure {
        if (condition) revert AssertionFailed(what);
    }

    function assertEq(uint256 actual, uint256 expected, string memory what) internal pure {
        if (actual != expected) {
            revert AssertionFailed(
                string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected))
            );
        }
    }

    function assertEq(address actual, address expected, string memory what) internal pure {
        if (actual != expected) {
            revert AssertionFailed(
                string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected))
            );
        }
    }

    function assertEq(bytes32 actual, bytes32 expected, string memory what) internal pure {
        if (actual != expected) {
            revert AssertionFailed(
                string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected))
            );
        }
    }

    function assertEq(bool actual, bool expected, string memory what) internal pure {
        if (actual != expected) {
            revert AssertionFailed(
                string.concat(what, ": got ", vm.toString(actual), ", expected ", vm.toString(expected))
            );
        }
    }

    function assertLe(uint256 actual, uint256 limit, string memory what) internal pure {
        if (actual > limit) {
            revert AssertionFailed(string.concat(what, ": ", vm.toString(actual), " > ", vm.toString(limit)));
        }
    }

    function assertGe(uint256 actual, uint256 limit, string memory what) internal pure {
        if (actual < limit) {
            revert AssertionFailed(string.concat(what, ": ", vm.toString(actual), " < ", vm.toString(limit)));
        }
    }

    /// @notice Maps any fuzzed `x` into [min, max] without discarding runs.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + (x % (size + 1));
    }
}
