// PublishOptions and PublishError: how a publish is asked for, and how it can fail as a whole.
import FanoutCore

/// Which configured targets a publish goes to.
public enum TargetSelection: Sendable, Hashable {
    /// Every configured target, in file order; disabled ones are reported skipped (`disabled`).
    case all
    /// These targets, in this order.
    case named([String])
}

/// How one publish runs: its deadline, the targets it goes to, what their health does, and per-target limits.
public struct PublishOptions: Sendable, Hashable {
    /// The whole publish's deadline; no attempt outlives it.
    public var deadline: Duration
    /// What health does to a target: skip it when unhealthy (the default), when unhealthy or degraded, or never.
    public var strategy: HealthStrategy
    /// The targets to publish to (default: every configured target).
    public var selection: TargetSelection
    /// Requests in flight at once to one target across all publishes (nil: the target's `max_in_flight`,
    /// else unlimited beyond the reactor's per-host admission).
    public var maxInFlightPerTarget: Int?
    /// Attempt timeout for targets that configure none.
    public var defaultTargetTimeout: Duration
    /// False when the caller reports the outcome itself (the outbox dispatcher, which knows whether a failed
    /// attempt will be retried): the publisher then logs the publish at debug level only.
    public var logsOutcome: Bool

    /// Options; by default a 10 s deadline, unhealthy targets skipped, every target, a 10 s attempt timeout.
    /// A deadline or timeout that is not positive, or a limit below 1, fails the publish with `invalidInput`.
    public init(
        deadline: Duration = .seconds(10), strategy: HealthStrategy = .skipUnhealthy, selection: TargetSelection = .all,
        maxInFlightPerTarget: Int? = nil, defaultTargetTimeout: Duration = .seconds(10), logsOutcome: Bool = true
    ) {
        self.logsOutcome = logsOutcome
        self.deadline = deadline
        self.strategy = strategy
        self.selection = selection
        self.maxInFlightPerTarget = maxInFlightPerTarget
        self.defaultTargetTimeout = defaultTargetTimeout
    }
}

/// A publish that failed as a whole. Every case that ran carries the full per-target report.
public enum PublishError: Error, Sendable, CustomStringConvertible {
    /// The request itself is unusable (unknown target names, bad options); nothing was sent.
    case invalidInput(String)
    /// No selected target is enabled.
    case noEnabledTargets
    /// Every enabled target was skipped for its health (or open breaker).
    case noHealthyTargets(PublishReport)
    /// Targets were attempted and none succeeded.
    case allFailed(PublishReport)
    /// The publish was cancelled before every target finished.
    case cancelled(PublishReport)

    /// The per-target report of a publish that ran; nil for `invalidInput` and `noEnabledTargets`.
    public var report: PublishReport? {
        switch self {
        case .invalidInput, .noEnabledTargets: return nil
        case .noHealthyTargets(let r), .allFailed(let r), .cancelled(let r): return r
        }
    }

    /// One line saying why the publish failed, with the target counts.
    public var description: String {
        switch self {
        case .invalidInput(let m): return "invalid publish request: \(m)"
        case .noEnabledTargets: return "no enabled targets to publish to"
        case .noHealthyTargets(let r): return "no healthy targets: all \(r.results.count) were skipped"
        case .allFailed(let r): return "all \(r.failed) attempted targets failed"
        case .cancelled(let r): return "publish cancelled (\(r.succeeded) of \(r.results.count) targets had succeeded)"
        }
    }
}

extension Result where Failure == PublishError {
    /// The report a failed publish still carries.
    var failureReport: PublishReport? {
        if case .failure(let e) = self { return e.report }
        return nil
    }
}
