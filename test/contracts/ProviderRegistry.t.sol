// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IProviderRegistry} from "../../contracts/interfaces/IProviderRegistry.sol";
import {ProviderRegistry} from "../../contracts/ProviderRegistry.sol";
import {OpenDinFixture} from "./base/OpenDinFixture.sol";

/// @notice Unit tests of every external function of ProviderRegistry: the state each call leaves
/// (provider fields, unbonding entries, totals, token balances), the event it emits and every custom
/// error it reverts with. Governance calls are pranked from the timelock, slashing-manager calls from
/// the bound manager. Run: `npx hardhat test solidity test/contracts/ProviderRegistry.t.sol`.
contract ProviderRegistryTest is OpenDinFixture {
    uint256 internal constant MAX_NAME = 64;
    uint256 internal constant MAX_METADATA = 256;
    uint256 internal constant MAX_URL = 256;
    uint256 internal constant MAX_ENDPOINTS = 16;
    uint256 internal constant MAX_ENTRIES = 16;
    uint256 internal constant MIN_MIN_STAKE = 1e18;
    uint256 internal constant MAX_MIN_STAKE = 10_000_000e18;
    uint64 internal constant MIN_PERIOD = 60;
    uint64 internal constant MAX_PERIOD = 365 days;

    uint256 internal constant ALICE_STAKE = 1_000e18;

    // ---------------------------------------------------------------- helpers

    /// @notice A string of `length` bytes, all "a".
    function _repeat(uint256 length) internal pure returns (string memory) {
        bytes memory b = new bytes(length);
        for (uint256 i = 0; i < length; ++i) {
            b[i] = "a";
        }
        return string(b);
    }

    /// @notice An https URL exactly `length` bytes long (length > 8).
    function _httpsUrl(uint256 length) internal pure returns (string memory) {
        return string.concat("https://", _repeat(length - 8));
    }

    function _assertProvider(
        address provider,
        uint256 activeStake,
        uint256 unbondingStake,
        uint256 endpointCount,
        uint256 openCases,
        bool registered,
        bool jailed
    ) internal view {
        IProviderRegistry.Provider memory p = registry.getProvider(provider);
        assertEq(p.activeStake, activeStake, "activeStake");
        assertEq(p.unbondingStake, unbondingStake, "unbondingStake");
        assertEq(p.endpointCount, endpointCount, "endpointCount");
        assertEq(p.openCases, openCases, "openCases");
        assertEq(p.registered, registered, "registered");
        assertEq(p.jailed, jailed, "jailed");
    }

    /// @notice Token conservation: the registry holds exactly Σ active + Σ unbonding.
    function _assertConservation() internal view {
        assertEq(
            token.balanceOf(address(registry)),
            registry.totalActiveStake() + registry.totalUnbondingStake(),
            "registry balance == totals"
        );
    }

    function _unbond(address provider, uint256 amount) internal returns (uint64 releaseAt) {
        vm.prank(provider);
        releaseAt = registry.requestUnbond(amount);
    }

    function _setEndpoint(address provider, uint256 chainId, string memory url) internal {
        vm.prank(provider);
        registry.setEndpoint(chainId, url);
    }

    function _setUnbondingPeriod(uint64 period) internal {
        vm.prank(address(timelock));
        registry.setUnbondingPeriod(period);
    }

    function _contains(uint256[] memory values, uint256 value) internal pure returns (bool) {
        for (uint256 i = 0; i < values.length; ++i) {
            if (values[i] == value) return true;
        }
        return false;
    }

    // ---------------------------------------------------------------- constructor and views

    function test_Constructor_SetsParametersAndEmptyState() public view {
        assertEq(registry.token(), address(token), "token");
        assertEq(registry.governance(), address(timelock), "governance");
        assertEq(registry.slashingManager(), address(manager), "slashingManager");
        assertEq(registry.minStake(), MIN_STAKE, "minStake");
        assertEq(registry.unbondingPeriod(), UNBONDING_PERIOD, "unbondingPeriod");
        assertEq(registry.totalActiveStake(), 0, "totalActiveStake");
        assertEq(registry.totalUnbondingStake(), 0, "totalUnbondingStake");
        _assertProvider(alice, 0, 0, 0, 0, false, false);
        assertEq(registry.getProvider(alice).registeredAt, 0, "registeredAt");
        assertEq(registry.getUnbondingEntries(alice).length, 0, "no entries");
        assertEq(registry.endpointChainIds(alice).length, 0, "no endpoints");
        assertEq(registry.endpointUrlHash(alice, 1), bytes32(0), "no url hash");
        assertEq(registry.openCases(alice), 0, "openCases view");
        assertFalse(registry.isEligible(alice), "unregistered is not eligible");
    }

    function test_Constructor_EmitsInitialParameterEvents() public {
        vm.expectEmit();
        emit IProviderRegistry.MinStakeChanged(0, 5e18);
        vm.expectEmit();
        emit IProviderRegistry.UnbondingPeriodChanged(0, 3_600);
        ProviderRegistry fresh = new ProviderRegistry(token, address(timelock), 5e18, 3_600);
        assertEq(fresh.minStake(), 5e18, "minStake");
        assertEq(fresh.unbondingPeriod(), 3_600, "unbondingPeriod");
        assertEq(fresh.slashingManager(), address(0), "manager unbound");
    }

    function test_Constructor_RevertsOnZeroToken() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryZeroAddress.selector));
        new ProviderRegistry(IERC20(address(0)), address(timelock), MIN_STAKE, UNBONDING_PERIOD);
    }

    function test_Constructor_RevertsOnZeroGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryZeroAddress.selector));
        new ProviderRegistry(token, address(0), MIN_STAKE, UNBONDING_PERIOD);
    }

    function test_Constructor_RevertsOnMinStakeBelowBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MIN_MIN_STAKE - 1, MIN_MIN_STAKE, MAX_MIN_STAKE
            )
        );
        new ProviderRegistry(token, address(timelock), MIN_MIN_STAKE - 1, UNBONDING_PERIOD);
    }

    function test_Constructor_RevertsOnMinStakeAboveBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MAX_MIN_STAKE + 1, MIN_MIN_STAKE, MAX_MIN_STAKE
            )
        );
        new ProviderRegistry(token, address(timelock), MAX_MIN_STAKE + 1, UNBONDING_PERIOD);
    }

    function test_Constructor_RevertsOnUnbondingPeriodBelowBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MIN_PERIOD - 1, MIN_PERIOD, MAX_PERIOD
            )
        );
        new ProviderRegistry(token, address(timelock), MIN_STAKE, MIN_PERIOD - 1);
    }

    function test_Constructor_RevertsOnUnbondingPeriodAboveBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MAX_PERIOD + 1, MIN_PERIOD, MAX_PERIOD
            )
        );
        new ProviderRegistry(token, address(timelock), MIN_STAKE, MAX_PERIOD + 1);
    }

    function test_Constructor_AcceptsBoundaryParameters() public {
        ProviderRegistry low = new ProviderRegistry(token, address(timelock), MIN_MIN_STAKE, MIN_PERIOD);
        assertEq(low.minStake(), MIN_MIN_STAKE, "low minStake");
        assertEq(low.unbondingPeriod(), MIN_PERIOD, "low period");
        ProviderRegistry high = new ProviderRegistry(token, address(timelock), MAX_MIN_STAKE, MAX_PERIOD);
        assertEq(high.minStake(), MAX_MIN_STAKE, "high minStake");
        assertEq(high.unbondingPeriod(), MAX_PERIOD, "high period");
    }

    // ---------------------------------------------------------------- register

    function test_Register_RecordsProviderWithoutStakeAndEmits() public {
        vm.warp(1_700_000_500);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderRegistered(alice, "alice", "ipfs://alice", false);
        vm.prank(alice);
        registry.register("alice", "ipfs://alice");
        _assertProvider(alice, 0, 0, 0, 0, true, false);
        assertEq(registry.getProvider(alice).registeredAt, 1_700_000_500, "registeredAt");
        assertFalse(registry.isEligible(alice), "no stake, not eligible");
        assertEq(registry.totalActiveStake(), 0, "no stake counted");
    }

    function test_Register_AcceptsEmptyMetadataAndMaximumLengths() public {
        vm.prank(alice);
        registry.register("a", "");
        assertTrue(registry.getProvider(alice).registered, "1-byte name, empty metadata");
        vm.prank(bob);
        registry.register(_repeat(MAX_NAME), _repeat(MAX_METADATA));
        assertTrue(registry.getProvider(bob).registered, "64-byte name, 256-byte metadata");
    }

    function test_Register_RevertsOnEmptyName() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidName.selector, 0, MAX_NAME));
        vm.prank(alice);
        registry.register("", "ipfs://meta");
    }

    function test_Register_RevertsOnNameOf65Bytes() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidName.selector, 65, MAX_NAME));
        vm.prank(alice);
        registry.register(_repeat(65), "ipfs://meta");
    }

    function test_Register_RevertsOnMetadataOf257Bytes() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryMetadataTooLong.selector, 257, MAX_METADATA));
        vm.prank(alice);
        registry.register("alice", _repeat(257));
    }

    function test_Register_RevertsWhenAlreadyRegistered() public {
        vm.prank(alice);
        registry.register("alice", "");
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryAlreadyRegistered.selector, alice));
        vm.prank(alice);
        registry.register("alice", "");
    }

    function test_Register_AgainAfterDeregisterKeepsJailedFlagAndUpdatesRegisteredAt() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(address(timelock));
        registry.jail(alice);
        vm.prank(alice);
        registry.deregister();
        vm.warp(block.timestamp + 1_000);

        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderRegistered(alice, "again", "", true);
        vm.prank(alice);
        registry.register("again", "");
        _assertProvider(alice, 0, ALICE_STAKE, 0, 0, true, true);
        assertEq(registry.getProvider(alice).registeredAt, block.timestamp, "registeredAt updated");

        vm.prank(alice);
        registry.stake(ALICE_STAKE);
        assertFalse(registry.isEligible(alice), "still jailed after re-registering");
        vm.prank(address(timelock));
        registry.unjail(alice);
        assertTrue(registry.isEligible(alice), "eligible once unjailed");
    }

    // ---------------------------------------------------------------- registerAndStake

    function test_RegisterAndStake_RegistersStakesPullsTokensAndEmitsBoth() public {
        uint256 aliceBefore = token.balanceOf(alice);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderRegistered(alice, "node", "ipfs://meta", false);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Staked(alice, ALICE_STAKE, ALICE_STAKE);
        _registerAndStake(alice, ALICE_STAKE);

        _assertProvider(alice, ALICE_STAKE, 0, 0, 0, true, false);
        assertEq(registry.getProvider(alice).registeredAt, block.timestamp, "registeredAt");
        assertEq(token.balanceOf(alice), aliceBefore - ALICE_STAKE, "alice paid");
        assertEq(token.balanceOf(address(registry)), ALICE_STAKE, "registry holds stake");
        assertEq(registry.totalActiveStake(), ALICE_STAKE, "totalActiveStake");
        assertEq(registry.totalUnbondingStake(), 0, "totalUnbondingStake");
        assertTrue(registry.isEligible(alice), "eligible");
    }

    function test_RegisterAndStake_AcceptsExactlyMinStake() public {
        _registerAndStake(alice, MIN_STAKE);
        assertEq(registry.getProvider(alice).activeStake, MIN_STAKE, "staked the minimum");
        assertTrue(registry.isEligible(alice), "eligible at exactly minStake");
    }

    function test_RegisterAndStake_RevertsBelowMinStake() public {
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryStakeBelowMinimum.selector, MIN_STAKE - 1, MIN_STAKE)
        );
        _registerAndStake(alice, MIN_STAKE - 1);
    }

    function test_RegisterAndStake_RevertsOnZeroAmountAsBelowMinimum() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryStakeBelowMinimum.selector, 0, MIN_STAKE));
        _registerAndStake(alice, 0);
    }

    function test_RegisterAndStake_RevertsWhenAlreadyRegistered() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryAlreadyRegistered.selector, alice));
        _registerAndStake(alice, ALICE_STAKE);
    }

    function test_RegisterAndStake_RevertsOnInvalidNameAndMovesNoTokens() public {
        uint256 aliceBefore = token.balanceOf(alice);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidName.selector, 0, MAX_NAME));
        vm.prank(alice);
        registry.registerAndStake("", "", ALICE_STAKE);
        assertEq(token.balanceOf(alice), aliceBefore, "no tokens pulled");
    }

    function test_RegisterAndStake_RevertsOnMetadataTooLong() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryMetadataTooLong.selector, 257, MAX_METADATA));
        vm.prank(alice);
        registry.registerAndStake("node", _repeat(257), ALICE_STAKE);
    }

    function test_RegisterAndStake_FollowsAGovernanceMinStakeChange() public {
        vm.prank(address(timelock));
        registry.setMinStake(500e18);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryStakeBelowMinimum.selector, 499e18, 500e18));
        _registerAndStake(alice, 499e18);
        _registerAndStake(alice, 500e18);
        assertTrue(registry.isEligible(alice), "eligible at the new minimum");
    }

    // ---------------------------------------------------------------- updateMetadata

    function test_UpdateMetadata_EmitsAndLeavesStateUnchanged() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 registeredAt = registry.getProvider(alice).registeredAt;
        vm.warp(block.timestamp + 50);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderUpdated(alice, "renamed", "https://alice.example/meta.json");
        vm.prank(alice);
        registry.updateMetadata("renamed", "https://alice.example/meta.json");
        _assertProvider(alice, ALICE_STAKE, 0, 0, 0, true, false);
        assertEq(registry.getProvider(alice).registeredAt, registeredAt, "registeredAt unchanged");
    }

    function test_UpdateMetadata_AcceptsMaximumLengths() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderUpdated(alice, _repeat(MAX_NAME), _repeat(MAX_METADATA));
        vm.prank(alice);
        registry.updateMetadata(_repeat(MAX_NAME), _repeat(MAX_METADATA));
    }

    function test_UpdateMetadata_RevertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotRegistered.selector, stranger));
        vm.prank(stranger);
        registry.updateMetadata("x", "");
    }

    function test_UpdateMetadata_RevertsAfterDeregister() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(alice);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotRegistered.selector, alice));
        vm.prank(alice);
        registry.updateMetadata("x", "");
    }

    function test_UpdateMetadata_RevertsOnEmptyName() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidName.selector, 0, MAX_NAME));
        vm.prank(alice);
        registry.updateMetadata("", "");
    }

    function test_UpdateMetadata_RevertsOnNameOf65Bytes() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidName.selector, 65, MAX_NAME));
        vm.prank(alice);
        registry.updateMetadata(_repeat(65), "");
    }

    function test_UpdateMetadata_RevertsOnMetadataOf257Bytes() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryMetadataTooLong.selector, 257, MAX_METADATA));
        vm.prank(alice);
        registry.updateMetadata("alice", _repeat(257));
    }

    // ---------------------------------------------------------------- stake

    function test_Stake_TopsUpActiveStakeAndEmitsNewTotal() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint256 aliceBefore = token.balanceOf(alice);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Staked(alice, 50e18, ALICE_STAKE + 50e18);
        vm.prank(alice);
        registry.stake(50e18);
        _assertProvider(alice, ALICE_STAKE + 50e18, 0, 0, 0, true, false);
        assertEq(token.balanceOf(alice), aliceBefore - 50e18, "alice paid");
        assertEq(token.balanceOf(address(registry)), ALICE_STAKE + 50e18, "registry balance");
        assertEq(registry.totalActiveStake(), ALICE_STAKE + 50e18, "totalActiveStake");
    }

    function test_Stake_HasNoMinimumButBelowMinStakeIsNotEligible() public {
        vm.prank(alice);
        registry.register("alice", "");
        vm.prank(alice);
        registry.stake(1);
        assertEq(registry.getProvider(alice).activeStake, 1, "one wei staked");
        assertFalse(registry.isEligible(alice), "below minStake");
        vm.prank(alice);
        registry.stake(MIN_STAKE - 1);
        assertTrue(registry.isEligible(alice), "reaches minStake exactly");
    }

    function test_Stake_RevertsOnZeroAmount() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryZeroAmount.selector));
        vm.prank(alice);
        registry.stake(0);
    }

    function test_Stake_RevertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotRegistered.selector, alice));
        vm.prank(alice);
        registry.stake(ALICE_STAKE);
    }

    function test_Stake_TotalsSumOverProviders() public {
        _registerAndStake(alice, ALICE_STAKE);
        _registerAndStake(bob, 300e18);
        assertEq(registry.totalActiveStake(), ALICE_STAKE + 300e18, "sum of active stake");
        _assertConservation();
    }

    // ---------------------------------------------------------------- setEndpoint

    function test_SetEndpoint_StoresHashCountAndChainIdAndEmitsUrl() public {
        _registerAndStake(alice, ALICE_STAKE);
        string memory url = "https://eth.alice.example/rpc";
        vm.expectEmit(address(registry));
        emit IProviderRegistry.EndpointSet(alice, 1, url);
        _setEndpoint(alice, 1, url);
        assertEq(registry.endpointUrlHash(alice, 1), keccak256(bytes(url)), "url hash");
        assertEq(registry.getProvider(alice).endpointCount, 1, "count");
        uint256[] memory ids = registry.endpointChainIds(alice);
        assertEq(ids.length, 1, "one chain");
        assertEq(ids[0], 1, "chain id 1");
    }

    function test_SetEndpoint_AcceptsEachAllowedScheme() public {
        _registerAndStake(alice, ALICE_STAKE);
        string[4] memory urls = ["https://a.example", "http://a.example", "wss://a.example", "ws://a.example"];
        for (uint256 i = 0; i < urls.length; ++i) {
            vm.expectEmit(address(registry));
            emit IProviderRegistry.EndpointSet(alice, i + 1, urls[i]);
            _setEndpoint(alice, i + 1, urls[i]);
            assertEq(registry.endpointUrlHash(alice, i + 1), keccak256(bytes(urls[i])), urls[i]);
        }
        assertEq(registry.getProvider(alice).endpointCount, 4, "four endpoints");
    }

    function test_SetEndpoint_AcceptsUrlOfExactly256Bytes() public {
        _registerAndStake(alice, ALICE_STAKE);
        string memory url = _httpsUrl(MAX_URL);
        _setEndpoint(alice, 1, url);
        assertEq(registry.endpointUrlHash(alice, 1), keccak256(bytes(url)), "256-byte url stored");
    }

    function test_SetEndpoint_RevertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotRegistered.selector, stranger));
        _setEndpoint(stranger, 1, "https://x.example");
    }

    function test_SetEndpoint_RevertsOnChainIdZero() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidChainId.selector));
        _setEndpoint(alice, 0, "https://x.example");
    }

    function test_SetEndpoint_RevertsOnEmptyUrl() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidUrlLength.selector, 0, MAX_URL));
        _setEndpoint(alice, 1, "");
    }

    function test_SetEndpoint_RevertsOnUrlOf257Bytes() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInvalidUrlLength.selector, 257, MAX_URL));
        _setEndpoint(alice, 1, _httpsUrl(257));
    }

    function test_SetEndpoint_RevertsOnBareHttpsScheme() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUrlSchemeNotAllowed.selector));
        _setEndpoint(alice, 1, "https://");
    }

    function test_SetEndpoint_RevertsOnBareWsScheme() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUrlSchemeNotAllowed.selector));
        _setEndpoint(alice, 1, "ws://");
    }

    function test_SetEndpoint_RevertsOnFtpScheme() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUrlSchemeNotAllowed.selector));
        _setEndpoint(alice, 1, "ftp://files.example");
    }

    function test_SetEndpoint_RevertsOnUrlWithoutScheme() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUrlSchemeNotAllowed.selector));
        _setEndpoint(alice, 1, "eth.alice.example");
    }

    /// @notice Space, CR, LF, NUL, tab, the other control bytes and DEL, right after the scheme, in the
    /// middle and last: each refused with its position.
    function test_SetEndpoint_RevertsOnSpaceOrControlCharacterAnywhere() public {
        _registerAndStake(alice, ALICE_STAKE);
        bytes7 bad = hex"20_0d_0a_00_09_1f_7f";
        uint256[3] memory positions = [uint256(8), 12, 19];
        for (uint256 b = 0; b < bad.length; ++b) {
            for (uint256 k = 0; k < positions.length; ++k) {
                bytes memory url = bytes("https://node.example");
                url[positions[k]] = bad[b];
                vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUrlInvalidCharacter.selector, positions[k]));
                _setEndpoint(alice, 1, string(url));
            }
        }
        assertEq(registry.getProvider(alice).endpointCount, 0, "nothing stored");
    }

    function test_SetEndpoint_RevertsOnHeaderInjection() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUrlInvalidCharacter.selector, 8));
        _setEndpoint(alice, 1, "http://x\r\nHost: y");
    }

    /// @notice The bytes next to the refused ones ("!" 0x21, "~" 0x7e) and UTF-8 (0x80 and up) pass.
    function test_SetEndpoint_AcceptsPrintableAndUtf8Bytes() public {
        _registerAndStake(alice, ALICE_STAKE);
        string memory url = unicode"https://user:pw@bücher.example:8545/rpc/v1?key=a!b~c&d=%20#top";
        _setEndpoint(alice, 1, url);
        assertEq(registry.endpointUrlHash(alice, 1), keccak256(bytes(url)), "stored");
    }

    function test_SetEndpoint_ReplacingKeepsCountAndUpdatesHash() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 1, "https://old.example");
        vm.expectEmit(address(registry));
        emit IProviderRegistry.EndpointSet(alice, 1, "wss://new.example");
        _setEndpoint(alice, 1, "wss://new.example");
        assertEq(registry.getProvider(alice).endpointCount, 1, "count unchanged");
        assertEq(registry.endpointChainIds(alice).length, 1, "chain listed once");
        assertEq(registry.endpointUrlHash(alice, 1), keccak256("wss://new.example"), "hash replaced");
    }

    function test_SetEndpoint_Rejects17thChainButStillReplacesExisting() public {
        _registerAndStake(alice, ALICE_STAKE);
        for (uint256 chainId = 1; chainId <= MAX_ENDPOINTS; ++chainId) {
            _setEndpoint(alice, chainId, "https://node.example");
        }
        assertEq(registry.getProvider(alice).endpointCount, MAX_ENDPOINTS, "16 endpoints");
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryTooManyEndpoints.selector, MAX_ENDPOINTS));
        _setEndpoint(alice, 17, "https://node.example");

        _setEndpoint(alice, 16, "https://replaced.example");
        assertEq(registry.endpointUrlHash(alice, 16), keccak256("https://replaced.example"), "16th replaced");
        assertEq(registry.endpointChainIds(alice).length, MAX_ENDPOINTS, "still 16 chain ids");

        vm.prank(alice);
        registry.removeEndpoint(3);
        _setEndpoint(alice, 17, "https://node.example");
        assertEq(registry.getProvider(alice).endpointCount, MAX_ENDPOINTS, "17 fits after a removal");
    }

    // ---------------------------------------------------------------- removeEndpoint

    function test_RemoveEndpoint_ClearsHashCountAndChainIdAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 10, "https://a.example");
        vm.expectEmit(address(registry));
        emit IProviderRegistry.EndpointRemoved(alice, 10);
        vm.prank(alice);
        registry.removeEndpoint(10);
        assertEq(registry.getProvider(alice).endpointCount, 0, "count");
        assertEq(registry.endpointChainIds(alice).length, 0, "no chain ids");
        assertEq(registry.endpointUrlHash(alice, 10), bytes32(0), "hash cleared");
    }

    function test_RemoveEndpoint_MiddleOneKeepsTheOthers() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 1, "https://one.example");
        _setEndpoint(alice, 2, "https://two.example");
        _setEndpoint(alice, 3, "https://three.example");
        vm.prank(alice);
        registry.removeEndpoint(2);
        uint256[] memory ids = registry.endpointChainIds(alice);
        assertEq(ids.length, 2, "two chain ids left");
        assertTrue(_contains(ids, 1) && _contains(ids, 3), "chains 1 and 3 kept");
        assertFalse(_contains(ids, 2), "chain 2 gone");
        assertEq(registry.getProvider(alice).endpointCount, 2, "count");
        assertEq(registry.endpointUrlHash(alice, 1), keccak256("https://one.example"), "chain 1 hash kept");
        assertEq(registry.endpointUrlHash(alice, 3), keccak256("https://three.example"), "chain 3 hash kept");
        assertEq(registry.endpointUrlHash(alice, 2), bytes32(0), "chain 2 hash cleared");
    }

    function test_RemoveEndpoint_FirstAndLastKeepTheRest() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 1, "https://one.example");
        _setEndpoint(alice, 2, "https://two.example");
        _setEndpoint(alice, 3, "https://three.example");
        vm.prank(alice);
        registry.removeEndpoint(1);
        vm.prank(alice);
        registry.removeEndpoint(2);
        uint256[] memory ids = registry.endpointChainIds(alice);
        assertEq(ids.length, 1, "one chain id left");
        assertEq(ids[0], 3, "chain 3 kept");
        assertEq(registry.getProvider(alice).endpointCount, 1, "count");
    }

    function test_RemoveEndpoint_ThenSetAgainAddsIt() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 1, "https://one.example");
        vm.prank(alice);
        registry.removeEndpoint(1);
        _setEndpoint(alice, 1, "https://one-again.example");
        assertEq(registry.getProvider(alice).endpointCount, 1, "count");
        assertEq(registry.endpointChainIds(alice).length, 1, "listed once");
    }

    function test_RemoveEndpoint_RevertsWhenNotSet() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 1, "https://one.example");
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryEndpointNotSet.selector, alice, 5));
        vm.prank(alice);
        registry.removeEndpoint(5);
    }

    function test_RemoveEndpoint_RevertsTwiceForTheSameChain() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 1, "https://one.example");
        vm.prank(alice);
        registry.removeEndpoint(1);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryEndpointNotSet.selector, alice, 1));
        vm.prank(alice);
        registry.removeEndpoint(1);
    }

    function test_RemoveEndpoint_RevertsForUnregisteredCaller() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryEndpointNotSet.selector, stranger, 1));
        vm.prank(stranger);
        registry.removeEndpoint(1);
    }

    // ---------------------------------------------------------------- requestUnbond

    function test_RequestUnbond_QueuesEntryAtNowPlusPeriodAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 expectedRelease = uint64(block.timestamp) + UNBONDING_PERIOD;
        vm.expectEmit(address(registry));
        emit IProviderRegistry.UnbondRequested(alice, 400e18, expectedRelease, 600e18, 400e18);
        uint64 releaseAt = _unbond(alice, 400e18);
        assertEq(releaseAt, expectedRelease, "releaseAt = now + unbondingPeriod");
        _assertProvider(alice, 600e18, 400e18, 0, 0, true, false);
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        assertEq(entries.length, 1, "one entry");
        assertEq(entries[0].amount, 400e18, "entry amount");
        assertEq(entries[0].releaseAt, expectedRelease, "entry releaseAt");
        assertEq(registry.totalActiveStake(), 600e18, "totalActiveStake");
        assertEq(registry.totalUnbondingStake(), 400e18, "totalUnbondingStake");
        assertEq(token.balanceOf(address(registry)), ALICE_STAKE, "tokens stay in the registry");
        assertTrue(registry.isEligible(alice), "600 still above minStake");
    }

    function test_RequestUnbond_AllActiveStakeLeavesProviderIneligible() public {
        _registerAndStake(alice, ALICE_STAKE);
        _unbond(alice, ALICE_STAKE);
        _assertProvider(alice, 0, ALICE_STAKE, 0, 0, true, false);
        assertFalse(registry.isEligible(alice), "no active stake");
    }

    function test_RequestUnbond_BelowMinStakeLeavesProviderIneligible() public {
        _registerAndStake(alice, ALICE_STAKE);
        _unbond(alice, ALICE_STAKE - MIN_STAKE + 1);
        assertEq(registry.getProvider(alice).activeStake, MIN_STAKE - 1, "active just below the minimum");
        assertFalse(registry.isEligible(alice), "below minStake");
    }

    function test_RequestUnbond_UsesThePeriodAtRequestTime() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 first = _unbond(alice, 100e18);
        _setUnbondingPeriod(1_000);
        uint64 second = _unbond(alice, 100e18);
        assertEq(first, block.timestamp + UNBONDING_PERIOD, "first uses old period");
        assertEq(second, block.timestamp + 1_000, "second uses new period");
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        assertEq(entries[0].releaseAt, first, "old entry unchanged");
        assertEq(entries[1].releaseAt, second, "new entry");
    }

    function test_RequestUnbond_RevertsOnZeroAmount() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryZeroAmount.selector));
        _unbond(alice, 0);
    }

    function test_RequestUnbond_RevertsAboveActiveStake() public {
        _registerAndStake(alice, ALICE_STAKE);
        _unbond(alice, 300e18);
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryInsufficientStake.selector, 700e18 + 1, 700e18)
        );
        _unbond(alice, 700e18 + 1);
    }

    function test_RequestUnbond_RevertsForAccountWithoutStake() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryInsufficientStake.selector, 1, 0));
        _unbond(stranger, 1);
    }

    function test_RequestUnbond_Rejects17thPendingEntryUntilAWithdraw() public {
        _registerAndStake(alice, ALICE_STAKE);
        for (uint256 i = 0; i < MAX_ENTRIES; ++i) {
            _unbond(alice, 1e18);
        }
        assertEq(registry.getUnbondingEntries(alice).length, MAX_ENTRIES, "16 entries");
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryTooManyUnbondingEntries.selector, MAX_ENTRIES)
        );
        _unbond(alice, 1e18);

        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.prank(alice);
        registry.withdraw();
        _unbond(alice, 1e18);
        assertEq(registry.getUnbondingEntries(alice).length, 1, "room again after withdrawing");
    }

    // ---------------------------------------------------------------- withdraw

    function test_Withdraw_RevertsWithZeroWhenThereAreNoEntries() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNothingToWithdraw.selector, uint64(0)));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_Withdraw_RevertsWithNextReleaseAtBeforeRelease() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 releaseAt = _unbond(alice, 100e18);
        vm.warp(releaseAt - 1);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNothingToWithdraw.selector, releaseAt));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_Withdraw_ReportsTheEarliestReleaseEvenIfNotFirst() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setUnbondingPeriod(1_000);
        uint64 late = _unbond(alice, 100e18);
        _setUnbondingPeriod(200);
        uint64 early = _unbond(alice, 100e18);
        assertLe(early, late - 1, "second entry releases first");
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNothingToWithdraw.selector, early));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_Withdraw_PaysAtExactlyReleaseAtAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 releaseAt = _unbond(alice, 400e18);
        vm.warp(releaseAt);
        uint256 aliceBefore = token.balanceOf(alice);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Withdrawn(alice, 400e18, 0);
        vm.prank(alice);
        uint256 paid = registry.withdraw();
        assertEq(paid, 400e18, "paid");
        assertEq(token.balanceOf(alice), aliceBefore + 400e18, "alice received");
        assertEq(token.balanceOf(address(registry)), 600e18, "registry balance");
        _assertProvider(alice, 600e18, 0, 0, 0, true, false);
        assertEq(registry.getUnbondingEntries(alice).length, 0, "entry removed");
        assertEq(registry.totalUnbondingStake(), 0, "totalUnbondingStake");
        assertEq(registry.totalActiveStake(), 600e18, "totalActiveStake");
    }

    function test_Withdraw_PaysReleasedAndKeepsUnreleasedInOrder() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint256 t0 = block.timestamp;
        _setUnbondingPeriod(1_000);
        _unbond(alice, 10e18); // releases t0 + 1000
        _setUnbondingPeriod(100);
        _unbond(alice, 20e18); // releases t0 + 100
        _setUnbondingPeriod(2_000);
        _unbond(alice, 30e18); // releases t0 + 2000
        _setUnbondingPeriod(150);
        _unbond(alice, 40e18); // releases t0 + 150
        _setUnbondingPeriod(1_500);
        _unbond(alice, 50e18); // releases t0 + 1500

        vm.warp(t0 + 150);
        uint256 aliceBefore = token.balanceOf(alice);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Withdrawn(alice, 60e18, 90e18);
        vm.prank(alice);
        uint256 paid = registry.withdraw();
        assertEq(paid, 60e18, "entries 2 and 4 paid");
        assertEq(token.balanceOf(alice), aliceBefore + 60e18, "alice received");

        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        assertEq(entries.length, 3, "three kept");
        assertEq(entries[0].amount, 10e18, "first kept");
        assertEq(entries[0].releaseAt, t0 + 1_000, "first releaseAt");
        assertEq(entries[1].amount, 30e18, "second kept");
        assertEq(entries[1].releaseAt, t0 + 2_000, "second releaseAt");
        assertEq(entries[2].amount, 50e18, "third kept");
        assertEq(entries[2].releaseAt, t0 + 1_500, "third releaseAt");
        _assertProvider(alice, ALICE_STAKE - 150e18, 90e18, 0, 0, true, false);
        _assertConservation();

        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryNothingToWithdraw.selector, uint64(t0 + 1_000))
        );
        vm.prank(alice);
        registry.withdraw();
    }

    function test_Withdraw_BlockedWhileACaseIsOpenAndWorksAfterItCloses() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 releaseAt = _unbond(alice, 400e18);
        vm.warp(releaseAt - 10);
        uint256 caseId = _openCase(alice, 1e18); // expires after releaseAt
        vm.warp(releaseAt);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryWithdrawalBlockedByOpenCases.selector, 1));
        vm.prank(alice);
        registry.withdraw();

        vm.prank(address(timelock));
        manager.rejectCase(caseId);
        assertEq(registry.openCases(alice), 0, "case closed");
        vm.prank(alice);
        assertEq(registry.withdraw(), 400e18, "withdrawn after the case closed");
    }

    function test_Withdraw_BlockedMessageCarriesTheNumberOfOpenCases() public {
        _registerAndStake(alice, ALICE_STAKE);
        _unbond(alice, 400e18);
        vm.prank(address(manager));
        registry.caseOpened(alice);
        vm.prank(address(manager));
        registry.caseOpened(alice);
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryWithdrawalBlockedByOpenCases.selector, 2));
        vm.prank(alice);
        registry.withdraw();
        vm.prank(address(manager));
        registry.caseClosed(alice);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryWithdrawalBlockedByOpenCases.selector, 1));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_Withdraw_WorksAfterDeregister() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(alice);
        registry.deregister();
        vm.warp(block.timestamp + UNBONDING_PERIOD);
        uint256 aliceBefore = token.balanceOf(alice);
        vm.prank(alice);
        assertEq(registry.withdraw(), ALICE_STAKE, "all stake withdrawn");
        assertEq(token.balanceOf(alice), aliceBefore + ALICE_STAKE, "alice received");
        _assertProvider(alice, 0, 0, 0, 0, false, false);
        assertEq(token.balanceOf(address(registry)), 0, "registry empty");
    }

    // ---------------------------------------------------------------- deregister

    function test_Deregister_RemovesEndpointsMovesActiveStakeAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 earlier = _unbond(alice, 100e18);
        _setEndpoint(alice, 1, "https://one.example");
        _setEndpoint(alice, 10, "https://ten.example");
        _setEndpoint(alice, 137, "https://polygon.example");
        vm.warp(block.timestamp + 7);
        uint64 releaseAt = uint64(block.timestamp) + UNBONDING_PERIOD;

        vm.expectEmit(address(registry));
        emit IProviderRegistry.EndpointRemoved(alice, 137);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.EndpointRemoved(alice, 10);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.EndpointRemoved(alice, 1);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderDeregistered(alice, 900e18, releaseAt, ALICE_STAKE);
        vm.prank(alice);
        registry.deregister();

        _assertProvider(alice, 0, ALICE_STAKE, 0, 0, false, false);
        assertEq(registry.endpointChainIds(alice).length, 0, "no chain ids");
        assertEq(registry.endpointUrlHash(alice, 1), bytes32(0), "hash 1 cleared");
        assertEq(registry.endpointUrlHash(alice, 10), bytes32(0), "hash 10 cleared");
        assertEq(registry.endpointUrlHash(alice, 137), bytes32(0), "hash 137 cleared");
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        assertEq(entries.length, 2, "earlier entry plus the moved stake");
        assertEq(entries[0].amount, 100e18, "earlier amount");
        assertEq(entries[0].releaseAt, earlier, "earlier releaseAt");
        assertEq(entries[1].amount, 900e18, "moved amount");
        assertEq(entries[1].releaseAt, releaseAt, "moved releaseAt");
        assertEq(registry.totalActiveStake(), 0, "totalActiveStake");
        assertEq(registry.totalUnbondingStake(), ALICE_STAKE, "totalUnbondingStake");
        assertEq(token.balanceOf(address(registry)), ALICE_STAKE, "tokens stay until withdrawn");
        assertFalse(registry.isEligible(alice), "deregistered is not eligible");
    }

    function test_Deregister_WithoutActiveStakeQueuesNothing() public {
        vm.prank(alice);
        registry.register("alice", "");
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderDeregistered(alice, 0, 0, 0);
        vm.prank(alice);
        registry.deregister();
        _assertProvider(alice, 0, 0, 0, 0, false, false);
        assertEq(registry.getUnbondingEntries(alice).length, 0, "no entry queued");
    }

    function test_Deregister_RevertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotRegistered.selector, stranger));
        vm.prank(stranger);
        registry.deregister();
    }

    function test_Deregister_SecondCallReverts() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(alice);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotRegistered.selector, alice));
        vm.prank(alice);
        registry.deregister();
    }

    function test_Deregister_LeavesOtherProvidersUntouched() public {
        _registerAndStake(alice, ALICE_STAKE);
        _registerAndStake(bob, 500e18);
        _setEndpoint(bob, 1, "https://bob.example");
        vm.prank(alice);
        registry.deregister();
        _assertProvider(bob, 500e18, 0, 1, 0, true, false);
        assertTrue(registry.isEligible(bob), "bob still eligible");
        assertEq(registry.totalActiveStake(), 500e18, "only bob active");
    }

    // ---------------------------------------------------------------- slash

    function test_Slash_RevertsForStrangerAndGovernance() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotSlashingManager.selector, stranger));
        vm.prank(stranger);
        registry.slash(alice, 1e18, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryNotSlashingManager.selector, address(timelock))
        );
        vm.prank(address(timelock));
        registry.slash(alice, 1e18, 1);
    }

    function test_Slash_TakesActiveStakeFirstAndSendsItToTheManager() public {
        _registerAndStake(alice, ALICE_STAKE);
        _unbond(alice, 200e18);
        uint256 managerBefore = token.balanceOf(address(manager));
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Slashed(alice, 7, 300e18, 300e18, 500e18, 200e18);
        vm.prank(address(manager));
        uint256 slashed = registry.slash(alice, 300e18, 7);
        assertEq(slashed, 300e18, "slashed");
        _assertProvider(alice, 500e18, 200e18, 0, 0, true, false);
        assertEq(registry.getUnbondingEntries(alice)[0].amount, 200e18, "unbonding entry untouched");
        assertEq(token.balanceOf(address(manager)), managerBefore + 300e18, "manager received");
        assertEq(registry.totalActiveStake(), 500e18, "totalActiveStake");
        assertEq(registry.totalUnbondingStake(), 200e18, "totalUnbondingStake");
        _assertConservation();
    }

    function test_Slash_ThenTakesTheNewestUnbondingEntries() public {
        _registerAndStake(alice, ALICE_STAKE);
        uint64 oldest = _unbond(alice, 100e18);
        vm.warp(block.timestamp + 1);
        uint64 middle = _unbond(alice, 100e18);
        vm.warp(block.timestamp + 1);
        _unbond(alice, 200e18);
        // active 600, entries [100, 100, 200]; slash 850 = 600 active + 200 newest + 50 of the middle.
        uint256 managerBefore = token.balanceOf(address(manager));
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Slashed(alice, 3, 850e18, 600e18, 0, 150e18);
        vm.prank(address(manager));
        uint256 slashed = registry.slash(alice, 850e18, 3);
        assertEq(slashed, 850e18, "slashed");

        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        assertEq(entries.length, 2, "newest entry removed");
        assertEq(entries[0].amount, 100e18, "oldest untouched");
        assertEq(entries[0].releaseAt, oldest, "oldest releaseAt");
        assertEq(entries[1].amount, 50e18, "middle partly slashed");
        assertEq(entries[1].releaseAt, middle, "middle keeps its releaseAt");
        _assertProvider(alice, 0, 150e18, 0, 0, true, false);
        assertEq(token.balanceOf(address(manager)), managerBefore + 850e18, "manager received");
        _assertConservation();
    }

    function test_Slash_ExactlyAnEntryPopsIt() public {
        _registerAndStake(alice, ALICE_STAKE);
        _unbond(alice, 100e18);
        _unbond(alice, 200e18);
        vm.prank(address(manager));
        registry.slash(alice, 900e18, 1);
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        assertEq(entries.length, 1, "newest popped");
        assertEq(entries[0].amount, 100e18, "oldest whole");
    }

    function test_Slash_NeverTakesMoreThanThereIs() public {
        _registerAndStake(alice, ALICE_STAKE);
        _registerAndStake(bob, 500e18);
        _unbond(alice, 300e18);
        uint256 managerBefore = token.balanceOf(address(manager));
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Slashed(alice, 9, ALICE_STAKE, 700e18, 0, 0);
        vm.prank(address(manager));
        uint256 slashed = registry.slash(alice, 1_000_000e18, 9);
        assertEq(slashed, ALICE_STAKE, "only what alice had");
        _assertProvider(alice, 0, 0, 0, 0, true, false);
        assertEq(registry.getUnbondingEntries(alice).length, 0, "entries gone");
        assertEq(token.balanceOf(address(manager)), managerBefore + ALICE_STAKE, "manager received");
        assertEq(token.balanceOf(address(registry)), 500e18, "bob's stake untouched");
        assertEq(registry.getProvider(bob).activeStake, 500e18, "bob untouched");
        _assertConservation();
    }

    function test_Slash_ProviderWithoutStakeReturnsZeroAndMovesNothing() public {
        _registerAndStake(bob, 500e18);
        uint256 managerBefore = token.balanceOf(address(manager));
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Slashed(stranger, 4, 0, 0, 0, 0);
        vm.prank(address(manager));
        uint256 slashed = registry.slash(stranger, 100e18, 4);
        assertEq(slashed, 0, "nothing slashed");
        assertEq(token.balanceOf(address(manager)), managerBefore, "manager balance unchanged");
        assertEq(token.balanceOf(address(registry)), 500e18, "registry balance unchanged");
        _assertConservation();
    }

    function test_Slash_ZeroAmountTakesNothing() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(address(manager));
        assertEq(registry.slash(alice, 0, 1), 0, "zero slashed");
        _assertProvider(alice, ALICE_STAKE, 0, 0, 0, true, false);
    }

    function test_Slash_ReachesStakeOfADeregisteredProvider() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(alice);
        registry.deregister();
        vm.prank(address(manager));
        assertEq(registry.slash(alice, 250e18, 2), 250e18, "unbonding stake slashed");
        _assertProvider(alice, 0, 750e18, 0, 0, false, false);
        assertEq(registry.getUnbondingEntries(alice)[0].amount, 750e18, "entry reduced");
        _assertConservation();
    }

    function test_Slash_CanDropProviderBelowMinStake() public {
        _registerAndStake(alice, MIN_STAKE);
        vm.prank(address(manager));
        registry.slash(alice, 1, 1);
        assertFalse(registry.isEligible(alice), "one wei below minimum");
    }

    // ---------------------------------------------------------------- caseOpened / caseClosed

    function test_CaseOpened_CountsCaseReturnsAtStakeAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        _unbond(alice, 300e18);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.OpenCasesChanged(alice, 1);
        vm.prank(address(manager));
        uint256 atStake = registry.caseOpened(alice);
        assertEq(atStake, ALICE_STAKE, "active + unbonding");
        assertEq(registry.openCases(alice), 1, "one open case");
        assertEq(registry.getProvider(alice).openCases, 1, "provider field");

        vm.expectEmit(address(registry));
        emit IProviderRegistry.OpenCasesChanged(alice, 2);
        vm.prank(address(manager));
        registry.caseOpened(alice);
        assertEq(registry.openCases(alice), 2, "two open cases");
    }

    function test_CaseOpened_ReturnsZeroForProviderWithoutStake() public {
        vm.prank(address(manager));
        assertEq(registry.caseOpened(stranger), 0, "nothing at stake");
        assertEq(registry.openCases(stranger), 1, "still counted");
    }

    function test_CaseOpened_ThroughTheManagerCountsTheCase() public {
        _registerAndStake(alice, ALICE_STAKE);
        _openCase(alice, 1e18);
        assertEq(registry.openCases(alice), 1, "opened through SlashingManager.openCase");
    }

    function test_CaseOpened_RevertsForNonManager() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotSlashingManager.selector, stranger));
        vm.prank(stranger);
        registry.caseOpened(alice);
    }

    function test_CaseClosed_DecrementsAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.startPrank(address(manager));
        registry.caseOpened(alice);
        registry.caseOpened(alice);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.OpenCasesChanged(alice, 1);
        registry.caseClosed(alice);
        vm.stopPrank();
        assertEq(registry.openCases(alice), 1, "one left");
        assertEq(registry.getProvider(alice).openCases, 1, "provider field");
    }

    function test_CaseClosed_RevertsWithNoOpenCase() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNoOpenCase.selector, alice));
        vm.prank(address(manager));
        registry.caseClosed(alice);
    }

    function test_CaseClosed_RevertsForNonManager() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(address(manager));
        registry.caseOpened(alice);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotSlashingManager.selector, alice));
        vm.prank(alice);
        registry.caseClosed(alice);
        assertEq(registry.openCases(alice), 1, "case still open");
    }

    // ---------------------------------------------------------------- bindSlashingManager

    function test_BindSlashingManager_BoundOnceAtDeploymentInFixture() public {
        assertEq(registry.slashingManager(), address(manager), "bound");
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryBindingClosed.selector));
        registry.bindSlashingManager(stranger);
        assertEq(registry.slashingManager(), address(manager), "unchanged");
    }

    function test_BindSlashingManager_DeployerBindsOnceAndEmits() public {
        ProviderRegistry fresh = new ProviderRegistry(token, address(timelock), MIN_STAKE, UNBONDING_PERIOD);
        vm.expectEmit(address(fresh));
        emit IProviderRegistry.SlashingManagerBound(address(manager));
        fresh.bindSlashingManager(address(manager));
        assertEq(fresh.slashingManager(), address(manager), "bound");

        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryBindingClosed.selector));
        fresh.bindSlashingManager(stranger);
    }

    function test_BindSlashingManager_RevertsForNonDeployer() public {
        ProviderRegistry fresh = new ProviderRegistry(token, address(timelock), MIN_STAKE, UNBONDING_PERIOD);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryBindingClosed.selector));
        vm.prank(stranger);
        fresh.bindSlashingManager(address(manager));
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryBindingClosed.selector));
        vm.prank(address(timelock));
        fresh.bindSlashingManager(address(manager));
        assertEq(fresh.slashingManager(), address(0), "still unbound");
    }

    function test_BindSlashingManager_RevertsOnZeroAddress() public {
        ProviderRegistry fresh = new ProviderRegistry(token, address(timelock), MIN_STAKE, UNBONDING_PERIOD);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryZeroAddress.selector));
        fresh.bindSlashingManager(address(0));
    }

    // ---------------------------------------------------------------- jail / unjail

    function test_Jail_MakesIneligibleKeepsStakeAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        _setEndpoint(alice, 1, "https://one.example");
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderJailed(alice);
        vm.prank(address(timelock));
        registry.jail(alice);
        _assertProvider(alice, ALICE_STAKE, 0, 1, 0, true, true);
        assertFalse(registry.isEligible(alice), "jailed is not eligible");
    }

    function test_Unjail_RestoresEligibilityAndEmits() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(address(timelock));
        registry.jail(alice);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderUnjailed(alice);
        vm.prank(address(timelock));
        registry.unjail(alice);
        _assertProvider(alice, ALICE_STAKE, 0, 0, 0, true, false);
        assertTrue(registry.isEligible(alice), "eligible again");
    }

    /// @notice Two passed "uphold and jail" proposals both jail: the second must not revert (its slash
    /// would go with it), and one unjail still frees the provider.
    function test_Jail_WhenAlreadyJailedSucceedsChangingNothingAndEmittingNothing() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(address(timelock));
        registry.jail(alice);
        vm.recordLogs();
        vm.prank(address(timelock));
        registry.jail(alice);
        assertEq(vm.getRecordedLogs().length, 0, "no event");
        _assertProvider(alice, ALICE_STAKE, 0, 0, 0, true, true);
        vm.prank(address(timelock));
        registry.unjail(alice);
        assertTrue(registry.isEligible(alice), "one unjail frees");
    }

    function test_Unjail_WhenNotJailedSucceedsChangingNothingAndEmittingNothing() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.recordLogs();
        vm.startPrank(address(timelock));
        registry.unjail(alice);
        registry.unjail(stranger); // never registered either
        vm.stopPrank();
        assertEq(vm.getRecordedLogs().length, 0, "no event");
        _assertProvider(alice, ALICE_STAKE, 0, 0, 0, true, false);
        _assertProvider(stranger, 0, 0, 0, 0, false, false);
        assertTrue(registry.isEligible(alice), "still eligible");
    }

    function test_Jail_RevertsForNonGovernance() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotGovernance.selector, stranger));
        vm.prank(stranger);
        registry.jail(alice);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotGovernance.selector, address(manager)));
        vm.prank(address(manager));
        registry.jail(alice);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotGovernance.selector, address(governor)));
        vm.prank(address(governor));
        registry.jail(alice);
        assertFalse(registry.getProvider(alice).jailed, "not jailed");
    }

    function test_Unjail_RevertsForNonGovernance() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.prank(address(timelock));
        registry.jail(alice);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotGovernance.selector, alice));
        vm.prank(alice);
        registry.unjail(alice);
        assertTrue(registry.getProvider(alice).jailed, "still jailed");
    }

    function test_Jail_BeforeRegistrationCarriesIntoRegistration() public {
        vm.prank(address(timelock));
        registry.jail(carol);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.ProviderRegistered(carol, "node", "ipfs://meta", true); // the indexer has no row to jail before this
        _registerAndStake(carol, ALICE_STAKE);
        _assertProvider(carol, ALICE_STAKE, 0, 0, 0, true, true);
        assertFalse(registry.isEligible(carol), "registered jailed");
    }

    // ---------------------------------------------------------------- setMinStake

    function test_SetMinStake_UpdatesValueEligibilityAndEmitsOldAndNew() public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.expectEmit(address(registry));
        emit IProviderRegistry.MinStakeChanged(MIN_STAKE, ALICE_STAKE + 1);
        vm.prank(address(timelock));
        registry.setMinStake(ALICE_STAKE + 1);
        assertEq(registry.minStake(), ALICE_STAKE + 1, "minStake");
        assertFalse(registry.isEligible(alice), "now below the minimum");
        vm.prank(address(timelock));
        registry.setMinStake(ALICE_STAKE);
        assertTrue(registry.isEligible(alice), "exactly the minimum again");
    }

    function test_SetMinStake_AcceptsBothBounds() public {
        vm.startPrank(address(timelock));
        registry.setMinStake(MIN_MIN_STAKE);
        assertEq(registry.minStake(), MIN_MIN_STAKE, "lower bound");
        registry.setMinStake(MAX_MIN_STAKE);
        assertEq(registry.minStake(), MAX_MIN_STAKE, "upper bound");
        vm.stopPrank();
    }

    function test_SetMinStake_RevertsBelowLowerBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MIN_MIN_STAKE - 1, MIN_MIN_STAKE, MAX_MIN_STAKE
            )
        );
        vm.prank(address(timelock));
        registry.setMinStake(MIN_MIN_STAKE - 1);
    }

    function test_SetMinStake_RevertsAboveUpperBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MAX_MIN_STAKE + 1, MIN_MIN_STAKE, MAX_MIN_STAKE
            )
        );
        vm.prank(address(timelock));
        registry.setMinStake(MAX_MIN_STAKE + 1);
    }

    function test_SetMinStake_RevertsForNonGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotGovernance.selector, alice));
        vm.prank(alice);
        registry.setMinStake(5e18);
        assertEq(registry.minStake(), MIN_STAKE, "unchanged");
    }

    // ---------------------------------------------------------------- setUnbondingPeriod

    function test_SetUnbondingPeriod_UpdatesValueAndEmitsOldAndNew() public {
        vm.expectEmit(address(registry));
        emit IProviderRegistry.UnbondingPeriodChanged(UNBONDING_PERIOD, 7 days);
        _setUnbondingPeriod(7 days);
        assertEq(registry.unbondingPeriod(), 7 days, "unbondingPeriod");
    }

    function test_SetUnbondingPeriod_AcceptsJustAboveCaseTtlAndUpperBound() public {
        _setUnbondingPeriod(CASE_TTL + 1);
        assertEq(registry.unbondingPeriod(), CASE_TTL + 1, "caseTtl + 1");
        _setUnbondingPeriod(MAX_PERIOD);
        assertEq(registry.unbondingPeriod(), MAX_PERIOD, "upper bound");
    }

    function test_SetUnbondingPeriod_RevertsAtCaseTtl() public {
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryUnbondingPeriodTooShort.selector, CASE_TTL, CASE_TTL)
        );
        _setUnbondingPeriod(CASE_TTL);
    }

    function test_SetUnbondingPeriod_RevertsAtLowerBoundBelowCaseTtl() public {
        vm.expectRevert(
            abi.encodeWithSelector(IProviderRegistry.RegistryUnbondingPeriodTooShort.selector, MIN_PERIOD, CASE_TTL)
        );
        _setUnbondingPeriod(MIN_PERIOD);
        assertEq(registry.unbondingPeriod(), UNBONDING_PERIOD, "unchanged");
    }

    function test_SetUnbondingPeriod_RevertsBelowLowerBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MIN_PERIOD - 1, MIN_PERIOD, MAX_PERIOD
            )
        );
        _setUnbondingPeriod(MIN_PERIOD - 1);
    }

    function test_SetUnbondingPeriod_RevertsAboveUpperBound() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IProviderRegistry.RegistryParameterOutOfBounds.selector, MAX_PERIOD + 1, MIN_PERIOD, MAX_PERIOD
            )
        );
        _setUnbondingPeriod(MAX_PERIOD + 1);
    }

    function test_SetUnbondingPeriod_RevertsForNonGovernance() public {
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNotGovernance.selector, address(manager)));
        vm.prank(address(manager));
        registry.setUnbondingPeriod(7 days);
    }

    function test_SetUnbondingPeriod_WithoutBoundManagerOnlyChecksBounds() public {
        ProviderRegistry fresh = new ProviderRegistry(token, address(timelock), MIN_STAKE, 3_600);
        vm.expectEmit(address(fresh));
        emit IProviderRegistry.UnbondingPeriodChanged(3_600, MIN_PERIOD);
        vm.prank(address(timelock));
        fresh.setUnbondingPeriod(MIN_PERIOD);
        assertEq(fresh.unbondingPeriod(), MIN_PERIOD, "lower bound accepted with no manager");
    }

    function test_SetUnbondingPeriod_FollowsTheManagersCurrentCaseTtl() public {
        _setUnbondingPeriod(1_000);
        vm.prank(address(timelock));
        manager.setCaseTtl(500);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUnbondingPeriodTooShort.selector, 500, 500));
        _setUnbondingPeriod(500);
        _setUnbondingPeriod(501);
        assertEq(registry.unbondingPeriod(), 501, "just above the new caseTtl");
    }

    // ---------------------------------------------------------------- isEligible

    function test_IsEligible_RegisteredJailedBelowMinAndDeregistered() public {
        assertFalse(registry.isEligible(alice), "never registered");
        vm.prank(alice);
        registry.register("alice", "");
        assertFalse(registry.isEligible(alice), "registered without stake");
        vm.prank(alice);
        registry.stake(MIN_STAKE - 1);
        assertFalse(registry.isEligible(alice), "below minStake");
        vm.prank(alice);
        registry.stake(1);
        assertTrue(registry.isEligible(alice), "registered at minStake");
        vm.prank(address(timelock));
        registry.jail(alice);
        assertFalse(registry.isEligible(alice), "jailed");
        vm.prank(address(timelock));
        registry.unjail(alice);
        assertTrue(registry.isEligible(alice), "unjailed");
        vm.prank(alice);
        registry.deregister();
        assertFalse(registry.isEligible(alice), "deregistered");
    }

    // ---------------------------------------------------------------- fuzz

    /// @notice Three unbond requests at random gaps (with the period changed between them, so release
    /// times are not sorted), then a withdraw at a random time: it pays exactly the released entries,
    /// keeps the rest in order, or reverts with the earliest release time.
    function testFuzz_UnbondThenWithdrawPaysExactlyReleasedEntries(
        uint256 stakeSeed,
        uint256[3] memory amountSeeds,
        uint256[3] memory periodSeeds,
        uint256[3] memory gapSeeds,
        uint256 waitSeed
    ) public {
        uint256 staked = bound(stakeSeed, 3 * MIN_STAKE, 10_000e18);
        _registerAndStake(alice, staked);
        uint256[3] memory amounts;
        uint64[3] memory releases;
        uint256 remaining = staked;
        for (uint256 i = 0; i < 3; ++i) {
            amounts[i] = bound(amountSeeds[i], 1, remaining - (2 - i));
            remaining -= amounts[i];
            _setUnbondingPeriod(uint64(bound(periodSeeds[i], CASE_TTL + 1, 30 days)));
            vm.warp(block.timestamp + bound(gapSeeds[i], 0, 10 days));
            releases[i] = _unbond(alice, amounts[i]);
            assertEq(releases[i], block.timestamp + registry.unbondingPeriod(), "releaseAt");
        }
        vm.warp(block.timestamp + bound(waitSeed, 0, 40 days));

        uint256 expectedPaid = 0;
        uint256 expectedKept = 0;
        uint64 nextRelease = 0;
        for (uint256 i = 0; i < 3; ++i) {
            if (releases[i] <= block.timestamp) {
                expectedPaid += amounts[i];
            } else {
                expectedKept += amounts[i];
                if (nextRelease == 0 || releases[i] < nextRelease) nextRelease = releases[i];
            }
        }

        uint256 aliceBefore = token.balanceOf(alice);
        if (expectedPaid == 0) {
            vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryNothingToWithdraw.selector, nextRelease));
            vm.prank(alice);
            registry.withdraw();
            assertEq(registry.getUnbondingEntries(alice).length, 3, "all entries kept");
            return;
        }
        vm.prank(alice);
        uint256 paid = registry.withdraw();
        assertEq(paid, expectedPaid, "paid exactly the released entries");
        assertEq(token.balanceOf(alice), aliceBefore + expectedPaid, "alice received");
        _assertProvider(alice, remaining, expectedKept, 0, 0, true, false);
        assertEq(registry.totalUnbondingStake(), expectedKept, "totalUnbondingStake");
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        uint256 k = 0;
        for (uint256 i = 0; i < 3; ++i) {
            if (releases[i] > block.timestamp) {
                assertEq(entries[k].amount, amounts[i], "kept amount in order");
                assertEq(entries[k].releaseAt, releases[i], "kept releaseAt in order");
                ++k;
            }
        }
        assertEq(entries.length, k, "only unreleased entries kept");
        _assertConservation();
    }

    /// @notice A slash of any amount across active stake and unbonding entries takes
    /// min(amount, what there is), active first, and keeps the registry balance equal to the totals.
    function testFuzz_SlashKeepsBalanceEqualToTotals(
        uint256 stakeSeed,
        uint256 unbond1Seed,
        uint256 unbond2Seed,
        uint256 slashSeed,
        uint256 caseId
    ) public {
        uint256 staked = bound(stakeSeed, MIN_STAKE, 10_000e18);
        _registerAndStake(alice, staked);
        _registerAndStake(bob, 777e18);
        uint256 unbond1 = bound(unbond1Seed, 0, staked);
        if (unbond1 != 0) _unbond(alice, unbond1);
        uint256 unbond2 = bound(unbond2Seed, 0, staked - unbond1);
        if (unbond2 != 0) _unbond(alice, unbond2);
        uint256 active = staked - unbond1 - unbond2;
        uint256 amount = bound(slashSeed, 0, 2 * staked);

        uint256 expected = amount < staked ? amount : staked;
        uint256 fromActive = amount < active ? amount : active;
        uint256 managerBefore = token.balanceOf(address(manager));
        vm.expectEmit(address(registry));
        emit IProviderRegistry.Slashed(
            alice, caseId, expected, fromActive, active - fromActive, staked - active - (expected - fromActive)
        );
        vm.prank(address(manager));
        uint256 slashed = registry.slash(alice, amount, caseId);

        assertEq(slashed, expected, "slashed min(amount, stake)");
        assertEq(token.balanceOf(address(manager)), managerBefore + expected, "manager received");
        IProviderRegistry.Provider memory p = registry.getProvider(alice);
        assertEq(p.activeStake, active - fromActive, "active first");
        assertEq(p.activeStake + p.unbondingStake, staked - expected, "alice keeps the rest");
        IProviderRegistry.UnbondingEntry[] memory entries = registry.getUnbondingEntries(alice);
        uint256 sum = 0;
        for (uint256 i = 0; i < entries.length; ++i) {
            assertTrue(entries[i].amount != 0, "no empty entries left");
            sum += entries[i].amount;
        }
        assertEq(sum, p.unbondingStake, "entries sum to unbondingStake");
        assertEq(registry.getProvider(bob).activeStake, 777e18, "bob untouched");
        assertEq(registry.totalActiveStake(), p.activeStake + 777e18, "totalActiveStake");
        assertEq(registry.totalUnbondingStake(), p.unbondingStake, "totalUnbondingStake");
        _assertConservation();
    }

    /// @notice Any byte at any position after the scheme: refused exactly when it is ≤ 0x20 or 0x7f.
    function testFuzz_SetEndpointRefusesExactlySpaceAndControlBytes(uint8 value, uint256 positionSeed) public {
        _registerAndStake(alice, ALICE_STAKE);
        bytes memory url = bytes(_httpsUrl(40));
        uint256 position = bound(positionSeed, 8, url.length - 1);
        url[position] = bytes1(value);
        if (value <= 0x20 || value == 0x7f) {
            vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.RegistryUrlInvalidCharacter.selector, position));
            _setEndpoint(alice, 1, string(url));
        } else {
            _setEndpoint(alice, 1, string(url));
            assertEq(registry.endpointUrlHash(alice, 1), keccak256(url), "stored");
        }
    }

    /// @notice registerAndStake succeeds exactly from minStake upward, with the amount in the error below.
    function testFuzz_RegisterAndStakeRequiresMinStake(uint256 amountSeed) public {
        uint256 amount = bound(amountSeed, 0, 2 * MIN_STAKE);
        if (amount < MIN_STAKE) {
            vm.expectRevert(
                abi.encodeWithSelector(IProviderRegistry.RegistryStakeBelowMinimum.selector, amount, MIN_STAKE)
            );
            _registerAndStake(alice, amount);
            assertFalse(registry.getProvider(alice).registered, "not registered");
        } else {
            _registerAndStake(alice, amount);
            assertEq(registry.getProvider(alice).activeStake, amount, "staked");
            assertTrue(registry.isEligible(alice), "eligible");
        }
    }

    /// @notice Any unbond of 1..active stake moves exactly that amount and releases after the period.
    function testFuzz_RequestUnbondMovesExactAmount(uint256 amountSeed, uint256 startSeed) public {
        _registerAndStake(alice, ALICE_STAKE);
        vm.warp(bound(startSeed, block.timestamp, block.timestamp + 365 days));
        uint256 amount = bound(amountSeed, 1, ALICE_STAKE);
        uint64 releaseAt = _unbond(alice, amount);
        assertEq(releaseAt, block.timestamp + UNBONDING_PERIOD, "releaseAt");
        _assertProvider(alice, ALICE_STAKE - amount, amount, 0, 0, true, false);
        assertEq(registry.totalActiveStake() + registry.totalUnbondingStake(), ALICE_STAKE, "total conserved");
        _assertConservation();
    }
}
