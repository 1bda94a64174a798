// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title DinToken
/// @notice The OpenDIN stake and vote token. Fixed supply, minted once to `initialHolder`.
/// Votes follow delegation (ERC20Votes) on a timestamp clock (ERC-6372), so governance periods are
/// in seconds on every chain. Tokens staked in the registry carry no votes.
contract DinToken is ERC20, ERC20Permit, ERC20Votes {
    /// @param initialHolder receives the whole supply
    /// @param supply total supply in token wei
    constructor(address initialHolder, uint256 supply) ERC20("OpenDIN", "DIN") ERC20Permit("OpenDIN") {
        _mint(initialHolder, supply);
    }

    /// @notice The ERC-6372 clock: block timestamps.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice The ERC-6372 clock mode.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @dev Both ERC20 and ERC20Votes hook token moves.
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    /// @notice The permit nonce of `owner`.
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
