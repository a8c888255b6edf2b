// GuardBook: every target's breaker, health, adaptive deadline, retry budget and lane, and every credential's rate
// limit; what changed comes out as events.
import DequeModule

/// The resilience knobs, with defaults suited to alert delivery.
public struct ResilienceConfig: Sendable, Hashable {
    public var breaker: CircuitBreaker.Config
    public var health: TargetHealth.Config
    public var retry: RetryPolicy
    public var deadline: AdaptiveDeadline.Config
    public var budgetRatio: Double
    public var budgetFloorPerSecond: Double
    public var budgetMaxTokens: Double
    public var breakersEnabled: Bool
    public var adaptiveDeadlines: Bool

    public init(
        breaker: CircuitBreaker.Config = .init(), health: TargetHealth.Config = .init(), retry: RetryPolicy = .init(),
        deadline: AdaptiveDeadline.Config = .init(), budgetRatio: Double = 0.2, budgetFloorPerSecond: Double = 1,
        budgetMaxTokens: Double = 10, breakersEnabled: Bool = true, adaptiveDeadlines: Bool = true
    ) {
        self.breaker = breaker
        self.health = health
        self.retry = retry
        self.deadline = deadline
        self.budgetRatio = budgetRatio
        self.budgetFloorPerSecond = budgetFloorPerSecond
        self.budgetMaxTokens = budgetMaxTokens
        self.breakersEnabled = breakersEnabled
        self.adaptiveDeadlines = adaptiveDeadlines
    }
}

/// What one target has learned.
public struct TargetGuard: Sendable, Hashable {
    public var breaker: CircuitBreaker
    public var health: TargetHealth
    public var latency: AdaptiveDeadline
    public var budget: RetryBudget
    /// The endpoint answered `410 Gone`: skip it (`endpoint_gone`) until this guard is reset (the target's
    /// configuration changed) or the publisher is recreated.
    public var endpointGone = false
    /// The health last announced in a ``GuardEvent/health(target:from:to:)`` event.
    public internal(set) var reportedHealth = HealthStatus.unknown

    init(_ c: ResilienceConfig) {
        breaker = CircuitBreaker(config: c.breaker)
        health = TargetHealth(config: c.health)
        latency = AdaptiveDeadline(config: c.deadline)
        budget = RetryBudget(ratio: c.budgetRatio, floorPerSecond: c.budgetFloorPerSecond, maxTokens: c.budgetMaxTokens)
    }
}

/// Something a target's guards did that deserves a metric or a log line. `FanoutMachine` hands these out as
/// `.observe` actions, in the order they happened; the publisher turns them into metrics and logs.
public enum GuardEvent: Sendable, Hashable {
    /// The target's circuit breaker moved (every move is its own event).
    case breaker(target: String, from: CircuitBreaker.Phase, to: CircuitBreaker.Phase)
    /// The target's health, as seen when an attempt, a probe or a health check looked at it, changed.
    case health(target: String, from: HealthStatus, to: HealthStatus)
    /// An attempt waits this long for a rate-limit token.
    case rateLimitWait(target: String, seconds: Double)
    /// A retry was refused because the target's retry budget is spent.
    case retryDeniedByBudget(target: String)
    /// The endpoint answered 410 Gone; it is skipped from now on.
    case endpointGone(target: String)
}

/// An attempt waiting for a place in its target's lane: publish `run`'s target `index`.
public struct LaneTicket: Sendable, Hashable {
    /// The publish (`FanoutMachine.runID`).
    public var run: UInt64
    /// The target's index in that publish.
    public var index: Int

    /// A ticket for target `index` of publish `run`.
    public init(run: UInt64, index: Int) {
        self.run = run
        self.index = index
    }
}

/// One target's attempts in flight across every publish, and the attempts waiting for a place (first come,
/// first served).
public struct TargetLane: Sendable {
    /// Attempts holding a place now.
    public internal(set) var inFlight = 0
    /// Attempts waiting, oldest first.
    public internal(set) var waiting = Deque<LaneTicket>()
}

/// Shared state across publishes, keyed by target name (and rate limits by credential). A value type: the
/// publisher keeps one on its queue and lends it to `FanoutMachine` calls.
public struct GuardBook: Sendable {
    public let config: ResilienceConfig
    /// Every target's guard, by name (a snapshot; built on each call).
    public var guards: [String: TargetGuard] { slots.mapValues { store[$0] } }
    /// Where each target's guard is in `store`. Guards live in an array so that reading one field of a guard
    /// reads it in place; a dictionary's getter copies the whole guard (a retain and a release per window array).
    private var slots: [String: Int] = [:]
    private var store: [TargetGuard] = []
    /// The targets' names in `store` order: a book of a few targets finds a slot by scanning these (comparing a
    /// name costs less than hashing it, and a delivery looks its target up about ten times).
    private var names: [String] = []
    public private(set) var limiters: [String: TokenBucket] = [:]
    /// Per-target in-flight lanes (targets with a limit only).
    public private(set) var lanes: [String: TargetLane] = [:]
    /// Events since the last `takeEvents()`.
    public internal(set) var events: [GuardEvent] = []

    public init(config: ResilienceConfig = .init()) { self.config = config }

    public subscript(target: String) -> TargetGuard {
        get { slot(of: target).map { store[$0] } ?? TargetGuard(config) }
        set { update(target) { $0 = newValue } }
    }

    /// Changes `target`'s guard in place. Copying a guard out and back (`var g = self[t]; …; self[t] = g`)
    /// would copy its outcome windows' arrays on every attempt (copy-on-write while two copies exist).
    mutating func update<R>(_ target: String, _ body: (inout TargetGuard) -> R) -> R {
        if let i = slot(of: target) { return body(&store[i]) }
        slots[target] = store.count
        names.append(target)
        store.append(TargetGuard(config))
        return body(&store[store.count - 1])
    }

    /// Reads `target`'s guard in place (a fresh guard when the target has none yet).
    func peek<R>(_ target: String, _ body: (borrowing TargetGuard) -> R) -> R {
        if let i = slot(of: target) { return body(store[i]) }
        return body(TargetGuard(config))
    }

    /// Where `target`'s guard is in `store`, if it has one.
    private func slot(of target: String) -> Int? {
        guard names.count <= 16 else { return slots[target] }
        for i in names.indices where names[i] == target { return i }
        return nil
    }

    public func health(_ target: String, now: Double) -> HealthStatus { peek(target) { $0.health.status(now: now) } }

    /// Hands out (and forgets) the events since the last call.
    public mutating func takeEvents() -> [GuardEvent] {
        guard !events.isEmpty else { return [] }
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// Announces `target`'s health when it differs from what was announced last.
    private mutating func noteHealth(_ target: String, _ status: HealthStatus) {
        let before = update(target) { g in
            let b = g.reportedHealth
            g.reportedHealth = status
            return b
        }
        if before != status { events.append(.health(target: target, from: before, to: status)) }
    }

    /// Runs `body` on `target`'s breaker and announces a move.
    private mutating func onBreaker<R>(_ target: String, _ body: (inout CircuitBreaker) -> R) -> R {
        let (before, after, r) = update(target) { g in
            let b = g.breaker.state.phase
            let r = body(&g.breaker)
            return (b, g.breaker.state.phase, r)
        }
        if before != after { events.append(.breaker(target: target, from: before, to: after)) }
        return r
    }

    /// The skip reason health gives this target under `strategy`, or nil to send. A target health would skip
    /// still gets a trial request every `trialIntervalSeconds`, so it can prove it recovered.
    public mutating func healthGate(_ target: String, strategy: HealthStrategy, now: Double) -> SkipReason? {
        let status = health(target, now: now)
        if status != peek(target, { $0.reportedHealth }) { noteHealth(target, status) }
        let reason: SkipReason?
        switch (strategy, status) {
        case (.publishToAll, _): reason = nil
        case (_, .unhealthy): reason = .unhealthy
        case (.skipUnhealthyAndDegraded, .degraded): reason = .degraded
        default: reason = nil
        }
        guard let reason else { return nil }
        let trial = update(target) { $0.health.admitTrial(now: now) }
        return trial ? nil : reason
    }

    public mutating func admit(_ target: String, now: Double) -> CircuitBreaker.Admission {
        guard config.breakersEnabled else { return .allowed }
        return onBreaker(target) { $0.admit(now: now) }
    }

    public mutating func reserve(key: String, target: String, perSecond: Double, burst: Int, now: Double, maxWait: Double) -> Double? {
        let w = limiters[key, default: TokenBucket(ratePerSecond: perSecond, burst: burst)].reserve(now: now, maxWait: maxWait)
        if let w, w > 0 { events.append(.rateLimitWait(target: target, seconds: w)) }
        return w
    }

    public func attemptTimeout(_ target: String, configured: Double) -> Double {
        config.adaptiveDeadlines ? peek(target) { $0.latency.deadline(configured: configured) } : configured
    }

    /// Records an attempt's outcome everywhere it matters.
    public mutating func record(
        _ target: String, outcome: CircuitBreaker.Outcome, latency: Double, timedOut: Bool,
        admission: CircuitBreaker.Admission, now: Double
    ) {
        if config.breakersEnabled { onBreaker(target) { $0.record(outcome, admission: admission, now: now) } }
        guard outcome != .neutral else { return }
        let status = update(target) { g in
            g.health.record(success: outcome == .success, latencySeconds: latency, now: now)
            if outcome == .success || timedOut { g.latency.record(latencySeconds: latency) }
            return g.health.status(now: now)
        }
        if status != peek(target, { $0.reportedHealth }) { noteHealth(target, status) }
    }

    public mutating func deposit(_ target: String, now: Double) {
        update(target) { $0.budget.deposit(now: now) }
    }

    public mutating func withdrawRetry(_ target: String, now: Double) -> Bool {
        let ok = update(target) { $0.budget.withdraw(now: now) }
        if !ok { events.append(.retryDeniedByBudget(target: target)) }
        return ok
    }

    /// Remembers that `target` asked to be sent nothing more (HTTP 410 Gone).
    public mutating func markGone(_ target: String) {
        let was = update(target) { g in
            defer { g.endpointGone = true }
            return g.endpointGone
        }
        if !was { events.append(.endpointGone(target: target)) }
    }

    /// Records an active reachability probe's result.
    public mutating func recordProbe(_ target: String, reachable: Bool, now: Double) {
        let status = update(target) { g in
            g.health.recordProbe(reachable: reachable, now: now)
            return g.health.status(now: now)
        }
        if status != peek(target, { $0.reportedHealth }) { noteHealth(target, status) }
    }

    // MARK: lanes

    /// Takes a place in `target`'s lane (at most `limit` attempts in flight across publishes), or queues
    /// `ticket` for the next free place and returns false.
    public mutating func acquireLane(_ target: String, limit: Int, ticket: LaneTicket) -> Bool {
        lanes[target, default: TargetLane()].acquire(limit: limit, ticket: ticket)
    }

    /// Gives a place back. Returns the oldest waiting ticket, which now holds the place, or nil.
    public mutating func releaseLane(_ target: String) -> LaneTicket? {
        guard lanes[target] != nil else { return nil }
        return lanes[target]!.release()
    }

    /// Takes a waiting ticket out of `target`'s queue (its publish ended first).
    public mutating func withdrawFromLane(_ target: String, ticket: LaneTicket) {
        guard lanes[target] != nil, let i = lanes[target]!.waiting.firstIndex(of: ticket) else { return }
        lanes[target]!.waiting.remove(at: i)
    }
}

extension TargetLane {
    mutating func acquire(limit: Int, ticket: LaneTicket) -> Bool {
        if inFlight < limit {
            inFlight += 1
            return true
        }
        waiting.append(ticket)
        return false
    }

    mutating func release() -> LaneTicket? {
        if let next = waiting.popFirst() { return next }
        inFlight -= 1
        return nil
    }
}
