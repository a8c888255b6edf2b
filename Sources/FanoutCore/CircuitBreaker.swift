// CircuitBreaker: per-target breaker — opens on a failure rate over a minimum volume or a run of failures; one probe at a time when half-open.

/// A circuit breaker driven by outcomes and an injected clock (seconds).
///
/// States and transitions:
///
/// | state | event | next |
/// |---|---|---|
/// | closed | failure rate ≥ `failureRateThreshold` over ≥ `minimumVolume` calls in the window, or `consecutiveFailures` failures in a row | open |
/// | open | `cooldownSeconds` elapsed, at the next `admit` | half-open (that caller is the probe) |
/// | half-open | `admit` while the probe is out | rejected |
/// | half-open | probe success (`successesToClose` reached) | closed, window cleared |
/// | half-open | probe success (more needed) | half-open, next caller probes |
/// | half-open | probe failure | open, a new cooldown |
/// | half-open | probe neutral (cancelled, unknown) | half-open, probe slot freed |
///
/// Exactly one probe is admitted at a time while half-open.
public struct CircuitBreaker: Sendable, Hashable {
    public struct Config: Sendable, Hashable {
        public var failureRateThreshold: Double
        public var minimumVolume: Int
        public var windowSeconds: Double
        public var consecutiveFailures: Int
        public var cooldownSeconds: Double
        public var successesToClose: Int

        public init(
            failureRateThreshold: Double = 0.5, minimumVolume: Int = 10, windowSeconds: Double = 30,
            consecutiveFailures: Int = 5, cooldownSeconds: Double = 10, successesToClose: Int = 2
        ) {
            self.failureRateThreshold = failureRateThreshold
            self.minimumVolume = minimumVolume
            self.windowSeconds = windowSeconds
            self.consecutiveFailures = consecutiveFailures
            self.cooldownSeconds = cooldownSeconds
            self.successesToClose = successesToClose
        }
    }

    public enum State: Sendable, Hashable {
        case closed
        case open(until: Double)
        case halfOpen(probeOut: Bool, successes: Int)

        /// The state without its details.
        public var phase: Phase {
            switch self {
            case .closed: return .closed
            case .open: return .open
            case .halfOpen: return .halfOpen
            }
        }

        /// The phase's name as metrics and the health endpoint show it: `closed`, `open`, `half_open`.
        public var name: String { phase.rawValue }
    }

    /// A breaker's state without its details, as metrics and logs report it.
    public enum Phase: String, Sendable, Hashable, CaseIterable {
        /// Requests pass; outcomes are counted.
        case closed
        /// Requests are rejected until the cooldown ends.
        case open
        /// One probe at a time decides whether the breaker closes.
        case halfOpen = "half_open"

        /// The value of the breaker-state gauge: 0 closed, 1 half-open, 2 open.
        public var gaugeValue: Double {
            switch self {
            case .closed: return 0
            case .halfOpen: return 1
            case .open: return 2
            }
        }
    }

    public enum Admission: Sendable, Hashable {
        case allowed
        /// The half-open probe: its outcome decides whether the breaker closes.
        case probe
        case rejected(retryAt: Double)
    }

    public enum Outcome: Sendable, Hashable { case success, failure, neutral }

    public let config: Config
    public private(set) var state: State = .closed
    private var window: OutcomeWindow
    private var failureRun = 0
    /// Transitions so far, for metrics: (from, to).
    public private(set) var transitions = 0

    public init(config: Config = .init()) {
        self.config = config
        window = OutcomeWindow(seconds: config.windowSeconds, buckets: 10)
    }

    /// Asks to send one request now.
    public mutating func admit(now: Double) -> Admission {
        switch state {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .rejected(retryAt: until) }
            move(to: .halfOpen(probeOut: true, successes: 0))
            return .probe
        case .halfOpen(let out, let successes):
            if out { return .rejected(retryAt: now + config.cooldownSeconds) }
            state = .halfOpen(probeOut: true, successes: successes)
            return .probe
        }
    }

    /// Records the outcome of a request admitted with `admission`.
    public mutating func record(_ outcome: Outcome, admission: Admission, now: Double) {
        if case .probe = admission, case .halfOpen(_, let successes) = state {
            switch outcome {
            case .success:
                if successes + 1 >= config.successesToClose {
                    window.clear()
                    failureRun = 0
                    move(to: .closed)
                } else {
                    state = .halfOpen(probeOut: false, successes: successes + 1)
                }
            case .failure:
                move(to: .open(until: now + config.cooldownSeconds))
            case .neutral:
                state = .halfOpen(probeOut: false, successes: successes)
            }
            return
        }
        guard case .closed = state, outcome != .neutral else { return }
        window.add(success: outcome == .success, now: now)
        failureRun = outcome == .failure ? failureRun + 1 : 0
        let (ok, failed) = window.counts(now: now)
        let total = ok + failed
        let rateTripped = total >= config.minimumVolume && Double(failed) / Double(total) >= config.failureRateThreshold
        if rateTripped || failureRun >= config.consecutiveFailures {
            move(to: .open(until: now + config.cooldownSeconds))
        }
    }

    private mutating func move(to s: State) {
        if s.phase != state.phase { transitions += 1 }
        state = s
    }
}

/// Success and failure counts over a sliding time window, kept in fixed buckets (no per-call memory).
public struct OutcomeWindow: Sendable, Hashable {
    let bucketSeconds: Double
    var ok: [Int]
    var failed: [Int]
    var stamps: [Int64]

    public init(seconds: Double, buckets: Int) {
        bucketSeconds = max(seconds / Double(max(1, buckets)), 1e-3)
        ok = Array(repeating: 0, count: max(1, buckets))
        failed = ok
        stamps = Array(repeating: Int64.min, count: max(1, buckets))
    }

    private func slot(_ now: Double) -> (Int, Int64) {
        let n = Int64((now / bucketSeconds).rounded(.down))
        let i = Int(((n % Int64(ok.count)) + Int64(ok.count)) % Int64(ok.count))
        return (i, n)
    }

    public mutating func add(success: Bool, now: Double) {
        let (i, n) = slot(now)
        if stamps[i] != n {
            stamps[i] = n
            ok[i] = 0
            failed[i] = 0
        }
        if success { ok[i] += 1 } else { failed[i] += 1 }
    }

    /// Counts in the buckets that are still inside the window at `now`.
    public func counts(now: Double) -> (ok: Int, failed: Int) {
        let (_, n) = slot(now)
        var o = 0
        var f = 0
        for i in ok.indices where stamps[i] > n - Int64(ok.count) && stamps[i] <= n {
            o += ok[i]
            f += failed[i]
        }
        return (o, f)
    }

    public mutating func clear() {
        for i in ok.indices {
            ok[i] = 0
            failed[i] = 0
            stamps[i] = Int64.min
        }
    }
}
