// TokenBucket: a per-credential rate limit that hands out reservations — now, after a wait, or not within the time left.

/// `ratePerSecond` tokens per second, at most `burst` saved. A reservation takes a token now or books the next
/// one (the balance goes negative), so waiting callers are served in order.
///
/// Example, 1/s with burst 3 (Slack's webhook default here): three messages go at once, the fourth waits 1 s,
/// the fifth 2 s; a caller whose deadline is nearer than its wait is told so and books nothing.
public struct TokenBucket: Sendable, Hashable {
    public let ratePerSecond: Double
    public let burst: Double
    public private(set) var tokens: Double
    private var last: Double?

    public init(ratePerSecond: Double, burst: Int) {
        self.ratePerSecond = max(ratePerSecond, 1e-9)
        self.burst = Double(max(1, burst))
        tokens = self.burst
    }

    private mutating func refill(_ now: Double) {
        if let last, now > last { tokens = min(burst, tokens + (now - last) * ratePerSecond) }
        last = max(last ?? now, now)
    }

    /// Seconds to wait before sending (0: now), or nil when that would exceed `maxWait` (nothing is booked).
    public mutating func reserve(now: Double, maxWait: Double) -> Double? {
        refill(now)
        let wait = tokens >= 1 ? 0 : (1 - tokens) / ratePerSecond
        guard wait <= maxWait else { return nil }
        tokens -= 1
        return wait
    }
}
