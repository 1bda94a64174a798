// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {ISlashingManager} from "./interfaces/ISlashingManager.sol";

/// @title ProviderRegistry
/// @notice See {IProviderRegistry}.
/// @dev Conservation: the token balance held here always equals Σ active + Σ unbonding stake.
contract ProviderRegistry is IProviderRegistry, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    uint256 public constant MAX_NAME_LENGTH = 64;
    uint256 public constant MAX_METADATA_LENGTH = 256;
    uint256 public constant MAX_URL_LENGTH = 256;
    uint256 public constant MAX_ENDPOINTS = 16;
    /// @notice Bound on pending unbonding entries per provider, so withdraw and slash loops stay short.
    uint256 public constant MAX_UNBONDING_ENTRIES = 16;
    uint256 public constant MIN_MIN_STAKE = 1e18;
    uint256 public constant MAX_MIN_STAKE = 10_000_000e18;
    uint64 public constant MIN_UNBONDING_PERIOD = 60;
    uint64 public constant MAX_UNBONDING_PERIOD = 365 days;

    IERC20 private immutable _token;
    address private immutable _governance;
    /// @dev The deployer may bind the SlashingManager once; after that nobody can change it.
    address private immutable _deployer;

    address private _slashingManager;
    uint256 private _minStake;
    uint64 private _unbondingPeriod;
    uint256 private _totalActiveStake;
    uint256 private _totalUnbondingStake;

    mapping(address provider => Provider) private _providers;
    mapping(address provider => UnbondingEntry[]) private _unbonding;
    mapping(address provider => mapping(uint256 chainId => bytes32 urlHash)) private _endpointUrlHash;
    mapping(address provider => uint256[]) private _endpointChainIds;

    modifier onlyGovernance() {
        require(msg.sender == _governance, RegistryNotGovernance(msg.sender));
        _;
    }

    modifier onlySlashingManager() {
        require(msg.sender == _slashingManager, RegistryNotSlashingManager(msg.sender));
        _;
    }

    modifier onlyRegistered() {
        require(_providers[msg.sender].registered, RegistryNotRegistered(msg.sender));
        _;
    }

    /// @param token_ the staking token (DIN)
    /// @param governance_ the timelock that owns parameters and jail
    /// @param minStake_ initial minimum active stake
    /// @param unbondingPeriod_ initial unbonding period in seconds
    constructor(IERC20 token_, address governance_, uint256 minStake_, uint64 unbondingPeriod_) {
        require(address(token_) != address(0) && governance_ != address(0), RegistryZeroAddress());
        _token = token_;
        _governance = governance_;
        _deployer = msg.sender;
        _setMinStake(minStake_);
        _checkBounds(unbondingPeriod_, MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD);
        _unbondingPeriod = unbondingPeriod_;
        emit UnbondingPeriodChanged(0, unbondingPeriod_);
    }

    // ---------------------------------------------------------------- operators

    /// @inheritdoc IProviderRegistry
    function register(string calldata name, string calldata metadataURI) external {
        _register(name, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function registerAndStake(string calldata name, string calldata metadataURI, uint256 amount)
        external
        nonReentrant
    {
        require(amount >= _minStake, RegistryStakeBelowMinimum(amount, _minStake));
        _register(name, metadataURI);
        _stake(amount);
    }

    /// @inheritdoc IProviderRegistry
    function updateMetadata(string calldata name, string calldata metadataURI) external onlyRegistered {
        _checkMetadata(name, metadataURI);
        emit ProviderUpdated(msg.sender, name, metadataURI);
    }

    /// @inheritdoc IProviderRegistry
    function stake(uint256 amount) external nonReentrant onlyRegistered {
        _stake(amount);
    }

    /// @inheritdoc IProviderRegistry
    function setEndpoint(uint256 chainId, string calldata url) external onlyRegistered {
        require(chainId != 0, RegistryInvalidChainId());
        _checkUrl(bytes(url));
        Provider storage p = _providers[msg.sender];
        if (_endpointUrlHash[msg.sender][chainId] == bytes32(0)) {
            require(p.endpointCount < MAX_ENDPOINTS, RegistryTooManyEndpoints(MAX_ENDPOINTS));
            p.endpointCount += 1;
            _endpointChainIds[msg.sender].push(chainId);
        }
        _endpointUrlHash[msg.sender][chainId] = keccak256(bytes(url));
        emit EndpointSet(msg.sender, chainId, url);
    }

    /// @inheritdoc IProviderRegistry
    function removeEndpoint(uint256 chainId) external {
        require(
            _endpointUrlHash[msg.sender][chainId] != bytes32(0), RegistryEndpointNotSet(msg.sender, chainId)
        );
        uint256[] storage chainIds = _endpointChainIds[msg.sender];
        uint256 last = chainIds.length - 1;
        for (uint256 i = 0; i <= last; ++i) {
            if (chainIds[i] == chainId) {
                chainIds[i] = chainIds[last];
                break;
            }
        }
        chainIds.pop();
        _removeEndpoint(msg.sender, chainId);
    }

    /// @inheritdoc IProviderRegistry
    function requestUnbond(uint256 amount) external returns (uint64 releaseAt) {
        require(amount != 0, RegistryZeroAmount());
        Provider storage p = _providers[msg.sender];
        require(amount <= p.activeStake, RegistryInsufficientStake(amount, p.activeStake));
        releaseAt = _queueUnbonding(msg.sender, p, amount);
        emit UnbondRequested(msg.sender, amount, releaseAt, p.activeStake, p.unbondingStake);
    }

    /// @inheritdoc IProviderRegistry
    function withdraw() external nonReentrant returns (uint256 amount) {
        Provider storage p = _providers[msg.sender];
        require(p.openCases == 0, RegistryWithdrawalBlockedByOpenCases(p.openCases));
        UnbondingEntry[] storage entries = _unbonding[msg.sender];
        uint64 nextReleaseAt = 0;
        // Keep unreleased entries in order, dropping released ones.
        uint256 kept = 0;
        uint256 length = entries.length;
        for (uint256 i = 0; i < length; ++i) {
            UnbondingEntry memory entry = entries[i];
            if (entry.releaseAt <= block.timestamp) {
                amount += entry.amount;
            } else {
                if (nextReleaseAt == 0 || entry.releaseAt < nextReleaseAt) nextReleaseAt = entry.releaseAt;
                if (kept != i) entries[kept] = entry;
                ++kept;
            }
        }
        require(amount != 0, RegistryNothingToWithdraw(nextReleaseAt));
        for (uint256 i = kept; i < length; ++i) {
            entries.pop();
        }
        p.unbondingStake -= amount.toUint128();
        _totalUnbondingStake -= amount;
        emit Withdrawn(msg.sender, amount, p.unbondingStake);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IProviderRegistry
    function deregister() external onlyRegistered {
        Provider storage p = _providers[msg.sender];
        uint256[] storage chainIds = _endpointChainIds[msg.sender];
        for (uint256 i = chainIds.length; i > 0; --i) {
            _removeEndpoint(msg.sender, chainIds[i - 1]);
            chainIds.pop();
        }
        p.registered = false;
        uint256 moved = p.activeStake;
        uint64 releaseAt = 0;
        if (moved != 0) releaseAt = _queueUnbonding(msg.sender, p, moved);
        emit ProviderDeregistered(msg.sender, moved, releaseAt, p.unbondingStake);
    }

    // ---------------------------------------------------------------- slashing manager

    /// @inheritdoc IProviderRegistry
    function slash(address provider, uint256 amount, uint256 caseId)
        external
        nonReentrant
        onlySlashingManager
        returns (uint256 slashed)
    {
        Provider storage p = _providers[provider];
        uint256 fromActive = amount < p.activeStake ? amount : p.activeStake;
        p.activeStake -= uint128(fromActive);
        uint256 remaining = amount - fromActive;
        // Then the newest unbonding entries: the stake that was leaving last.
        UnbondingEntry[] storage entries = _unbonding[provider];
        uint256 fromUnbonding = 0;
        while (remaining != 0 && entries.length != 0) {
            UnbondingEntry storage newest = entries[entries.length - 1];
            if (newest.amount <= remaining) {
                remaining -= newest.amount;
                fromUnbonding += newest.amount;
                entries.pop();
            } else {
                newest.amount -= uint128(remaining);
                fromUnbonding += remaining;
                remaining = 0;
            }
        }
        p.unbondingStake -= uint128(fromUnbonding);
        _totalActiveStake -= fromActive;
        _totalUnbondingStake -= fromUnbonding;
        slashed = fromActive + fromUnbonding;
        emit Slashed(provider, caseId, slashed, fromActive, p.activeStake, p.unbondingStake);
        if (slashed != 0) _token.safeTransfer(msg.sender, slashed);
    }

    /// @inheritdoc IProviderRegistry
    function caseOpened(address provider) external onlySlashingManager returns (uint256 atStake) {
        Provider storage p = _providers[provider];
        p.openCases += 1;
        emit OpenCasesChanged(provider, p.openCases);
        return uint256(p.activeStake) + p.unbondingStake;
    }

    /// @inheritdoc IProviderRegistry
    function caseClosed(address provider) external onlySlashingManager {
        Provider storage p = _providers[provider];
        require(p.openCases != 0, RegistryNoOpenCase(provider));
        p.openCases -= 1;
        emit OpenCasesChanged(provider, p.openCases);
    }

    /// @inheritdoc IProviderRegistry
    function bindSlashingManager(address slashingManager_) external {
        require(msg.sender == _deployer && _slashingManager == address(0), RegistryBindingClosed());
        require(slashingManager_ != address(0), RegistryZeroAddress());
        _slashingManager = slashingManager_;
        emit SlashingManagerBound(slashingManager_);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IProviderRegistry
    function jail(address provider) external onlyGovernance {
        if (_setJailed(provider, true)) emit ProviderJailed(provider);
    }

    /// @inheritdoc IProviderRegistry
    function unjail(address provider) external onlyGovernance {
        if (_setJailed(provider, false)) emit ProviderUnjailed(provider);
    }

    /// @inheritdoc IProviderRegistry
    function setMinStake(uint256 newMinStake) external onlyGovernance {
        _setMinStake(newMinStake);
    }

    /// @inheritdoc IProviderRegistry
    function setUnbondingPeriod(uint64 newPeriod) external onlyGovernance {
        _checkBounds(newPeriod, MIN_UNBONDING_PERIOD, MAX_UNBONDING_PERIOD);
        if (_slashingManager != address(0)) {
            uint64 caseTtl = ISlashingManager(_slashingManager).caseTtl();
            require(newPeriod > caseTtl, RegistryUnbondingPeriodTooShort(newPeriod, caseTtl));
        }
        emit UnbondingPeriodChanged(_unbondingPeriod, newPeriod);
        _unbondingPeriod = newPeriod;
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IProviderRegistry
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IProviderRegistry
    function governance() external view returns (address) {
        return _governance;
    }

    /// @inheritdoc IProviderRegistry
    function slashingManager() external view returns (address) {
        return _slashingManager;
    }

    /// @inheritdoc IProviderRegistry
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc IProviderRegistry
    function unbondingPeriod() external view returns (uint64) {
        return _unbondingPeriod;
    }

    /// @inheritdoc IProviderRegistry
    function getProvider(address provider) external view returns (Provider memory) {
        return _providers[provider];
    }

    /// @inheritdoc IProviderRegistry
    function getUnbondingEntries(address provider) external view returns (UnbondingEntry[] memory) {
        return _unbonding[provider];
    }

    /// @inheritdoc IProviderRegistry
    function openCases(address provider) external view returns (uint256) {
        return _providers[provider].openCases;
    }

    /// @inheritdoc IProviderRegistry
    function endpointChainIds(address provider) external view returns (uint256[] memory) {
        return _endpointChainIds[provider];
    }

    /// @inheritdoc IProviderRegistry
    function endpointUrlHash(address provider, uint256 chainId) external view returns (bytes32) {
        return _endpointUrlHash[provider][chainId];
    }

    /// @inheritdoc IProviderRegistry
    function isEligible(address provider) external view returns (bool) {
        Provider storage p = _providers[provider];
        return p.registered && !p.jailed && p.activeStake >= _minStake;
    }

    /// @inheritdoc IProviderRegistry
    function totalActiveStake() external view returns (uint256) {
        return _totalActiveStake;
    }

    /// @inheritdoc IProviderRegistry
    function totalUnbondingStake() external view returns (uint256) {
        return _totalUnbondingStake;
    }

    // ---------------------------------------------------------------- internals

    function _register(string calldata name, string calldata metadataURI) private {
        Provider storage p = _providers[msg.sender];
        require(!p.registered, RegistryAlreadyRegistered(msg.sender));
        _checkMetadata(name, metadataURI);
        p.registered = true;
        p.registeredAt = uint64(block.timestamp);
        emit ProviderRegistered(msg.sender, name, metadataURI, p.jailed);
    }

    function _stake(uint256 amount) private {
        require(amount != 0, RegistryZeroAmount());
        Provider storage p = _providers[msg.sender];
        p.activeStake += amount.toUint128();
        _totalActiveStake += amount;
        emit Staked(msg.sender, amount, p.activeStake);
        // Pulling after the effects is safe under nonReentrant; the token is our own ERC20.
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function _queueUnbonding(address provider, Provider storage p, uint256 amount)
        private
        returns (uint64 releaseAt)
    {
        UnbondingEntry[] storage entries = _unbonding[provider];
        require(entries.length < MAX_UNBONDING_ENTRIES, RegistryTooManyUnbondingEntries(MAX_UNBONDING_ENTRIES));
        releaseAt = uint64(block.timestamp) + _unbondingPeriod;
        uint128 amount128 = amount.toUint128();
        p.activeStake -= amount128;
        p.unbondingStake += amount128;
        _totalActiveStake -= amount;
        _totalUnbondingStake += amount;
        entries.push(UnbondingEntry({amount: amount128, releaseAt: releaseAt}));
    }

    /// @dev Clears the hash and count; the caller keeps `_endpointChainIds` in step.
    function _removeEndpoint(address provider, uint256 chainId) private {
        delete _endpointUrlHash[provider][chainId];
        _providers[provider].endpointCount -= 1;
        emit EndpointRemoved(provider, chainId);
    }

    /// @dev Does nothing (returns false) when the provider is in that state already: a proposal cannot
    /// know the jail state at its execution, and a revert here would undo a slash bundled with it.
    function _setJailed(address provider, bool jailed) private returns (bool changed) {
        Provider storage p = _providers[provider];
        if (p.jailed == jailed) return false;
        p.jailed = jailed;
        return true;
    }

    function _setMinStake(uint256 newMinStake) private {
        _checkBounds(newMinStake, MIN_MIN_STAKE, MAX_MIN_STAKE);
        emit MinStakeChanged(_minStake, newMinStake);
        _minStake = newMinStake;
    }

    function _checkMetadata(string calldata name, string calldata metadataURI) private pure {
        uint256 nameLength = bytes(name).length;
        require(nameLength != 0 && nameLength <= MAX_NAME_LENGTH, RegistryInvalidName(nameLength, MAX_NAME_LENGTH));
        uint256 uriLength = bytes(metadataURI).length;
        require(uriLength <= MAX_METADATA_LENGTH, RegistryMetadataTooLong(uriLength, MAX_METADATA_LENGTH));
    }

    function _checkUrl(bytes calldata url) private pure {
        require(url.length != 0 && url.length <= MAX_URL_LENGTH, RegistryInvalidUrlLength(url.length, MAX_URL_LENGTH));
        require(
            _hasPrefix(url, "https://") || _hasPrefix(url, "http://") || _hasPrefix(url, "wss://")
                || _hasPrefix(url, "ws://"),
            RegistryUrlSchemeNotAllowed()
        );
        // A space or control byte (CR/LF, NUL…) would let a URL smuggle headers or hide its host.
        uint256 length = url.length;
        for (uint256 i = 0; i < length; ++i) {
            uint8 c = uint8(url[i]);
            require(c > 0x20 && c != 0x7f, RegistryUrlInvalidCharacter(i));
        }
    }

    function _hasPrefix(bytes calldata value, bytes memory prefix) private pure returns (bool) {
        if (value.length <= prefix.length) return false; // a bare scheme is no URL
        return keccak256(value[:prefix.length]) == keccak256(prefix);
    }

    function _checkBounds(uint256 value, uint256 min, uint256 max) private pure {
        require(value >= min && value <= max, RegistryParameterOutOfBounds(value, min, max));
    }
}
