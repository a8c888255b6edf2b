// GuardBook: every target's breaker, health, adaptive deadline and retry budget, and every credential's rate limit.

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

    init(_ c: ResilienceConfig) {
        breaker = CircuitBreaker(config: c.breaker)
        health = TargetHealth(config: c.health)
        latency = AdaptiveDeadline(config: c.deadline)
        budget = RetryBudget(ratio: c.budgetRatio, floorPerSecond: c.budgetFloorPerSecond, maxTokens: c.budgetMaxTokens)
    }
}

/// Shared state across publishes, keyed by target name (and rate limits by credential). A value type: the
/// publisher keeps one on its queue and lends it to `FanoutMachine` calls.
public struct GuardBook: Sendable {
    public let config: ResilienceConfig
    public private(set) var guards: [String: TargetGuard] = [:]
    public private(set) var limiters: [String: TokenBucket] = [:]
    /// Counters for observability.
    public private(set) var retriesDeniedByBudget = 0
    public private(set) var rateLimitWaitsByTarget: [String: Int] = [:]

    public init(config: ResilienceConfig = .init()) { self.config = config }

    public subscript(target: String) -> TargetGuard {
        get { guards[target] ?? TargetGuard(config) }
        set { guards[target] = newValue }
    }

    /// Changes `target`'s guard in place. Copying a guard out and back (`var g = self[t]; …; self[t] = g`)
    /// would copy its outcome windows' arrays on every attempt (copy-on-write while two copies exist).
    mutating func update<R>(_ target: String, _ body: (inout TargetGuard) -> R) -> R {
        body(&guards[target, default: TargetGuard(config)])
    }

    public func health(_ target: String, now: Double) -> HealthStatus { self[target].health.status(now: now) }

    /// The skip reason health gives this target under `strategy`, or nil to send. A target health would skip
    /// still gets a trial request every `trialIntervalSeconds`, so it can prove it recovered.
    public mutating func healthGate(_ target: String, strategy: HealthStrategy, now: Double) -> SkipReason? {
        let reason: SkipReason?
        switch (strategy, health(target, now: now)) {
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
        return update(target) { $0.breaker.admit(now: now) }
    }

    public mutating func reserve(key: String, target: String, perSecond: Double, burst: Int, now: Double, maxWait: Double) -> Double? {
        let w = limiters[key, default: TokenBucket(ratePerSecond: perSecond, burst: burst)].reserve(now: now, maxWait: maxWait)
        if let w, w > 0 { rateLimitWaitsByTarget[target, default: 0] += 1 }
        return w
    }

    public func attemptTimeout(_ target: String, configured: Double) -> Double {
        config.adaptiveDeadlines ? self[target].latency.deadline(configured: configured) : configured
    }

    /// Records an attempt's outcome everywhere it matters.
    public mutating func record(
        _ target: String, outcome: CircuitBreaker.Outcome, latency: Double, timedOut: Bool,
        admission: CircuitBreaker.Admission, now: Double
    ) {
        let breakers = config.breakersEnabled
        update(target) { g in
            if breakers { g.breaker.record(outcome, admission: admission, now: now) }
            if outcome != .neutral {
                g.health.record(success: outcome == .success, latencySeconds: latency, now: now)
                if outcome == .success || timedOut { g.latency.record(latencySeconds: latency) }
            }
        }
    }

    public mutating func deposit(_ target: String, now: Double) {
        update(target) { $0.budget.deposit(now: now) }
    }

    public mutating func withdrawRetry(_ target: String, now: Double) -> Bool {
        let ok = update(target) { $0.budget.withdraw(now: now) }
        if !ok { retriesDeniedByBudget += 1 }
        return ok
    }

    /// Remembers that `target` asked to be sent nothing more (HTTP 410 Gone).
    public mutating func markGone(_ target: String) {
        update(target) { $0.endpointGone = true }
    }

    public mutating func recordProbe(_ target: String, reachable: Bool, now: Double) {
        update(target) { $0.health.recordProbe(reachable: reachable, now: now) }
    }
}
