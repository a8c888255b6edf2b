// PublishReport: one result per requested target, in request order, with totals and partial-success semantics.

/// Why a target was not attempted.
public enum SkipReason: String, Sendable, Hashable, CaseIterable {
    case disabled
    case unhealthy
    case degraded
    case circuitOpen = "circuit_open"
    case rateLimited = "rate_limited"
    /// The endpoint answered `410 Gone` to an earlier delivery (Standard Webhooks: "stop sending it messages").
    /// A delivery that did not happen, unlike `disabled`.
    case endpointGone = "endpoint_gone"
}

/// What happened at one target.
public enum TargetOutcome: String, Sendable, Hashable {
    case succeeded, failed, skipped
}

/// The result for one requested target.
public struct TargetResult: Sendable, Hashable {
    public var target: String
    public var type: String
    public var outcome: TargetOutcome
    /// For failures: why (``FailureKind``; its raw value is the `error_kind` of reports).
    public var errorKind: FailureKind?
    public var skipReason: SkipReason?
    public var httpStatus: Int?
    /// The vendor's own message or the transport error's message. Never contains secrets.
    public var message: String?
    public var attempts: Int
    /// Sending the same alert to this target later may succeed: retryable failures, and `rate_limited` skips
    /// (the vendor's limit delays a delivery, it does not refuse it).
    public var retryable: Bool
    /// From the publish's start to this target's final outcome.
    public var durationSeconds: Double
    /// The attempt deadline this target was given (the last attempt's), nil when skipped.
    public var deadlineSeconds: Double?
    /// What was sent: `trigger`, `resolve`, `create`, `post`, `notify`.
    public var action: String?
    /// What the vendor returned worth keeping (PagerDuty dedup key, Rootly alert id).
    public var detail: String?

    public init(
        target: String, type: String, outcome: TargetOutcome, errorKind: FailureKind? = nil, skipReason: SkipReason? = nil,
        httpStatus: Int? = nil, message: String? = nil, attempts: Int = 0, retryable: Bool = false,
        durationSeconds: Double = 0, deadlineSeconds: Double? = nil, action: String? = nil, detail: String? = nil
    ) {
        self.target = target
        self.type = type
        self.outcome = outcome
        self.errorKind = errorKind
        self.skipReason = skipReason
        self.httpStatus = httpStatus
        self.message = message
        self.attempts = attempts
        self.retryable = retryable
        self.durationSeconds = durationSeconds
        self.deadlineSeconds = deadlineSeconds
        self.action = action
        self.detail = detail
    }
}

/// Everything one publish did.
public struct PublishReport: Sendable, Hashable {
    public var alertName: String
    public var fingerprint: String
    public var status: String
    /// One entry per requested target, in request order.
    public var results: [TargetResult]
    public var durationSeconds: Double
    public var deadlineSeconds: Double

    public init(alertName: String, fingerprint: String, status: String, results: [TargetResult], durationSeconds: Double, deadlineSeconds: Double) {
        self.alertName = alertName
        self.fingerprint = fingerprint
        self.status = status
        self.results = results
        self.durationSeconds = durationSeconds
        self.deadlineSeconds = deadlineSeconds
    }

    public var succeeded: Int { count(.succeeded) }
    public var failed: Int { count(.failed) }
    public var skipped: Int { count(.skipped) }
    /// Targets the operator switched off (`enabled: false`): listed as skipped, but not a delivery failure.
    public var disabled: Int {
        var n = 0
        for i in results.indices where results[i].skipReason == .disabled { n += 1 }
        return n
    }

    /// Results with `outcome`, read in place (a `count(where:)` copies every result, strings and all).
    private func count(_ outcome: TargetOutcome) -> Int {
        var n = 0
        for i in results.indices where results[i].outcome == outcome { n += 1 }
        return n
    }
    /// Every selected, enabled target succeeded (disabled targets are the operator's choice, not a failure).
    public var allSucceeded: Bool { succeeded > 0 && succeeded + disabled == results.count }
    /// Some enabled targets succeeded and some did not (failed, or skipped for a reason other than being
    /// disabled). Partial success is success.
    public var isPartialSuccess: Bool { succeeded > 0 && succeeded + disabled < results.count }
    /// At least one target succeeded.
    public var reachedAnyTarget: Bool { succeeded > 0 }
    /// The slowest attempted target's duration.
    public var slowestTargetSeconds: Double { results.filter { $0.outcome != .skipped }.map(\.durationSeconds).max() ?? 0 }

    /// What the publish as a whole amounts to (the publish-result policy, in one place).
    public var outcome: PublishOutcome {
        let cancelled = results.indices.contains { results[$0].errorKind == .cancelled }
        if cancelled && succeeded < results.count { return .cancelled }
        if succeeded > 0 { return .succeeded }
        if failed > 0 { return .allFailed }
        let guarded: Set<SkipReason> = [.unhealthy, .degraded, .circuitOpen, .rateLimited, .endpointGone]
        if results.contains(where: { $0.skipReason.map(guarded.contains) ?? false }) { return .noHealthyTargets }
        return .noEnabledTargets
    }
}

/// What a publish amounts to, from its report, in order of precedence.
///
/// | report | outcome |
/// |---|---|
/// | a target was cancelled and not every target succeeded | `cancelled` |
/// | at least one target succeeded (partial success is success) | `succeeded` |
/// | none succeeded, at least one failed | `allFailed` |
/// | every target was skipped, one of them by a guard (health, breaker, rate limit, 410 Gone) | `noHealthyTargets` |
/// | every target was skipped as disabled | `noEnabledTargets` |
public enum PublishOutcome: String, Sendable, Hashable, CaseIterable {
    /// At least one target succeeded.
    case succeeded
    /// The publish was cancelled before every target succeeded.
    case cancelled
    /// No target succeeded and at least one failed.
    case allFailed = "all_failed"
    /// Every target was skipped and at least one by a guard (health, breaker, rate limit, 410 Gone).
    case noHealthyTargets = "no_healthy_targets"
    /// Every target was disabled.
    case noEnabledTargets = "no_enabled_targets"
}
