// FanoutMachine: the pure per-alert fan-out state machine — which targets to send to, with which deadline, and when the publish is done.

/// How health decides eligibility.
public enum HealthStrategy: String, Sendable, Hashable, CaseIterable {
    /// Skip targets known to be unhealthy (unknown and degraded targets are tried).
    case skipUnhealthy = "skip_unhealthy"
    /// Try every enabled target whatever its health.
    case publishToAll = "publish_to_all"
    /// Skip unhealthy and degraded targets.
    case skipUnhealthyAndDegraded = "skip_unhealthy_and_degraded"
}

/// A target's health as the planner sees it.
public enum HealthStatus: String, Sendable, Hashable, CaseIterable {
    case healthy, degraded, unhealthy, unknown
}

/// The per-alert fan-out. Events in, actions out; time is passed in (seconds on a monotonic clock), nothing is
/// owned. Each target moves `planned` → `inFlight` → `done`, or `planned` → `done` (skipped). The machine
/// emits `.complete` exactly once, when every target is `done`.
///
/// Deadlines: every attempt gets `min(target timeout, what is left of the publish deadline)`; a target whose
/// attempt runs out of time is reported failed with kind `timeout`, never dropped.
public struct FanoutMachine: Sendable {
    public struct Candidate: Sendable, Hashable {
        public var name: String
        public var type: String
        public var enabled: Bool
        public var health: HealthStatus
        /// This target's own attempt timeout, if configured.
        public var timeoutSeconds: Double?

        public init(name: String, type: String, enabled: Bool = true, health: HealthStatus = .unknown, timeoutSeconds: Double? = nil) {
            self.name = name
            self.type = type
            self.enabled = enabled
            self.health = health
            self.timeoutSeconds = timeoutSeconds
        }
    }

    public struct Options: Sendable, Hashable {
        public var deadlineSeconds: Double
        public var strategy: HealthStrategy
        /// Attempt timeout for targets that configure none.
        public var defaultTimeoutSeconds: Double

        public init(deadlineSeconds: Double = 10, strategy: HealthStrategy = .skipUnhealthy, defaultTimeoutSeconds: Double = 10) {
            self.deadlineSeconds = deadlineSeconds
            self.strategy = strategy
            self.defaultTimeoutSeconds = defaultTimeoutSeconds
        }
    }

    /// How one attempt ended, as the publisher observed it.
    public enum AttemptOutcome: Sendable, Hashable {
        case delivered(status: Int, action: String?, detail: String?)
        case failed(kind: String, status: Int?, message: String, retryable: Bool, action: String?)
    }

    public enum Action: Sendable, Hashable {
        /// Send attempt `attempt` (1-based) to target `index` with this deadline.
        case send(index: Int, attempt: Int, timeoutSeconds: Double)
        /// Every target is accounted for.
        case complete(PublishReport)
    }

    enum TargetState: Sendable, Hashable {
        case planned
        case inFlight(attempt: Int, timeoutSeconds: Double)
        case done(TargetResult)
    }

    public let candidates: [Candidate]
    public let options: Options
    public let startedAt: Double
    let alertName: String
    let fingerprint: String
    let status: String
    private(set) var states: [TargetState]
    private(set) var completed = false

    public init(alertName: String, fingerprint: String, status: String, candidates: [Candidate], options: Options, now: Double) {
        self.alertName = alertName
        self.fingerprint = fingerprint
        self.status = status
        self.candidates = candidates
        self.options = options
        self.startedAt = now
        self.states = Array(repeating: .planned, count: candidates.count)
    }

    /// Absolute publish deadline.
    public var deadline: Double { startedAt + options.deadlineSeconds }

    /// Plans every target: skips (disabled, health) and first attempts.
    public mutating func start(now: Double) -> [Action] {
        var actions: [Action] = []
        for (i, c) in candidates.enumerated() {
            if let reason = skipReason(c) {
                states[i] = .done(TargetResult(target: c.name, type: c.type, outcome: .skipped, skipReason: reason,
                                               durationSeconds: max(0, now - startedAt)))
                continue
            }
            let timeout = attemptTimeout(c, now: now)
            guard timeout > 0 else {
                states[i] = .done(timeoutResult(i, attempts: 0, now: now, message: "the publish deadline passed before the first attempt"))
                continue
            }
            states[i] = .inFlight(attempt: 1, timeoutSeconds: timeout)
            actions.append(.send(index: i, attempt: 1, timeoutSeconds: timeout))
        }
        return actions + completionIfDone(now: now)
    }

    /// Records how an attempt ended.
    public mutating func attemptFinished(index i: Int, outcome: AttemptOutcome, now: Double) -> [Action] {
        guard i >= 0, i < states.count, case .inFlight(let attempt, let timeout) = states[i] else { return [] }
        let c = candidates[i]
        let elapsed = max(0, now - startedAt)
        switch outcome {
        case .delivered(let status, let action, let detail):
            states[i] = .done(TargetResult(target: c.name, type: c.type, outcome: .succeeded, httpStatus: status, attempts: attempt,
                                           durationSeconds: elapsed, deadlineSeconds: timeout, action: action, detail: detail))
        case .failed(let kind, let status, let message, let retryable, let action):
            states[i] = .done(TargetResult(target: c.name, type: c.type, outcome: .failed, errorKind: kind, httpStatus: status,
                                           message: message, attempts: attempt, retryable: retryable, durationSeconds: elapsed,
                                           deadlineSeconds: timeout, action: action))
        }
        return completionIfDone(now: now)
    }

    /// Ends every target still in flight as failed with kind `cancelled`.
    public mutating func cancel(now: Double) -> [Action] {
        for i in states.indices {
            if case .inFlight(let attempt, let timeout) = states[i] {
                let c = candidates[i]
                states[i] = .done(TargetResult(target: c.name, type: c.type, outcome: .failed, errorKind: "cancelled",
                                               message: "the publish was cancelled", attempts: attempt, retryable: true,
                                               durationSeconds: max(0, now - startedAt), deadlineSeconds: timeout))
            }
        }
        return completionIfDone(now: now)
    }

    public var isComplete: Bool { completed }

    /// Targets still in flight.
    public var inFlightIndices: [Int] {
        states.indices.filter { if case .inFlight = states[$0] { return true } else { return false } }
    }

    func skipReason(_ c: Candidate) -> SkipReason? {
        if !c.enabled { return .disabled }
        switch (options.strategy, c.health) {
        case (.publishToAll, _): return nil
        case (_, .unhealthy): return .unhealthy
        case (.skipUnhealthyAndDegraded, .degraded): return .degraded
        default: return nil
        }
    }

    func attemptTimeout(_ c: Candidate, now: Double) -> Double {
        min(c.timeoutSeconds ?? options.defaultTimeoutSeconds, deadline - now)
    }

    func timeoutResult(_ i: Int, attempts: Int, now: Double, message: String) -> TargetResult {
        let c = candidates[i]
        return TargetResult(target: c.name, type: c.type, outcome: .failed, errorKind: "timeout", message: message,
                            attempts: attempts, retryable: true, durationSeconds: max(0, now - startedAt))
    }

    private mutating func completionIfDone(now: Double) -> [Action] {
        guard !completed else { return [] }
        var results: [TargetResult] = []
        for s in states {
            guard case .done(let r) = s else { return [] }
            results.append(r)
        }
        completed = true
        return [.complete(PublishReport(alertName: alertName, fingerprint: fingerprint, status: status, results: results,
                                        durationSeconds: max(0, now - startedAt), deadlineSeconds: options.deadlineSeconds))]
    }
}
