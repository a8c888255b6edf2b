// DeliveryPolicy: what a durable delivery does after an attempt — delivered, retry at a time, dead or superseded.

/// The lifecycle of one stored delivery (one alert, or one group, to one target):
///
/// | state | event | next |
/// |---|---|---|
/// | pending | claimed by a dispatcher (due, oldest unfinished of its target and key) | leased |
/// | pending | a newer state of the same (target, key) is stored | superseded |
/// | leased | attempt succeeded | delivered |
/// | leased | retryable failure, skip for health, breaker or rate limit, before the TTL | pending (due later) |
/// | leased | permanent failure, `410 Gone`, unusable payload, TTL passed, target removed or disabled | dead |
/// | leased | Rootly resolve whose create never happened (`missing_state`) | superseded |
/// | leased | lease expired (the dispatcher died) | claimable again |
/// | dead | replay | pending |
///
/// Retry delays are full-jitter exponential, `random(0, min(cap, base × 2^(attempts−1)))`, never below
/// `minimumDelaySeconds`. Worked ceilings with base 1 s and cap 30 s: attempt 1 → 1 s, 2 → 2 s, 3 → 4 s,
/// 4 → 8 s, 5 → 16 s, 6 and later → 30 s, so a target that comes back gets its backlog within about 30 s.
/// A rate-limited delivery waits one token interval (`1 / rate`), a breaker or health skip `skipDelaySeconds`;
/// neither counts as a failed attempt.
public struct DeliveryPolicy: Sendable, Hashable {
    /// How long a delivery is tried before it becomes a dead letter (default 1 h).
    public var ttlSeconds: Double
    public var backoffBaseSeconds: Double
    /// The longest wait between attempts (default 30 s).
    public var backoffCapSeconds: Double
    public var minimumDelaySeconds: Double
    /// Wait after a skip for an open breaker or bad health.
    public var skipDelaySeconds: Double
    /// How long a claimed delivery belongs to its dispatcher before another may take it (default 60 s).
    public var leaseSeconds: Double
    /// Delivered and superseded records are removed after this (default 24 h).
    public var retentionSeconds: Double

    public init(
        ttlSeconds: Double = 3600, backoffBaseSeconds: Double = 1, backoffCapSeconds: Double = 30, minimumDelaySeconds: Double = 0.05,
        skipDelaySeconds: Double = 2, leaseSeconds: Double = 60, retentionSeconds: Double = 86_400
    ) {
        self.ttlSeconds = ttlSeconds
        self.backoffBaseSeconds = backoffBaseSeconds
        self.backoffCapSeconds = backoffCapSeconds
        self.minimumDelaySeconds = minimumDelaySeconds
        self.skipDelaySeconds = skipDelaySeconds
        self.leaseSeconds = leaseSeconds
        self.retentionSeconds = retentionSeconds
    }

    /// What happens to a delivery after an attempt.
    public enum Decision: Sendable, Hashable {
        case delivered
        /// Try again at `dueAt` (seconds, the caller's clock). `countsAsAttempt` is false for waits (rate limit, breaker).
        case retry(dueAt: Double, countsAsAttempt: Bool, reason: String)
        case dead(reason: String)
        case superseded(reason: String)
    }

    /// The ceiling of the delay after `attempts` failed attempts.
    public func backoffCeiling(attempts: Int) -> Double {
        let exp = min(max(attempts - 1, 0), 30)
        return min(backoffCapSeconds, backoffBaseSeconds * Double(1 << exp))
    }

    /// Decides from one attempt's `result` (the publish report's result for this target). `attempts` counts
    /// failed attempts before this one; `expiresAt` is when the TTL ends; `ratePerSecond` is the target's
    /// rate limit, if any.
    public func decide<R: RandomNumberGenerator>(
        _ result: TargetResult, attempts: Int, now: Double, expiresAt: Double,
        ratePerSecond: Double?, rng: inout R
    ) -> Decision {
        func retry(after delay: Double, counts: Bool, _ reason: String) -> Decision {
            let due = now + max(minimumDelaySeconds, delay)
            if due >= expiresAt {
                return .dead(reason: "delivery_ttl of \(Int(ttlSeconds)) s ran out after \(attempts + (counts ? 1 : 0)) attempts; last: \(reason)")
            }
            return .retry(dueAt: due, countsAsAttempt: counts, reason: reason)
        }
        switch result.outcome {
        case .succeeded:
            return .delivered
        case .skipped:
            let reason = result.skipReason?.rawValue ?? "skipped"
            switch result.skipReason {
            case .rateLimited:
                let interval = ratePerSecond.map { 1 / max($0, 1e-6) } ?? 1
                return retry(after: interval * Double.random(in: 1...1.5, using: &rng), counts: false, "waiting for a rate-limit token")
            case .circuitOpen, .unhealthy, .degraded:
                return retry(after: skipDelaySeconds * Double.random(in: 1...1.5, using: &rng), counts: false, "target skipped: \(reason)")
            case .endpointGone:
                return .dead(reason: "the endpoint answered 410 Gone earlier; reload the configuration to send to it again")
            case .disabled:
                return .dead(reason: "the target is disabled (enabled: false)")
            case nil, .some:
                return retry(after: skipDelaySeconds, counts: false, reason)
            }
        case .failed:
            let kind = result.errorKind ?? .other
            let detail = [kind.rawValue, result.httpStatus.map { "HTTP \($0)" }, result.message].compactMap { $0 }.joined(separator: ": ")
            switch kind {
            case .missingState:
                return .superseded(reason: "no Rootly alert was created for this fingerprint, so there is nothing to resolve")
            case .endpointGone, .format, .missingSecret:
                return .dead(reason: detail)
            case .cancelled:
                return retry(after: minimumDelaySeconds, counts: false, "cancelled (shutdown); will be sent again")
            default:
                guard result.retryable else { return .dead(reason: detail) }
                let ceiling = backoffCeiling(attempts: attempts + 1)
                return retry(after: Double.random(in: 0...ceiling, using: &rng), counts: true, detail)
            }
        }
    }
}
