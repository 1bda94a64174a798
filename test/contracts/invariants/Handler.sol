// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {DinToken} from "../../../contracts/DinToken.sol";
import {ProviderRegistry} from "../../../contracts/ProviderRegistry.sol";
import {SlashingManager} from "../../../contracts/SlashingManager.sol";
import {IProviderRegistry} from "../../../contracts/interfaces/IProviderRegistry.sol";
import {ISlashingManager} from "../../../contracts/interfaces/ISlashingManager.sol";
import {Test} from "../base/Test.sol";

/// @notice What the invariant fuzzer drives: three providers and two watchers acting on the deployed
/// registry and manager, with the timelock upholding and rejecting cases. Every function takes fuzzed
/// seeds and bounds them into an action that must succeed, or skips when no such action exists, so a
/// revert out of here is a contract bug (the invariants run with failOnRevert). The one expected
/// revert, a withdrawal blocked by an open case, is caught and counted.
/// @dev Ghost variables record what the contracts cannot be asked afterwards: what each withdrawal
/// paid against what was released, and each slash against the cap computed just before it.
contract Handler is Test {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_WARP = 200;
    uint256 internal constant MAX_CHAIN_ID = 8; // below MAX_ENDPOINTS, so setEndpoint never runs out

    DinToken public token;
    ProviderRegistry public registry;
    SlashingManager public manager;
    address public timelock;

    address[3] internal _providers;
    address[2] internal _watchers;

    /// @notice The clock this handler keeps; every action runs at it, whatever the runner does to
    /// block.timestamp between calls.
    uint256 public currentTime;

    /// @notice Cases opened here and not closed yet, so picking one costs no scan of every case.
    uint256[] internal _openCaseIds;

    // ------------------------------------------------------------ ghosts

    /// @notice Tokens each provider received from withdraw.
    mapping(address provider => uint256) public ghostWithdrawn;
    /// @notice Σ over each provider's successful withdrawals of its released entries just before.
    mapping(address provider => uint256) public ghostReleasedAtWithdraw;
    /// @notice Stake each provider ever moved into unbonding (requestUnbond and deregister).
    mapping(address provider => uint256) public ghostUnbondedEver;
    /// @notice Withdrawals that paid more than the provider's released entries at the time.
    uint256 public ghostOverpaidWithdrawals;
    /// @notice Withdrawals that succeeded while the provider had an open case.
    uint256 public ghostWithdrawalsWithOpenCase;

    /// @notice The largest slash seen, and the cap and stake there were just before it.
    uint256 public ghostMaxSlash;
    uint256 public ghostCapAtMaxSlash;
    uint256 public ghostStakeAtMaxSlash;
    /// @notice Upheld cases that took more than maxSlashBps of the stake, or more than the stake.
    uint256 public ghostSlashesAboveCap;
    uint256 public ghostSlashesAboveStake;
    /// @notice Upheld cases that took less than min(asked, cap), all of which was there to take.
    uint256 public ghostSlashesShort;
    /// @notice Σ slashed, and Σ sent to the treasury by upheld and rejected cases.
    uint256 public ghostSlashedTotal;

    /// @notice Calls per action that did what they say, and calls that found nothing to do.
    mapping(bytes32 action => uint256) public calls;
    mapping(bytes32 action => uint256) public skips;

    constructor(
        DinToken token_,
        ProviderRegistry registry_,
        SlashingManager manager_,
        address timelock_,
        address[3] memory providers_,
        address[2] memory watchers_
    ) {
        token = token_;
        registry = registry_;
        manager = manager_;
        timelock = timelock_;
        _providers = providers_;
        _watchers = watchers_;
        currentTime = block.timestamp;
    }

    modifier atCurrentTime() {
        vm.warp(currentTime);
        _;
    }

    // ------------------------------------------------------------ providers

    function registerAndStake(uint256 actorSeed, uint256 amount) external atCurrentTime {
        address provider = _provider(actorSeed);
        uint256 balance = token.balanceOf(provider);
        uint256 minStake = registry.minStake();
        if (registry.getProvider(provider).registered || balance < minStake) {
            _skip("registerAndStake");
            return;
        }
        amount = bound(amount, minStake, balance);
        vm.prank(provider);
        registry.registerAndStake("node", "ipfs://meta", amount);
        calls["registerAndStake"] += 1;
    }

    function stake(uint256 actorSeed, uint256 amount) external atCurrentTime {
        address provider = _provider(actorSeed);
        uint256 balance = token.balanceOf(provider);
        if (!registry.getProvider(provider).registered || balance == 0) {
            _skip("stake");
            return;
        }
        amount = bound(amount, 1, balance);
        vm.prank(provider);
        registry.stake(amount);
        calls["stake"] += 1;
    }

    function requestUnbond(uint256 actorSeed, uint256 amount) external atCurrentTime {
        address provider = _provider(actorSeed);
        uint256 active = registry.getProvider(provider).activeStake;
        if (active == 0 || _entriesFull(provider)) {
            _skip("requestUnbond");
            return;
        }
        amount = bound(amount, 1, active);
        vm.prank(provider);
        registry.requestUnbond(amount);
        ghostUnbondedEver[provider] += amount;
        calls["requestUnbond"] += 1;
    }

    /// @notice Withdraws when something is released, also while a case is open: that call must revert.
    function withdraw(uint256 actorSeed) external atCurrentTime {
        address provider = _provider(actorSeed);
        uint256 released = _released(provider);
        if (released == 0) {
            _skip("withdraw");
            return;
        }
        uint256 openBefore = registry.openCases(provider);
        uint256 balanceBefore = token.balanceOf(provider);
        vm.prank(provider);
        try registry.withdraw() returns (uint256) {
            uint256 paid = token.balanceOf(provider) - balanceBefore;
            ghostWithdrawn[provider] += paid;
            ghostReleasedAtWithdraw[provider] += released;
            if (paid > released) ghostOverpaidWithdrawals += 1;
            if (openBefore != 0) ghostWithdrawalsWithOpenCase += 1;
            calls["withdraw"] += 1;
        } catch (bytes memory reason) {
            // Only an open case may stop a withdrawal of released stake.
            if (openBefore == 0) _bubble(reason);
            calls["withdrawBlocked"] += 1;
        }
    }

    function deregister(uint256 actorSeed) external atCurrentTime {
        address provider = _provider(actorSeed);
        IProviderRegistry.Provider memory p = registry.getProvider(provider);
        if (!p.registered || (p.activeStake != 0 && _entriesFull(provider))) {
            _skip("deregister");
            return;
        }
        vm.prank(provider);
        registry.deregister();
        ghostUnbondedEver[provider] += p.activeStake;
        calls["deregister"] += 1;
    }

    function setEndpoint(uint256 actorSeed, uint256 chainSeed) external atCurrentTime {
        address provider = _provider(actorSeed);
        if (!registry.getProvider(provider).registered) {
            _skip("setEndpoint");
            return;
        }
        uint256 chainId = bound(chainSeed, 1, MAX_CHAIN_ID);
        vm.prank(provider);
        registry.setEndpoint(chainId, string.concat("https://rpc-", vm.toString(chainId), ".example.org"));
        calls["setEndpoint"] += 1;
    }

    // ------------------------------------------------------------ watchers

    /// @notice Asks for up to twice the provider's stake, so about half the cases hit the cap.
    function openCase(uint256 watcherSeed, uint256 providerSeed, uint256 amount) external atCurrentTime {
        address watcher = _watcher(watcherSeed);
        address provider = _provider(providerSeed);
        IProviderRegistry.Provider memory p = registry.getProvider(provider);
        uint256 atStake = uint256(p.activeStake) + p.unbondingStake;
        if (atStake == 0 || token.balanceOf(watcher) < manager.caseBond()) {
            _skip("openCase");
            return;
        }
        amount = bound(amount, 1, 2 * atStake);
        vm.prank(watcher);
        uint256 caseId = manager.openCase(provider, amount, "evidence");
        _openCaseIds.push(caseId);
        calls["openCase"] += 1;
    }

    function expireCase(uint256 caseSeed) external atCurrentTime {
        (bool found, uint256 index) = _pickCase(caseSeed, false);
        if (!found) {
            _skip("expireCase");
            return;
        }
        manager.expireCase(_openCaseIds[index]);
        _forgetCase(index);
        calls["expireCase"] += 1;
    }

    function claim(uint256 watcherSeed) external atCurrentTime {
        address watcher = _watcher(watcherSeed);
        if (manager.claimable(watcher) == 0) {
            _skip("claim");
            return;
        }
        vm.prank(watcher);
        manager.claim();
        calls["claim"] += 1;
    }

    // ------------------------------------------------------------ governance (the timelock)

    /// @notice Upholds an open case within its lifetime, checking the slash against the cap and the
    /// stake read just before.
    function upholdCase(uint256 caseSeed) external atCurrentTime {
        (bool found, uint256 index) = _pickCase(caseSeed, true);
        if (!found) {
            _skip("upholdCase");
            return;
        }
        uint256 caseId = _openCaseIds[index];
        ISlashingManager.Case memory c = manager.getCase(caseId);
        IProviderRegistry.Provider memory p = registry.getProvider(c.provider);
        uint256 atStake = uint256(p.activeStake) + p.unbondingStake;
        uint256 cap = manager.maxSlashBps() * atStake / BPS;
        uint256 due = c.amount < cap ? c.amount : cap;

        vm.prank(timelock);
        uint256 slashed = manager.upholdCase(caseId);
        _forgetCase(index);

        if (slashed > cap) ghostSlashesAboveCap += 1;
        if (slashed > atStake) ghostSlashesAboveStake += 1;
        if (slashed < due) ghostSlashesShort += 1;
        if (slashed >= ghostMaxSlash) {
            ghostMaxSlash = slashed;
            ghostCapAtMaxSlash = cap;
            ghostStakeAtMaxSlash = atStake;
        }
        ghostSlashedTotal += slashed;
        calls["upholdCase"] += 1;
    }

    function rejectCase(uint256 caseSeed) external atCurrentTime {
        (bool found, uint256 index) = _pickCase(caseSeed, true);
        if (!found) {
            _skip("rejectCase");
            return;
        }
        vm.prank(timelock);
        manager.rejectCase(_openCaseIds[index]);
        _forgetCase(index);
        calls["rejectCase"] += 1;
    }

    /// @notice Governance moves the cap within its bounds, so the cap check sees more than one value.
    function setMaxSlashBps(uint256 bpsSeed) external atCurrentTime {
        uint16 bps = uint16(bound(bpsSeed, 1, manager.MAX_SLASH_BPS()));
        vm.prank(timelock);
        manager.setMaxSlashBps(bps);
        calls["setMaxSlashBps"] += 1;
    }

    // ------------------------------------------------------------ time

    function warp(uint256 secondsSeed) external {
        currentTime += bound(secondsSeed, 0, MAX_WARP);
        vm.warp(currentTime);
        calls["warp"] += 1;
    }

    // ------------------------------------------------------------ views for the invariants

    function providers() external view returns (address[3] memory) {
        return _providers;
    }

    function watchers() external view returns (address[2] memory) {
        return _watchers;
    }

    function openCaseIds() external view returns (uint256[] memory) {
        return _openCaseIds;
    }

    // ------------------------------------------------------------ internals

    function _provider(uint256 seed) internal view returns (address) {
        return _providers[seed % _providers.length];
    }

    function _watcher(uint256 seed) internal view returns (address) {
        return _watchers[seed % _watchers.length];
    }

    function _entriesFull(address provider) internal view returns (bool) {
        return registry.getUnbondingEntries(provider).length >= registry.MAX_UNBONDING_ENTRIES();
    }

    /// @notice Σ amounts of `provider`'s unbonding entries released at the handler's clock.
    function _released(address provider) internal view returns (uint256 amount) {
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(provider);
        for (uint256 i = 0; i < entries.length; ++i) {
            if (entries[i].releaseAt <= currentTime) amount += entries[i].amount;
        }
    }

    /// @notice Picks, starting at `seed`, an open case that is still resolvable (or already expired).
    function _pickCase(uint256 seed, bool resolvable) internal view returns (bool found, uint256 index) {
        uint256 count = _openCaseIds.length;
        for (uint256 k = 0; k < count; ++k) {
            index = (seed % count + k) % count;
            uint64 expiresAt = manager.getCase(_openCaseIds[index]).expiresAt;
            if ((currentTime <= expiresAt) == resolvable) return (true, index);
        }
        return (false, 0);
    }

    function _forgetCase(uint256 index) internal {
        _openCaseIds[index] = _openCaseIds[_openCaseIds.length - 1];
        _openCaseIds.pop();
    }

    function _skip(bytes32 action) internal {
        skips[action] += 1;
    }

    function _bubble(bytes memory reason) internal pure {
        assembly {
            revert(add(reason, 32), mload(reason))
        }
    }
}
