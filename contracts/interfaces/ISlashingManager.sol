// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ISlashingManager
/// @notice Watchers open cases against misbehaving providers with evidence and a bond; governance
/// (the timelock, after a passed vote) upholds or rejects them; anyone expires a case left unresolved
/// past its lifetime.
/// @dev Upheld: the provider is slashed up to `maxSlashBps` of its stake, the watcher may claim its
/// bond plus `watcherRewardBps` of the slash, the rest goes to the treasury (the timelock).
/// Rejected: the bond goes to the treasury. Expired: the watcher may claim its bond back.
/// Token held here == Σ bonds of open cases + Σ claimable.
interface ISlashingManager {
    /// @notice The life of a case. `None` marks an unknown id.
    enum CaseStatus {
        None,
        Open,
        Upheld,
        Rejected,
        Expired
    }

    /// @notice A slashing case. The evidence itself is only in the `CaseOpened` event.
    /// @param provider the accused provider
    /// @param expiresAt after this time the case can no longer be resolved, only expired
    /// @param status where the case stands
    /// @param watcher who opened the case and posted the bond
    /// @param bond the bond posted (the `caseBond` at opening)
    /// @param amount the slash the watcher asks for (capped at resolution by `maxSlashBps`)
    /// @param evidenceHash keccak256 of the evidence bytes
    struct Case {
        address provider;
        uint64 expiresAt;
        CaseStatus status;
        address watcher;
        uint96 bond;
        uint256 amount;
        bytes32 evidenceHash;
    }

    // ---------------------------------------------------------------- events

    /// @notice `watcher` opened case `caseId` against `provider`, asking for `amount`, with `evidence`.
    event CaseOpened(
        uint256 indexed caseId,
        address indexed provider,
        address indexed watcher,
        uint256 amount,
        uint256 bond,
        uint64 expiresAt,
        bytes32 evidenceHash,
        bytes evidence
    );
    /// @notice Governance upheld case `caseId`: `slashed` was taken from `provider`, `watcherReward`
    /// of it credited to the watcher (with the bond), `toTreasury` sent to the treasury.
    event CaseUpheld(
        uint256 indexed caseId, address indexed provider, uint256 slashed, uint256 watcherReward, uint256 toTreasury
    );
    /// @notice Governance rejected case `caseId`; its bond went to the treasury.
    event CaseRejected(uint256 indexed caseId, address indexed provider, uint256 bondToTreasury);
    /// @notice Case `caseId` expired unresolved; its bond was credited back to the watcher.
    event CaseExpired(uint256 indexed caseId, address indexed provider, uint256 bondReturned);
    /// @notice `account` can now claim `claimable` in total.
    event ClaimableIncreased(address indexed account, uint256 amount, uint256 claimable);
    /// @notice `account` claimed `amount`.
    event Claimed(address indexed account, uint256 amount);
    /// @notice The bond a watcher posts to open a case changed.
    event CaseBondChanged(uint256 oldBond, uint256 newBond);
    /// @notice The time a case stays open for resolution changed (applies to new cases).
    event CaseTtlChanged(uint64 oldTtl, uint64 newTtl);
    /// @notice The per-case cap on a slash, in basis points of the provider's stake, changed.
    event MaxSlashBpsChanged(uint16 oldBps, uint16 newBps);
    /// @notice The watcher's share of a slash, in basis points, changed.
    event WatcherRewardBpsChanged(uint16 oldBps, uint16 newBps);

    // ---------------------------------------------------------------- errors

    /// @notice The caller is not the governance timelock.
    error ManagerNotGovernance(address caller);
    /// @notice A zero address was given where a contract is required.
    error ManagerZeroAddress();
    /// @notice A case must ask for a slash above zero.
    error ManagerZeroAmount();
    /// @notice Evidence must be 1 to `max` bytes long.
    error ManagerInvalidEvidenceLength(uint256 length, uint256 max);
    /// @notice `provider` has no stake (active or unbonding) to slash.
    error ManagerNothingAtStake(address provider);
    /// @notice No case has id `caseId`.
    error ManagerUnknownCase(uint256 caseId);
    /// @notice Case `caseId` is not open (it is `status`).
    error ManagerCaseNotOpen(uint256 caseId, CaseStatus status);
    /// @notice Case `caseId` passed its lifetime at `expiresAt`; it can only be expired.
    error ManagerCaseExpired(uint256 caseId, uint64 expiresAt);
    /// @notice Case `caseId` is still within its lifetime, until `expiresAt`.
    error ManagerCaseNotExpired(uint256 caseId, uint64 expiresAt);
    /// @notice The caller has nothing to claim.
    error ManagerNothingToClaim(address account);
    /// @notice A governance value is outside its hard-coded bounds.
    error ManagerParameterOutOfBounds(uint256 value, uint256 min, uint256 max);
    /// @notice The case lifetime must stay below the registry's unbonding period `unbondingPeriod`.
    error ManagerCaseTtlTooLong(uint64 caseTtl, uint64 unbondingPeriod);

    // ---------------------------------------------------------------- watchers

    /// @notice Opens a case against `provider`, pulling `caseBond` tokens from the caller. The
    /// provider's withdrawals are blocked until the case closes.
    /// @param amount the slash asked for, in token wei (capped at resolution)
    /// @param evidence what the provider did, e.g. an ABI-encoded signed response; emitted, not stored
    /// @return caseId the new case's id (ids start at 1)
    function openCase(address provider, uint256 amount, bytes calldata evidence) external returns (uint256 caseId);

    /// @notice Closes an open case whose lifetime has passed; the watcher's bond becomes claimable.
    function expireCase(uint256 caseId) external;

    /// @notice Pays the caller everything credited to it (bonds returned and rewards).
    /// @return amount the tokens paid
    function claim() external returns (uint256 amount);

    // ---------------------------------------------------------------- governance

    /// @notice Upholds case `caseId` (governance only): slashes the provider and splits the proceeds.
    /// @return slashed the amount taken from the provider
    function upholdCase(uint256 caseId) external returns (uint256 slashed);

    /// @notice Rejects case `caseId` (governance only): the bond goes to the treasury.
    function rejectCase(uint256 caseId) external;

    /// @notice Sets the watcher bond (governance only, within bounds).
    function setCaseBond(uint256 newBond) external;

    /// @notice Sets the case lifetime (governance only, within bounds and below the unbonding period).
    function setCaseTtl(uint64 newTtl) external;

    /// @notice Sets the per-case slash cap in basis points (governance only, within bounds).
    function setMaxSlashBps(uint16 newBps) external;

    /// @notice Sets the watcher's share of a slash in basis points (governance only, within bounds).
    function setWatcherRewardBps(uint16 newBps) external;

    // ---------------------------------------------------------------- views

    /// @notice The ProviderRegistry this manager slashes through.
    function registry() external view returns (address);

    /// @notice The governance timelock; also the treasury.
    function governance() external view returns (address);

    /// @notice The bond a watcher posts to open a case.
    function caseBond() external view returns (uint256);

    /// @notice Seconds a case stays open for resolution.
    function caseTtl() external view returns (uint64);

    /// @notice Cap on one case's slash, in basis points of the provider's active + unbonding stake.
    function maxSlashBps() external view returns (uint16);

    /// @notice The watcher's share of a slash, in basis points.
    function watcherRewardBps() external view returns (uint16);

    /// @notice Case `caseId` (status `None` if unknown).
    function getCase(uint256 caseId) external view returns (Case memory);

    /// @notice The number of cases ever opened; the latest id.
    function caseCount() external view returns (uint256);

    /// @notice What `account` can claim.
    function claimable(address account) external view returns (uint256);

    /// @notice The slash case `caseId` would take if upheld now.
    function slashAmountIfUpheld(uint256 caseId) external view returns (uint256);
}
