// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IProviderRegistry
/// @notice Where OpenDIN providers register, stake DIN, publish one JSON-RPC endpoint per chain id,
/// unbond and withdraw. Stake stays slashable until it is withdrawn; only the bound SlashingManager
/// slashes, and only the governance timelock changes parameters or jails.
/// @dev Every state change emits an event carrying the resulting values, so an indexer never reads
/// storage. Amounts are token wei (18 decimals), times are unix seconds.
interface IProviderRegistry {
    /// @notice A provider's stored state.
    /// @param activeStake stake that counts for eligibility and routing weight
    /// @param unbondingStake stake queued for withdrawal; still slashable
    /// @param registeredAt time of the latest registration (0 if never registered)
    /// @param endpointCount number of chains with an endpoint
    /// @param openCases slashing cases open against the provider; withdrawals wait for zero
    /// @param registered true between register and deregister
    /// @param jailed set and cleared by governance; a jailed provider is never eligible
    struct Provider {
        uint128 activeStake;
        uint128 unbondingStake;
        uint64 registeredAt;
        uint8 endpointCount;
        uint32 openCases;
        bool registered;
        bool jailed;
    }

    /// @notice One queued unbonding: `amount` becomes withdrawable at `releaseAt`.
    struct UnbondingEntry {
        uint128 amount;
        uint64 releaseAt;
    }

    // ---------------------------------------------------------------- events

    /// @notice `provider` registered (or registered again) with a display name and metadata URI;
    /// `jailed` if governance jailed it earlier, even before it ever registered (a jail carries over).
    event ProviderRegistered(address indexed provider, string name, string metadataURI, bool jailed);
    /// @notice `provider` changed its display name or metadata URI.
    event ProviderUpdated(address indexed provider, string name, string metadataURI);
    /// @notice `provider` left: its endpoints were removed and its active stake moved to unbonding.
    event ProviderDeregistered(
        address indexed provider, uint256 movedToUnbonding, uint64 releaseAt, uint256 unbondingStake
    );
    /// @notice `provider` added `amount` to its active stake, which is now `activeStake`.
    event Staked(address indexed provider, uint256 amount, uint256 activeStake);
    /// @notice `provider` queued `amount` for withdrawal at `releaseAt`.
    event UnbondRequested(
        address indexed provider, uint256 amount, uint64 releaseAt, uint256 activeStake, uint256 unbondingStake
    );
    /// @notice `provider` withdrew `amount` of released unbonding stake.
    event Withdrawn(address indexed provider, uint256 amount, uint256 unbondingStake);
    /// @notice `amount` was slashed from `provider` for case `caseId`: `fromActive` of it out of active
    /// stake, the rest out of unbonding stake.
    event Slashed(
        address indexed provider,
        uint256 indexed caseId,
        uint256 amount,
        uint256 fromActive,
        uint256 activeStake,
        uint256 unbondingStake
    );
    /// @notice `provider` serves chain `chainId` at `url` (replacing any earlier URL for that chain).
    event EndpointSet(address indexed provider, uint256 indexed chainId, string url);
    /// @notice `provider` no longer serves chain `chainId`.
    event EndpointRemoved(address indexed provider, uint256 indexed chainId);
    /// @notice Governance jailed `provider`: it is not eligible until unjailed.
    event ProviderJailed(address indexed provider);
    /// @notice Governance released `provider` from jail.
    event ProviderUnjailed(address indexed provider);
    /// @notice The number of open slashing cases against `provider` changed; withdrawals wait for zero.
    event OpenCasesChanged(address indexed provider, uint256 openCases);
    /// @notice The minimum active stake for eligibility changed.
    event MinStakeChanged(uint256 oldMinStake, uint256 newMinStake);
    /// @notice The time between an unbond request and its release changed (applies to new requests).
    event UnbondingPeriodChanged(uint64 oldPeriod, uint64 newPeriod);
    /// @notice The SlashingManager was bound, once, at deployment.
    event SlashingManagerBound(address indexed slashingManager);

    // ---------------------------------------------------------------- errors

    /// @notice The caller is not the governance timelock.
    error RegistryNotGovernance(address caller);
    /// @notice The caller is not the bound SlashingManager.
    error RegistryNotSlashingManager(address caller);
    /// @notice Only the deployer may bind the SlashingManager, and only once.
    error RegistryBindingClosed();
    /// @notice A zero address was given where a contract is required.
    error RegistryZeroAddress();
    /// @notice `provider` is registered already.
    error RegistryAlreadyRegistered(address provider);
    /// @notice `provider` is not registered.
    error RegistryNotRegistered(address provider);
    /// @notice The name must be 1 to `max` bytes long.
    error RegistryInvalidName(uint256 length, uint256 max);
    /// @notice The metadata URI is longer than `max` bytes.
    error RegistryMetadataTooLong(uint256 length, uint256 max);
    /// @notice An amount of zero was given.
    error RegistryZeroAmount();
    /// @notice A new provider's stake `have` is below the minimum `need`.
    error RegistryStakeBelowMinimum(uint256 have, uint256 need);
    /// @notice The amount is more than the `available` active stake.
    error RegistryInsufficientStake(uint256 requested, uint256 available);
    /// @notice Chain id zero is not a chain.
    error RegistryInvalidChainId();
    /// @notice The URL must be 1 to `max` bytes long.
    error RegistryInvalidUrlLength(uint256 length, uint256 max);
    /// @notice The URL must start with https://, http://, wss:// or ws://.
    error RegistryUrlSchemeNotAllowed();
    /// @notice The URL has a space or control character (a byte ≤ 0x20 or 0x7f) at byte `index` (from 0).
    error RegistryUrlInvalidCharacter(uint256 index);
    /// @notice `provider` has no endpoint for `chainId`.
    error RegistryEndpointNotSet(address provider, uint256 chainId);
    /// @notice A provider may serve at most `max` chains.
    error RegistryTooManyEndpoints(uint256 max);
    /// @notice A provider may have at most `max` pending unbonding entries; withdraw released ones first.
    error RegistryTooManyUnbondingEntries(uint256 max);
    /// @notice No unbonding entry is released yet; the next release is at `nextReleaseAt` (0 if none).
    error RegistryNothingToWithdraw(uint64 nextReleaseAt);
    /// @notice Withdrawal waits until the `openCases` slashing cases against the provider are closed.
    error RegistryWithdrawalBlockedByOpenCases(uint256 openCases);
    /// @notice A case was closed for a provider that has none open.
    error RegistryNoOpenCase(address provider);
    /// @notice A governance value is outside its hard-coded bounds.
    error RegistryParameterOutOfBounds(uint256 value, uint256 min, uint256 max);
    /// @notice The unbonding period must exceed the SlashingManager's case lifetime `caseTtl`.
    error RegistryUnbondingPeriodTooShort(uint64 period, uint64 caseTtl);

    // ---------------------------------------------------------------- operators

    /// @notice Registers the caller as a provider. Name and metadata URI are only emitted, not stored.
    /// @param name display name, 1 to 64 bytes
    /// @param metadataURI where operators describe themselves (may be empty), at most 256 bytes
    function register(string calldata name, string calldata metadataURI) external;

    /// @notice Changes the caller's display name and metadata URI.
    function updateMetadata(string calldata name, string calldata metadataURI) external;

    /// @notice Registers the caller and stakes `amount` (at least `minStake`) in one transaction
    /// (needs a token allowance).
    function registerAndStake(string calldata name, string calldata metadataURI, uint256 amount) external;

    /// @notice Adds `amount` tokens (pulled with transferFrom) to the caller's active stake.
    function stake(uint256 amount) external;

    /// @notice Sets the caller's endpoint for `chainId`, replacing an earlier one.
    /// @param url http(s):// or ws(s):// URL, at most 256 bytes, without spaces or control characters;
    /// routers treat it as untrusted
    function setEndpoint(uint256 chainId, string calldata url) external;

    /// @notice Removes the caller's endpoint for `chainId`.
    function removeEndpoint(uint256 chainId) external;

    /// @notice Moves `amount` of active stake into the unbonding queue, withdrawable after the
    /// unbonding period; it stays slashable until withdrawn.
    /// @return releaseAt when the amount can be withdrawn
    function requestUnbond(uint256 amount) external returns (uint64 releaseAt);

    /// @notice Pays out every released unbonding entry of the caller.
    /// @dev Reverts while a slashing case against the caller is open.
    /// @return amount the tokens paid out
    function withdraw() external returns (uint256 amount);

    /// @notice Leaves the network: removes every endpoint and moves all active stake to unbonding.
    /// A jailed provider stays jailed if it registers again.
    function deregister() external;

    // ---------------------------------------------------------------- slashing manager

    /// @notice Takes up to `amount` from `provider` (active stake first, then the newest unbonding
    /// entries) and sends it to the SlashingManager. Never takes more than the provider has.
    /// @return slashed the amount actually taken
    function slash(address provider, uint256 amount, uint256 caseId) external returns (uint256 slashed);

    /// @notice Records that a case against `provider` was opened; withdrawals wait until it closes.
    /// @return atStake the provider's active + unbonding stake, for the manager's check
    function caseOpened(address provider) external returns (uint256 atStake);

    /// @notice Records that a case against `provider` was closed.
    function caseClosed(address provider) external;

    /// @notice Binds the SlashingManager; callable once, by the deployer, at deployment.
    function bindSlashingManager(address slashingManager) external;

    // ---------------------------------------------------------------- governance

    /// @notice Jails `provider` (governance only): it stops being eligible. Jailing a jailed provider
    /// changes nothing and emits nothing, so a proposal that slashes and jails never fails on it.
    function jail(address provider) external;

    /// @notice Releases `provider` from jail (governance only). Unjailing a provider that is not
    /// jailed changes nothing and emits nothing.
    function unjail(address provider) external;

    /// @notice Sets the minimum active stake for eligibility (governance only, within bounds).
    function setMinStake(uint256 newMinStake) external;

    /// @notice Sets the unbonding period for new requests (governance only, within bounds and above
    /// the SlashingManager's case lifetime).
    function setUnbondingPeriod(uint64 newPeriod) external;

    // ---------------------------------------------------------------- views

    /// @notice The staking token.
    function token() external view returns (address);

    /// @notice The governance timelock: the only account that changes parameters or jails.
    function governance() external view returns (address);

    /// @notice The SlashingManager, the only account that slashes (zero until bound).
    function slashingManager() external view returns (address);

    /// @notice Minimum active stake for eligibility.
    function minStake() external view returns (uint256);

    /// @notice Seconds between an unbond request and its release.
    function unbondingPeriod() external view returns (uint64);

    /// @notice The stored state of `provider`.
    function getProvider(address provider) external view returns (Provider memory);

    /// @notice The pending unbonding entries of `provider`.
    function getUnbondingEntries(address provider) external view returns (UnbondingEntry[] memory);

    /// @notice The number of open slashing cases against `provider`.
    function openCases(address provider) external view returns (uint256);

    /// @notice The chain ids `provider` has an endpoint for.
    function endpointChainIds(address provider) external view returns (uint256[] memory);

    /// @notice keccak256 of `provider`'s URL for `chainId` (zero if none); the URL itself is in `EndpointSet`.
    function endpointUrlHash(address provider, uint256 chainId) external view returns (bytes32);

    /// @notice Registered, not jailed, and active stake at least `minStake`.
    function isEligible(address provider) external view returns (bool);

    /// @notice Σ active stake over all providers.
    function totalActiveStake() external view returns (uint256);

    /// @notice Σ unbonding stake over all providers.
    function totalUnbondingStake() external view returns (uint256);
}
