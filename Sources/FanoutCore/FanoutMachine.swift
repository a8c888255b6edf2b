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

    /// The value of the health gauge: 0 unknown, 1 healthy, 2 degraded, 3 unhealthy.
    public var gaugeValue: Double {
        switch self {
        case .unknown: return 0
        case .healthy: return 1
        case .degraded: return 2
        case .unhealthy: return 3
        }
    }
}

/// The per-alert fan-out. Events in, actions out; time (seconds, monotonic), randomness and the shared
/// `GuardBook` are passed in, nothing is owned. The publisher only carries the actions out: it sends, waits,
/// and turns `.observe` events into metrics and logs; every decision is made here.
///
/// Each target moves `planned` → (`queued` →) `inFlight` ⇄ `waiting` (retry backoff, rate-limit wait) → `done`,
/// or `planned` → `done` (skipped). `queued`: the target's lane (`Candidate.maxInFlight`, shared by every
/// publish through the `GuardBook`) is full; the attempt starts, first come first served, when another attempt
/// gives its place back (`.resume` to the publish holding the ticket, then `laneGranted`). The machine emits
/// `.complete` exactly once, when every target is `done`.
///
/// - Classification: an attempt's observation (``AttemptOutcome``) becomes a ``FailureKind``, whether it is
///   retryable and whether repeating it is safe (``FailureKind``'s table; a vendor's reading of a status comes
///   in as ``Rejection``).
///
/// - Eligibility: disabled → `skipped: disabled`; an endpoint that answered 410 Gone before (`FailureKind.endpointGone`,
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
        /// At most this many attempts to this target in flight across every publish (nil: no limit).
        public var maxInFlight: Int?

        public init(
            name: String, type: String, enabled: Bool = true, timeoutSeconds: Double? = nil,
            rateKey: String? = nil, ratePerSecond: Double? = nil, rateBurst: Int = 1, maxInFlight: Int? = nil
        ) {
            self.maxInFlight = maxInFlight
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

    /// How one attempt ended, as the publisher observed it; the machine classifies it.
    public enum AttemptOutcome: Sendable, Hashable {
        /// The vendor accepted the request. `detail`: what it returned worth keeping (a dedup key, an alert id).
        case delivered(status: Int, action: String?, detail: String?)
        /// The endpoint answered and its vendor reads the answer as `reading`. `retryAfterSeconds`: the parsed
        /// `Retry-After` header. `idempotent`: the request may be repeated (a dedup key makes a repeat harmless).
        case rejected(
            status: Int, reading: Rejection, message: String, retryAfterSeconds: Double?, idempotent: Bool,
            action: String?)
        /// No usable answer (`kind` is a transport kind, `timeout` or `cancelled`).
        case transportFailed(FailureKind, message: String, idempotent: Bool, action: String?)
        /// Nothing was sent: the request could not be built (`format`, `missing_state`, `missing_secret`).
        case notSent(FailureKind, message: String)
    }

    /// A vendor's reading of a failed answer.
    public enum Rejection: Sendable, Hashable {
        /// Sending it again will not help (bad payload, bad key).
        case permanent
        /// May succeed later (408, 425, 429, 5xx, or the vendor's own reading).
        case retryable
        /// The endpoint asked to be sent nothing more (410 Gone).
        case gone
    }

    public enum Action: Sendable, Hashable {
        /// Send attempt `attempt` (1-based) to target `index` with this deadline. The attempt holds a place in
        /// its lane until `attemptFinished` (or `cancel`).
        case send(index: Int, attempt: Int, timeoutSeconds: Double)
        /// Call `timerFired(index:)` after this many seconds (retry backoff or a rate-limit wait).
        case wait(index: Int, seconds: Double)
        /// A place in a lane went to the attempt holding `ticket` (usually another publish's): call
        /// `laneGranted(index:)` on the machine whose `runID` is `ticket.run`.
        case resume(LaneTicket)
        /// Something a target's guards did, for metrics and logs.
        case observe(GuardEvent)
        /// Every target is accounted for.
        case complete(PublishReport)
    }

    enum TargetState: Sendable, Hashable {
        case planned
        /// Waiting before `attempt`. `admission` is set when the breaker already admitted it (rate-limit wait).
        case waiting(attempt: Int, admission: CircuitBreaker.Admission?, last: TargetResult?)
        /// Admitted, waiting for a place in the target's lane.
        case queued(attempt: Int, admission: CircuitBreaker.Admission, last: TargetResult?)
        case inFlight(attempt: Int, timeoutSeconds: Double, admission: CircuitBreaker.Admission, sentAt: Double)
        case done(TargetResult)
    }

    public let candidates: [Candidate]
    public let options: Options
    public let startedAt: Double
    /// Names this publish in lane tickets (unique among the publishes sharing a `GuardBook`).
    public let runID: UInt64
    let alertName: String
    let fingerprint: String
    let status: String
    private(set) var states: [TargetState]
    private(set) var completed = false
    /// The shortest time worth starting an attempt with (the one deadline floor: also after a lane wait).
    public static let minimumAttemptSeconds = 0.005

    public init(
        alertName: String, fingerprint: String, status: String, candidates: [Candidate], options: Options, now: Double,
        runID: UInt64 = 0
    ) {
        self.runID = runID
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
    public mutating func start(now: Double, book: inout GuardBook) -> [Action] {
        var actions: [Action] = []
        actions.reserveCapacity(candidates.count + 1)
        for (i, c) in candidates.enumerated() {
            if !c.enabled {
                states[i] = .done(skipped(i, .disabled, now: now))
                continue
            }
            if book.peek(c.name, { $0.endpointGone }) {
                states[i] = .done(skipped(i, .endpointGone, now: now))
                continue
            }
            if let reason = book.healthGate(c.name, strategy: options.strategy, now: now) {
                states[i] = .done(skipped(i, reason, now: now))
                continue
            }
            if let a = attempt(i, number: 1, admission: nil, last: nil, now: now, book: &book) { actions.append(a) }
        }
        actions += completionIfDone(now: now)
        return observed(actions, &book)
    }

    /// A `.wait` has elapsed.
    public mutating func timerFired(index i: Int, now: Double, book: inout GuardBook) -> [Action] {
        guard i >= 0, i < states.count, case .waiting(let n, let admission, let last) = states[i] else { return [] }
        let next = attempt(i, number: n, admission: admission, last: last, now: now, book: &book)
        return observed((next.map { [$0] } ?? []) + completionIfDone(now: now), &book)
    }

    /// The lane place this publish's target `index` waited for is its now (`.resume`). Starts the attempt with
    /// what is left of the deadline, or ends it as `timeout` (and passes the place on) when too little is left.
    public mutating func laneGranted(index i: Int, now: Double, book: inout GuardBook) -> [Action] {
        guard i >= 0, i < states.count, case .queued(let n, let admission, let last) = states[i] else {
            // Not waiting (any more): the place is not needed here.
            guard i >= 0, i < candidates.count else { return [] }
            return observed(releaseLane(i, book: &book), &book)
        }
        let c = candidates[i]
        let left = deadline - now
        guard left >= FanoutMachine.minimumAttemptSeconds else {
            book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: admission, now: now)
            states[i] = .done(
                TargetResult(
                    target: c.name, type: c.type, outcome: .failed, errorKind: .timeout,
                    message: "the publish deadline passed while waiting for a slot to \(c.name)", attempts: last?.attempts ?? n - 1,
                    retryable: true, durationSeconds: elapsed(now), deadlineSeconds: last?.deadlineSeconds))
            return observed(releaseLane(i, book: &book) + completionIfDone(now: now), &book)
        }
        return observed([begin(i, number: n, admission: admission, now: now, book: &book)], &book)
    }

    /// Records how an attempt ended, and decides whether to retry.
    public mutating func attemptFinished<R: RandomNumberGenerator>(
        index i: Int, outcome: AttemptOutcome, now: Double,
        book: inout GuardBook, rng: inout R
    ) -> [Action] {
        guard i >= 0, i < states.count, case .inFlight(let n, let timeout, let admission, let sentAt) = states[i] else { return [] }
        let c = candidates[i]
        let latency = max(0, now - sentAt)
        let freed = releaseLane(i, book: &book)
        switch Classified(outcome) {
        case .delivered(let status, let action, let detail):
            book.record(c.name, outcome: .success, latency: latency, timedOut: false, admission: admission, now: now)
            states[i] = .done(
                TargetResult(
                    target: c.name, type: c.type, outcome: .succeeded, httpStatus: status, attempts: n,
                    durationSeconds: elapsed(now), deadlineSeconds: timeout, action: action, detail: detail))
            let done = completionIfDone(now: now)
            return observed(freed.isEmpty ? done : freed + done, &book)  // `[] + done` would copy `done`
        case .failed(let kind, let status, let message, let retryable, let safe, let retryAfter, let action):
            return observed(
                freed
                    + failed(
                        i, attempt: n, timeout: timeout, admission: admission, latency: latency, kind: kind, status: status,
                        message: message, retryable: retryable, safe: safe, retryAfter: retryAfter, action: action, now: now,
                        book: &book, rng: &rng), &book)
        }
    }

    /// A failed attempt: recorded, then retried or done.
    private mutating func failed<R: RandomNumberGenerator>(
        _ i: Int, attempt n: Int, timeout: Double, admission: CircuitBreaker.Admission, latency: Double, kind: FailureKind,
        status: Int?, message: String, retryable: Bool, safe: Bool, retryAfter: Double?, action: String?, now: Double,
        book: inout GuardBook, rng: inout R
    ) -> [Action] {
        let c = candidates[i]
        let cancelled = kind == .cancelled
        let timedOut = kind == .timeout
        // Failures decided on this side (no stored Rootly id, a payload that cannot be built, a full queue)
        // say nothing about the target: they must not open its breaker or mark it unhealthy.
        if kind == .endpointGone { book.markGone(c.name) }
        book.record(
            c.name, outcome: kind.isLocal ? .neutral : .failure, latency: timedOut ? timeout : latency,
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

    /// Ends every target still waiting, queued or in flight as failed with kind `cancelled`.
    public mutating func cancel(now: Double, book: inout GuardBook) -> [Action] {
        var actions: [Action] = []
        for i in states.indices {
            let c = candidates[i]
            switch states[i] {
            case .inFlight(let n, let timeout, let admission, _):
                book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: admission, now: now)
                states[i] = .done(
                    TargetResult(
                        target: c.name, type: c.type, outcome: .failed, errorKind: .cancelled,
                        message: "the publish was cancelled", attempts: n, retryable: true,
                        durationSeconds: elapsed(now), deadlineSeconds: timeout))
                actions += releaseLane(i, book: &book)
            case .waiting(let n, let admission, let last):
                if let admission { book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: admission, now: now) }
                states[i] = .done(
                    TargetResult(
                        target: c.name, type: c.type, outcome: .failed, errorKind: .cancelled,
                        message: "the publish was cancelled", attempts: last?.attempts ?? n - 1, retryable: true,
                        durationSeconds: elapsed(now), deadlineSeconds: last?.deadlineSeconds))
            case .queued(let n, let admission, let last):
                book.withdrawFromLane(c.name, ticket: LaneTicket(run: runID, index: i))
                book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: admission, now: now)
                states[i] = .done(
                    TargetResult(
                        target: c.name, type: c.type, outcome: .failed, errorKind: .cancelled,
                        message: "the publish was cancelled", attempts: last?.attempts ?? n - 1, retryable: true,
                        durationSeconds: elapsed(now), deadlineSeconds: last?.deadlineSeconds))
            case .planned, .done:
                break
            }
        }
        return observed(actions + completionIfDone(now: now), &book)
    }

    // MARK: - Internals

    /// Starts attempt `number` now (`.send`), after a rate-limit wait (`.wait`), or not at all (nil). One action
    /// at most, so no array per attempt.
    private mutating func attempt(
        _ i: Int, number n: Int, admission given: CircuitBreaker.Admission?, last: TargetResult?,
        now: Double, book: inout GuardBook
    ) -> Action? {
        let c = candidates[i]
        let left = deadline - now
        // Another publish learned meanwhile that the endpoint is gone: no retry, no further wait.
        if book.peek(c.name, { $0.endpointGone }) {
            if let given { book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: given, now: now) }
            states[i] = .done(last ?? skipped(i, .endpointGone, now: now))
            return nil
        }
        guard left >= FanoutMachine.minimumAttemptSeconds else {
            if let given { book.record(c.name, outcome: .neutral, latency: 0, timedOut: false, admission: given, now: now) }
            states[i] = .done(
                last
                    ?? TargetResult(
                        target: c.name, type: c.type, outcome: .failed, errorKind: .timeout,
                        message: "the publish deadline passed before the attempt", attempts: n - 1,
                        retryable: true, durationSeconds: elapsed(now)))
            return nil
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
                return nil
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
                    return nil
                }
                if wait > 0 {
                    states[i] = .waiting(attempt: n, admission: a, last: last)
                    return .wait(index: i, seconds: wait)
                }
            }
        }
        if n == 1 { book.deposit(c.name, now: now) }
        let admitted = admission ?? .allowed
        if let limit = c.maxInFlight, !book.acquireLane(c.name, limit: limit, ticket: LaneTicket(run: runID, index: i)) {
            states[i] = .queued(attempt: n, admission: admitted, last: last)
            return nil
        }
        return begin(i, number: n, admission: admitted, now: now, book: &book)
    }

    /// Attempt `n` leaves now (its lane place, if any, is held).
    private mutating func begin(
        _ i: Int, number n: Int, admission: CircuitBreaker.Admission, now: Double, book: inout GuardBook
    ) -> Action {
        let c = candidates[i]
        let timeout = min(book.attemptTimeout(c.name, configured: c.timeoutSeconds ?? options.defaultTimeoutSeconds), deadline - now)
        states[i] = .inFlight(attempt: n, timeoutSeconds: timeout, admission: admission, sentAt: now)
        return .send(index: i, attempt: n, timeoutSeconds: timeout)
    }

    /// Gives target `i`'s lane place back; a waiting attempt that gets it is resumed.
    private func releaseLane(_ i: Int, book: inout GuardBook) -> [Action] {
        guard candidates[i].maxInFlight != nil, let next = book.releaseLane(candidates[i].name) else { return [] }
        return [.resume(next)]
    }

    /// `actions`, after the guards' events of this step.
    private func observed(_ actions: [Action], _ book: inout GuardBook) -> [Action] {
        let events = book.takeEvents()
        guard !events.isEmpty else { return actions }
        return events.map(Action.observe) + actions
    }

    /// The least time worth giving an attempt: the target's usual latency, doubled (at least 50 ms, at most its
    /// timeout), so a wait or a retry that would leave less than that is not started.
    func usefulAttempt(_ c: Candidate, book: GuardBook) -> Double {
        let timeout = c.timeoutSeconds ?? options.defaultTimeoutSeconds
        let typical = book.peek(c.name) { $0.latency.samples > 0 ? 2 * $0.latency.mean : 0.05 }
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

    /// An observation, classified: the failure kind, whether it is retryable and whether repeating is safe.
    enum Classified {
        case delivered(status: Int, action: String?, detail: String?)
        case failed(
            kind: FailureKind, status: Int?, message: String, retryable: Bool, safe: Bool, retryAfter: Double?,
            action: String?)

        init(_ o: AttemptOutcome) {
            switch o {
            case .delivered(let status, let action, let detail):
                self = .delivered(status: status, action: action, detail: detail)
            case .rejected(let status, .retryable, let message, let retryAfter, let idempotent, let action):
                self = .failed(
                    kind: .httpStatus, status: status, message: message, retryable: true,
                    safe: idempotent || RetryPolicy.provesNotProcessed(.httpStatus, status: status), retryAfter: retryAfter,
                    action: action)
            case .rejected(let status, .permanent, let message, _, _, let action):
                self = .failed(
                    kind: .httpStatus, status: status, message: message, retryable: false, safe: false, retryAfter: nil,
                    action: action)
            case .rejected(let status, .gone, let message, _, _, let action):
                self = .failed(
                    kind: .endpointGone, status: status, message: message, retryable: false, safe: false, retryAfter: nil,
                    action: action)
            case .transportFailed(let kind, let message, let idempotent, let action):
                self = .failed(
                    kind: kind, status: nil, message: message, retryable: kind.isRetryableTransport,
                    safe: idempotent || RetryPolicy.provesNotProcessed(kind, status: nil), retryAfter: nil, action: action)
            case .notSent(let kind, let message):
                self = .failed(
                    kind: kind, status: nil, message: message, retryable: false, safe: false, retryAfter: nil, action: nil)
            }
        }
    }

    private mutating func completionIfDone(now: Double) -> [Action] {
        guard !completed else { return [] }
        // Called after every attempt: look before building anything (the results array is made once, at the end).
        for i in states.indices {  // in place: no copy of each state
            guard case .done = states[i] else { return [] }
        }
        var results: [TargetResult] = []
        results.reserveCapacity(states.count)
        for case .done(let r) in states { results.append(r) }
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
