// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {ISlashingManager} from "./interfaces/ISlashingManager.sol";

/// @title SlashingManager
/// @notice See {ISlashingManager}.
contract SlashingManager is ISlashingManager, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint16 public constant BPS = 10_000;
    /// @notice No single case can take more than half of a provider's stake.
    uint16 public constant MAX_SLASH_BPS = 5_000;
    uint16 public constant MAX_WATCHER_REWARD_BPS = 5_000;
    uint256 public constant MIN_CASE_BOND = 1e18;
    uint256 public constant MAX_CASE_BOND = 1_000_000e18;
    uint64 public constant MIN_CASE_TTL = 30;
    uint64 public constant MAX_CASE_TTL = 90 days;
    uint256 public constant MAX_EVIDENCE_LENGTH = 16_384;

    IProviderRegistry private immutable _registry;
    IERC20 private immutable _token;
    address private immutable _governance;

    // One slot: openCase reads every parameter and bumps the count with a single SLOAD and SSTORE.
    uint96 private _caseBond;
    uint64 private _caseTtl;
    uint16 private _maxSlashBps;
    uint16 private _watcherRewardBps;
    uint64 private _caseCount;

    mapping(uint256 caseId => Case) private _cases;
    mapping(address account => uint256) private _claimable;

    modifier onlyGovernance() {
        require(msg.sender == _governance, ManagerNotGovernance(msg.sender));
        _;
    }

    /// @param registry_ the registry to slash through (it must bind this manager)
    /// @param governance_ the timelock: resolves cases, sets parameters, receives the treasury share
    constructor(
        IProviderRegistry registry_,
        address governance_,
        uint256 caseBond_,
        uint64 caseTtl_,
        uint16 maxSlashBps_,
        uint16 watcherRewardBps_
    ) {
        require(address(registry_) != address(0) && governance_ != address(0), ManagerZeroAddress());
        _registry = registry_;
        _token = IERC20(registry_.token());
        _governance = governance_;
        _setCaseBond(caseBond_);
        _setCaseTtl(caseTtl_);
        _setMaxSlashBps(maxSlashBps_);
        _setWatcherRewardBps(watcherRewardBps_);
    }

    // ---------------------------------------------------------------- watchers

    /// @inheritdoc ISlashingManager
    function openCase(address provider, uint256 amount, bytes calldata evidence)
        external
        nonReentrant
        returns (uint256 caseId)
    {
        require(amount != 0, ManagerZeroAmount());
        require(
            evidence.length != 0 && evidence.length <= MAX_EVIDENCE_LENGTH,
            ManagerInvalidEvidenceLength(evidence.length, MAX_EVIDENCE_LENGTH)
        );
        caseId = ++_caseCount;
        uint96 bond = _caseBond;
        uint64 expiresAt = uint64(block.timestamp) + _caseTtl;
        bytes32 evidenceHash = keccak256(evidence);
        _cases[caseId] = Case({
            provider: provider,
            expiresAt: expiresAt,
            status: CaseStatus.Open,
            watcher: msg.sender,
            bond: bond,
            amount: amount,
            evidenceHash: evidenceHash
        });
        emit CaseOpened(caseId, provider, msg.sender, amount, bond, expiresAt, evidenceHash, evidence);
        // The registry counts the case (blocking withdrawals) and says what the provider has at stake.
        uint256 atStake = _registry.caseOpened(provider);
        require(atStake != 0, ManagerNothingAtStake(provider));
        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc ISlashingManager
    function expireCase(uint256 caseId) external nonReentrant {
        Case storage c = _openCase(caseId);
        require(block.timestamp > c.expiresAt, ManagerCaseNotExpired(caseId, c.expiresAt));
        c.status = CaseStatus.Expired;
        emit CaseExpired(caseId, c.provider, c.bond);
        _credit(c.watcher, c.bond);
        _registry.caseClosed(c.provider);
    }

    /// @inheritdoc ISlashingManager
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _claimable[msg.sender];
        require(amount != 0, ManagerNothingToClaim(msg.sender));
        _claimable[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc ISlashingManager
    function upholdCase(uint256 caseId) external nonReentrant onlyGovernance returns (uint256 slashed) {
        Case storage c = _resolvableCase(caseId);
        c.status = CaseStatus.Upheld;
        uint256 asked = _slashAmount(c);
        address provider = c.provider;
        _registry.caseClosed(provider);
        slashed = _registry.slash(provider, asked, caseId);
        // Rounds down: the odd wei goes to the treasury, never to the caller.
        uint256 reward = slashed * _watcherRewardBps / BPS;
        uint256 toTreasury = slashed - reward;
        emit CaseUpheld(caseId, provider, slashed, reward, toTreasury);
        _credit(c.watcher, c.bond + reward);
        if (toTreasury != 0) _token.safeTransfer(_governance, toTreasury);
    }

    /// @inheritdoc ISlashingManager
    function rejectCase(uint256 caseId) external nonReentrant onlyGovernance {
        Case storage c = _resolvableCase(caseId);
        c.status = CaseStatus.Rejected;
        emit CaseRejected(caseId, c.provider, c.bond);
        _registry.caseClosed(c.provider);
        _token.safeTransfer(_governance, c.bond);
    }

    /// @inheritdoc ISlashingManager
    function setCaseBond(uint256 newBond) external onlyGovernance {
        _setCaseBond(newBond);
    }

    /// @inheritdoc ISlashingManager
    function setCaseTtl(uint64 newTtl) external onlyGovernance {
        _setCaseTtl(newTtl);
    }

    /// @inheritdoc ISlashingManager
    function setMaxSlashBps(uint16 newBps) external onlyGovernance {
        _setMaxSlashBps(newBps);
    }

    /// @inheritdoc ISlashingManager
    function setWatcherRewardBps(uint16 newBps) external onlyGovernance {
        _setWatcherRewardBps(newBps);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISlashingManager
    function registry() external view returns (address) {
        return address(_registry);
    }

    /// @inheritdoc ISlashingManager
    function governance() external view returns (address) {
        return _governance;
    }

    /// @inheritdoc ISlashingManager
    function caseBond() external view returns (uint256) {
        return _caseBond;
    }

    /// @inheritdoc ISlashingManager
    function caseTtl() external view returns (uint64) {
        return _caseTtl;
    }

    /// @inheritdoc ISlashingManager
    function maxSlashBps() external view returns (uint16) {
        return _maxSlashBps;
    }

    /// @inheritdoc ISlashingManager
    function watcherRewardBps() external view returns (uint16) {
        return _watcherRewardBps;
    }

    /// @inheritdoc ISlashingManager
    function getCase(uint256 caseId) external view returns (Case memory) {
        return _cases[caseId];
    }

    /// @inheritdoc ISlashingManager
    function caseCount() external view returns (uint256) {
        return _caseCount;
    }

    /// @inheritdoc ISlashingManager
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc ISlashingManager
    function slashAmountIfUpheld(uint256 caseId) external view returns (uint256) {
        Case storage c = _cases[caseId];
        require(c.status != CaseStatus.None, ManagerUnknownCase(caseId));
        return _slashAmount(c);
    }

    // ---------------------------------------------------------------- internals

    /// @dev The asked amount, capped at maxSlashBps of what the provider has now (rounded down).
    function _slashAmount(Case storage c) private view returns (uint256) {
        IProviderRegistry.Provider memory p = _registry.getProvider(c.provider);
        uint256 cap = (uint256(p.activeStake) + p.unbondingStake) * _maxSlashBps / BPS;
        return c.amount < cap ? c.amount : cap;
    }

    function _openCase(uint256 caseId) private view returns (Case storage c) {
        c = _cases[caseId];
        require(c.status != CaseStatus.None, ManagerUnknownCase(caseId));
        require(c.status == CaseStatus.Open, ManagerCaseNotOpen(caseId, c.status));
    }

    function _resolvableCase(uint256 caseId) private view returns (Case storage c) {
        c = _openCase(caseId);
        require(block.timestamp <= c.expiresAt, ManagerCaseExpired(caseId, c.expiresAt));
    }

    function _credit(address account, uint256 amount) private {
        uint256 total = _claimable[account] + amount;
        _claimable[account] = total;
        emit ClaimableIncreased(account, amount, total);
    }

    function _setCaseBond(uint256 newBond) private {
        _checkBounds(newBond, MIN_CASE_BOND, MAX_CASE_BOND);
        emit CaseBondChanged(_caseBond, newBond);
        _caseBond = uint96(newBond); // MAX_CASE_BOND < 2**96
    }

    function _setCaseTtl(uint64 newTtl) private {
        _checkBounds(newTtl, MIN_CASE_TTL, MAX_CASE_TTL);
        uint64 unbondingPeriod = _registry.unbondingPeriod();
        require(newTtl < unbondingPeriod, ManagerCaseTtlTooLong(newTtl, unbondingPeriod));
        emit CaseTtlChanged(_caseTtl, newTtl);
        _caseTtl = newTtl;
    }

    function _setMaxSlashBps(uint16 newBps) private {
        _checkBounds(newBps, 1, MAX_SLASH_BPS);
        emit MaxSlashBpsChanged(_maxSlashBps, newBps);
        _maxSlashBps = newBps;
    }

    function _setWatcherRewardBps(uint16 newBps) private {
        _checkBounds(newBps, 0, MAX_WATCHER_REWARD_BPS);
        emit WatcherRewardBpsChanged(_watcherRewardBps, newBps);
        _watcherRewardBps = newBps;
    }

    function _checkBounds(uint256 value, uint256 min, uint256 max) private pure {
        require(value >= min && value <= max, ManagerParameterOutOfBounds(value, min, max));
    }
}
