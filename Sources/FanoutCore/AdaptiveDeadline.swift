// AdaptiveDeadline: a per-target attempt deadline learned from observed latency (EWMA mean and deviation).

/// Learns a target's latency and proposes an attempt deadline.
///
/// Estimates: μ ← μ + α(x − μ) and v ← (1 − α)(v + α(x − μ_prev)²) (exponentially weighted mean and variance,
/// α = `alpha`), σ = √v. Until `minimumSamples` latencies were seen the configured timeout is used. Then
///
///     deadline = clamp(2·μ + 4·σ, floor, configured timeout)   — and never past the publish deadline.
///
/// A timed-out attempt is recorded as a sample equal to its deadline (a lower bound of its real latency), so a
/// target that slows down pulls its deadline up instead of failing forever.
///
/// | μ | σ | 2μ + 4σ | deadline (floor 50 ms, timeout 10 s) |
/// |---|---|---|---|
/// | 5 ms | 1 ms | 14 ms | 50 ms (floor) |
/// | 50 ms | 5 ms | 120 ms | 120 ms |
/// | 200 ms | 50 ms | 600 ms | 600 ms |
/// | 3 s | 1 s | 10 s | 10 s (the configured timeout) |
public struct AdaptiveDeadline: Sendable, Hashable {
    public struct Config: Sendable, Hashable {
        public var alpha: Double
        public var minimumSamples: Int
        public var floorSeconds: Double

        public init(alpha: Double = 0.1, minimumSamples: Int = 20, floorSeconds: Double = 0.05) {
            self.alpha = alpha
            self.minimumSamples = minimumSamples
            self.floorSeconds = floorSeconds
        }
    }

    public let config: Config
    public private(set) var mean = 0.0
    public private(set) var variance = 0.0
    public private(set) var samples = 0

    public init(config: Config = .init()) { self.config = config }

    public mutating func record(latencySeconds x: Double) {
        guard x.isFinite, x >= 0 else { return }
        if samples == 0 {
            mean = x
            variance = 0
        } else {
            let diff = x - mean
            mean += config.alpha * diff
            variance = (1 - config.alpha) * (variance + config.alpha * diff * diff)
        }
        samples += 1
    }

    public var deviation: Double { variance.squareRoot() }

    /// The learned deadline, or nil while there are too few samples.
    public var learned: Double? {
        guard samples >= config.minimumSamples else { return nil }
        return max(config.floorSeconds, 2 * mean + 4 * deviation)
    }

    /// The attempt deadline: learned (capped by the configured timeout) or the configured timeout.
    public func deadline(configured: Double) -> Double {
        guard let l = learned else { return configured }
        return min(configured, l)
    }
}
