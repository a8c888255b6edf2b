// FanoutMachine: the pure per-alert fan-out state machine — eligibility, breakers, rate limits, adaptive deadlines,
// retries, and exactly one report.

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

/// The per-alert fan-out. Events in, actions out; time (seconds, monotonic), randomness and the shared
/// `GuardBook` are passed in, nothing is owned.
///
/// Each target moves `planned` → `waiting`/`inFlight` ⇄ `waiting` (retry backoff, rate-limit wait) → `done`,
/// or `planned` → `done` (skipped). The machine emits `.complete` exactly once, when every target is `done`.
///
/// - Eligibility: disabled → `skipped: disabled`; an endpoint that answered 410 Gone before (`endpointGoneKind`,
///   remembered in the `GuardBook`) → `endpoint_gone`; health per strategy → `unhealthy`/`degraded` (but one
///   trial request per trial interval goes through); an open breaker → `circuit_open`; a rate limit whose wait
///   does not fit the deadline → `rate_limited` (retryable: the limit delays the delivery, it does not refuse it).
/// - Deadlines: an attempt gets `min(adaptive or configured timeout, what is left of the publish deadline)`;
///   a target that runs out of time is `failed: timeout`, never dropped.
/// - Retries: retryable failures that are safe to repeat are retried after `max(Retry-After, full-jitter
///   backoff)` while attempts, the retry budget and the deadline allow.
public struct FanoutMachine: Sendable {
    public struct Candidate: Sendable, Hashable {
        public var name: String
        public var type: String
        public var enabled: Bool
        /// This target's configured attempt timeout.
        public var timeoutSeconds: Double?
        /// Rate limit: bucket key (per credential), tokens per second and burst.
        public var rateKey: String?
        public var ratePerSecond: Double?
        public var rateBurst: Int

        public init(
            name: String, type: String, enabled: Bool = true, timeoutSeconds: Double? = nil,
            rateKey: String? = nil, ratePerSecond: Double? = nil, rateBurst: Int = 1
        ) {
            self.name = name
            self.type = type
            self.enabled = enabled
            self.timeoutSeconds = timeoutSeconds
            self.rateKey = rateKey
            self.ratePerSecond = ratePerSecond
            self.rateBurst = rateBurst
        }
    }

    public struct Options: Sendable, Hashable {
        public var deadlineSeconds: Double
        public var strategy: HealthStrategy
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
        /// `safeToRepeat`: the request is idempotent or provably unprocessed. `retryAfterSeconds`: parsed header.
        case failed(
            kind: String, status: Int?, message: String, retryable: Bool, safeToRepeat: Bool,
            retryAfterSeconds: Double?, action: String?)
    }

    public enum Action: Sendable, Hashable {
        /// Send attempt `attempt` (1-based) to target `index` with this deadline.
        case send(index: Int, attempt: Int, timeoutSeconds: Double)
        /// Call `timerFired(index:)` after this many seconds (retry backoff or a rate-limit wait).
        case wait(index: Int, seconds: Double)
        /// Every target is accounted for.
        case complete(PublishReport)
    }

    enum TargetState: Sendable, Hashable {
        case planned
        /// Waiting before `attempt`. `admission` is set when the breaker already admitted it (rate-limit wait).
        case waiting(attempt: Int, admission: CircuitBreaker.Admission?, last: TargetResult?)
        case inFlight(attempt: Int, timeoutSeconds: Double, admission: CircuitBreaker.Admission, sentAt: Double)
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
    /// The shortest time worth starting an attempt with.
    static let minimumAttemptSeconds = 0.005

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
    public var isComplete: Bool { completed }

    /// Targets with an attempt in flight.
    public var inFlightIndices: [Int] {
        states.indices.filter { if case .inFlight = states[$0] { return true } else { return false } }
    }

    /// Plans every target: skips and first attempts.
    public mutating func start<R: RandomNumberGenerator>(now: Double, book: inout GuardBook, rng: inout R) -> [Action] {
        var actions: [Action] = []
        for (i, c) in candidates.enumerated() {
            if !c.enabled {
                states[i] = .done(skipped(i, .disabled, now: now))
                continue
            }
            if book[c.name].endpointGone {
                states[i] = .done(skipped(i, .endpointGone, now: now))
                continue
            }
            if let reason = book.healthGate(c.name, strategy: options.strategy, now: now) {
                states[i] = .done(skipped(i, reason, now: now))
                continue
            }
            actions += attempt(i, number: 1, admission: nil, last: nil, now: now, book: &book)
        }
        return actions + completionIfDone(now: now)
    }

    /// A `.wait` has elapsed.
    public mutating func timerFired<R: RandomNumberGenerator>(index i: Int, now: Double, book: inout GuardBook, rng: inout R) -> [Action] {
        guard i >= 0, i < states.count, case .waiting(let n, let admission, let last) = states[i] else { return [] }
        return attempt(i, number: n, admission: admission, last: last, now: now, book: &book) + completionIfDone(now: now)
    }

    /// Failure kinds found before a request left the process; they do not count against the target.
    public static let localFailureKinds: Set<String> = ["format", "missing_state", "missing_secret"]

    /// The failure kind of an attempt the endpoint answered with "gone" (HTTP 410 from a Standard Webhooks
    /// receiver). The target is then remembered as gone and skipped by later attempts and publishes.
    public static let endpointGoneKind = "endpoint_gone"

    /// Records how an attempt ended, and decides whether to retry.
    public mutating func attemptFinished<R: RandomNumberGenerator>(
        index i: Int, outcome: AttemptOutcome, now: Double,
        book: inout GuardBook, rng: inout R
    ) -> [Action] {
        guard i >= 0, i < states.count, case .inFlight(let n, let timeout, let admission, let sentAt) = states[i] else { return [] }
        let c = candidates[i]
        let latency = max(0, now - sentAt)
        switch outcome {
        case .delivered(let status, let action, let detail):
            book.record(c.name, outcome: .success, latency: latency, timedOut: false, admission: admission, now: now)
            states[i] = .done(
                TargetResult(
                    target: c.name, type: c.type, outcome: .succeeded, httpStatus: status, attempts: n,
                    durationSeconds: elapsed(now), deadlineSeconds: timeout, action: action, detail: detail))
            return completionIfDone(now: now)
        case .failed(let kind, let status, let message, let retryable, let safe, let retryAfter, let action):
            let cancelled = kind == "cancelled"
            let timedOut = kind == "timeout"
            // Failures decided before anything was sent (no stored Rootly id, a payload that cannot be built) say
            // nothing about the target: they must not open its breaker or mark it unhealthy.
            let local = FanoutMachine.localFailureKinds.contains(kind)
            if kind == FanoutMachine.endpointGoneKind { book.markGone(c.name) }
            book.record(
                c.name, outcome: cancelled || local ? .neutral : .failure, latency: timedOut ? timeout : latency,
                timedOut: timedOut, admission: admission, now: now)
            var result = TargetResult(
                target: c.name, type: c.type, outcome: .failed, errorKind: kind, httpStatus: status,
                message: message, attempts: n, retryable: retryable, durationSeconds: elapsed(now),
                deadlineSeconds: timeout, action: action)
            guard retryable, safe, !cancelled else {
                states[i] = .done(result)
                return completionIfDone(now: now)
            }
            let left = deadline - now
            guard n < book.config.retry.maxAttempts else {
                states[i] = .done(result)
                return completionIfDone(now: now)
            }
            var delay = book.config.retry.backoff(afterAttempt: n, rng: &rng)
            if let ra = retryAfter {
                guard ra + usefulAttempt(c, book: book) <= left else {
                    result.message = "\(message) (Retry-After \(format(ra)) s exceeds the \(format(max(0, left))) s left)"
                    states[i] = .done(result)
                    return completionIfDone(now: now)
                }
                delay = max(delay, ra)
            }
            let useful = usefulAttempt(c, book: book)
            if retryAfter == nil { delay = min(delay, max(0, left - useful)) }
            guard left - delay >= useful else {
                states[i] = .done(result)
                return completionIfDone(now: now)
            }
            guard book.withdrawRetry(c.name, now: now) else {
                result.message = "\(message) (retry budget exhausted)"
                states[i] = .done(result)
                return completionIfDone(now: now)
            }
            states[i] = .waiting(attempt: n + 1, admission: nil, last: result)
            return [.wait(index: i, seconds: delay)]
        }
    }

    /// Ends every target still waiting or in flight as failed with kind `cancelled`.
    public mutating func cancel(now: Double, book: inout GuardBook) -> [Action] {
        for i in states.indices {
            let c = candidates[i]
            switch states[i] {
            case .inFlight(let n, let timeout, let admission, _):
                book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: admission, now: now)
                states[i] = .done(
                    TargetResult(
                        target: c.name, type: c.type, outcome: .failed, errorKind: "cancelled",
                        message: "the publish was cancelled", attempts: n, retryable: true,
                        durationSeconds: elapsed(now), deadlineSeconds: timeout))
            case .waiting(let n, let admission, let last):
                if let admission { book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: admission, now: now) }
                states[i] = .done(
                    TargetResult(
                        target: c.name, type: c.type, outcome: .failed, errorKind: "cancelled",
                        message: "the publish was cancelled", attempts: last?.attempts ?? n - 1, retryable: true,
                        durationSeconds: elapsed(now), deadlineSeconds: last?.deadlineSeconds))
            case .planned, .done:
                break
            }
        }
        return completionIfDone(now: now)
    }

    // MARK: - Internals

    /// Starts attempt `number` now, after a rate-limit wait, or not at all.
    private mutating func attempt(
        _ i: Int, number n: Int, admission given: CircuitBreaker.Admission?, last: TargetResult?,
        now: Double, book: inout GuardBook
    ) -> [Action] {
        let c = candidates[i]
        let left = deadline - now
        // Another publish learned meanwhile that the endpoint is gone: no retry, no further wait.
        if book[c.name].endpointGone {
            if let given { book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: given, now: now) }
            states[i] = .done(last ?? skipped(i, .endpointGone, now: now))
            return []
        }
        guard left >= FanoutMachine.minimumAttemptSeconds else {
            if let given { book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: given, now: now) }
            states[i] = .done(
                last
                    ?? TargetResult(
                        target: c.name, type: c.type, outcome: .failed, errorKind: "timeout",
                        message: "the publish deadline passed before the attempt", attempts: n - 1,
                        retryable: true, durationSeconds: elapsed(now)))
            return []
        }
        var admission = given
        if admission == nil {
            let a = book.admit(c.name, now: now)
            if case .rejected = a {
                states[i] = .done(
                    last.map { r in
                        var r = r
                        r.message = (r.message ?? "") + " (circuit opened before the retry)"
                        return r
                    } ?? skipped(i, .circuitOpen, now: now))
                return []
            }
            admission = a
            // Rate limit: wait if it fits the deadline, else give up on this target.
            if let key = c.rateKey, let rate = c.ratePerSecond {
                guard
                    let wait = book.reserve(
                        key: key, target: c.name, perSecond: rate, burst: c.rateBurst, now: now,
                        maxWait: left - usefulAttempt(c, book: book))
                else {
                    book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: a, now: now)
                    states[i] = .done(last ?? skipped(i, .rateLimited, now: now))
                    return []
                }
                if wait > 0 {
                    states[i] = .waiting(attempt: n, admission: a, last: last)
                    return [.wait(index: i, seconds: wait)]
                }
            }
        }
        if n == 1 { book.deposit(c.name, now: now) }
        let timeout = min(book.attemptTimeout(c.name, configured: c.timeoutSeconds ?? options.defaultTimeoutSeconds), left)
        states[i] = .inFlight(attempt: n, timeoutSeconds: timeout, admission: admission ?? .allowed, sentAt: now)
        return [.send(index: i, attempt: n, timeoutSeconds: timeout)]
    }

    /// The least time worth giving an attempt: the target's usual latency, doubled (at least 50 ms, at most its
    /// timeout), so a wait or a retry that would leave less than that is not started.
    func usefulAttempt(_ c: Candidate, book: GuardBook) -> Double {
        let timeout = c.timeoutSeconds ?? options.defaultTimeoutSeconds
        let l = book[c.name].latency
        let typical = l.samples > 0 ? 2 * l.mean : 0.05
        return min(timeout, max(0.05, typical))
    }

    private func elapsed(_ now: Double) -> Double { max(0, now - startedAt) }

    private func skipped(_ i: Int, _ reason: SkipReason, now: Double) -> TargetResult {
        TargetResult(
            target: candidates[i].name, type: candidates[i].type, outcome: .skipped, skipReason: reason,
            message: reason == .endpointGone
                ? "the endpoint answered 410 Gone to an earlier delivery; it is skipped until its configuration changes or the publisher restarts" : nil,
            retryable: reason == .rateLimited, durationSeconds: elapsed(now))
    }

    private mutating func completionIfDone(now: Double) -> [Action] {
        guard !completed else { return [] }
        var results: [TargetResult] = []
        for s in states {
            guard case .done(let r) = s else { return [] }
            results.append(r)
        }
        completed = true
        return [
            .complete(
                PublishReport(
                    alertName: alertName, fingerprint: fingerprint, status: status, results: results,
                    durationSeconds: elapsed(now), deadlineSeconds: options.deadlineSeconds))
        ]
    }
}

private func format(_ s: Double) -> String {
    let r = (s * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
}
