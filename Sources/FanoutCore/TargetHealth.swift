// TargetHealth: passive health from real publish outcomes (success ratio and latency over a sliding window), with staleness.

/// Health of one target from what actually happened to its requests, plus optional reachability probes.
///
/// Rules (evaluated at `status(now:)`):
/// - fewer than `minimumSamples` outcomes in the window, or none for `staleAfterSeconds` → `unknown`;
/// - a failed reachability probe newer than the last success → `unhealthy`;
/// - success ratio < `unhealthyBelow` → `unhealthy`;
/// - success ratio < `degradedBelow`, or mean latency > `degradedLatencySeconds` → `degraded`;
/// - otherwise `healthy`.
///
/// Fail-open: `unknown` never causes a skip (no strategy skips it), so a target nobody has heard from lately
/// is tried rather than silently dropped; only evidence (failures, slowness, failed probes) skips a target.
///
/// Recovery: skipping a target starves it of evidence, so a skipped target still gets one trial request every
/// `trialIntervalSeconds` (`admitTrial`), and `recoveryRun` successes in a row while unhealthy clear the old
/// evidence (the target becomes `unknown`, hence eligible, until the window fills again).
public struct TargetHealth: Sendable, Hashable {
    public struct Config: Sendable, Hashable {
        public var windowSeconds: Double
        public var minimumSamples: Int
        public var staleAfterSeconds: Double
        public var unhealthyBelow: Double
        public var degradedBelow: Double
        public var degradedLatencySeconds: Double
        public var trialIntervalSeconds: Double
        public var recoveryRun: Int

        public init(
            windowSeconds: Double = 60, minimumSamples: Int = 5, staleAfterSeconds: Double = 300,
            unhealthyBelow: Double = 0.5, degradedBelow: Double = 0.9, degradedLatencySeconds: Double = 2,
            trialIntervalSeconds: Double = 5, recoveryRun: Int = 3
        ) {
            self.trialIntervalSeconds = trialIntervalSeconds
            self.recoveryRun = recoveryRun
            self.windowSeconds = windowSeconds
            self.minimumSamples = minimumSamples
            self.staleAfterSeconds = staleAfterSeconds
            self.unhealthyBelow = unhealthyBelow
            self.degradedBelow = degradedBelow
            self.degradedLatencySeconds = degradedLatencySeconds
        }
    }

    public let config: Config
    var window: OutcomeWindow
    var latencySum: [Double]
    var latencyStamps: [Int64]
    var lastSample = -Double.infinity
    var lastSuccess = -Double.infinity
    var lastProbeFailure = -Double.infinity
    var lastTrial = -Double.infinity
    var successRun = 0

    public init(config: Config = .init()) {
        self.config = config
        window = OutcomeWindow(seconds: config.windowSeconds, buckets: 12)
        latencySum = Array(repeating: 0, count: 12)
        latencyStamps = Array(repeating: Int64.min, count: 12)
    }

    public mutating func record(success: Bool, latencySeconds: Double, now: Double) {
        successRun = success ? successRun + 1 : 0
        if success && successRun == config.recoveryRun, status(now: now) == .unhealthy {
            window.clear()
            latencyStamps = Array(repeating: Int64.min, count: 12)
        }
        window.add(success: success, now: now)
        let bucket = config.windowSeconds / 12
        let n = Int64((now / bucket).rounded(.down))
        let i = Int(((n % 12) + 12) % 12)
        if latencyStamps[i] != n {
            latencyStamps[i] = n
            latencySum[i] = 0
        }
        latencySum[i] += latencySeconds
        lastSample = now
        if success { lastSuccess = now }
    }

    /// A reachability probe's result (connect and TLS only).
    public mutating func recordProbe(reachable: Bool, now: Double) {
        if reachable {
            if lastProbeFailure > lastSuccess { lastSuccess = now }
        } else {
            lastProbeFailure = now
        }
    }

    /// Whether a target that health would skip gets a trial request now (one per `trialIntervalSeconds`).
    public mutating func admitTrial(now: Double) -> Bool {
        guard now - lastTrial >= config.trialIntervalSeconds || now < lastTrial else { return false }
        lastTrial = now
        return true
    }

    public func successRatio(now: Double) -> Double? {
        let (ok, failed) = window.counts(now: now)
        return ok + failed == 0 ? nil : Double(ok) / Double(ok + failed)
    }

    public func meanLatency(now: Double) -> Double? {
        let (ok, failed) = window.counts(now: now)
        guard ok + failed > 0 else { return nil }
        let bucket = config.windowSeconds / 12
        let n = Int64((now / bucket).rounded(.down))
        var sum = 0.0
        for i in 0..<12 where latencyStamps[i] > n - 12 && latencyStamps[i] <= n { sum += latencySum[i] }
        return sum / Double(ok + failed)
    }

    public func status(now: Double) -> HealthStatus {
        if lastProbeFailure > lastSuccess && now - lastProbeFailure < config.staleAfterSeconds { return .unhealthy }
        let (ok, failed) = window.counts(now: now)
        if ok + failed < config.minimumSamples || now - lastSample > config.staleAfterSeconds { return .unknown }
        let ratio = Double(ok) / Double(ok + failed)
        if ratio < config.unhealthyBelow { return .unhealthy }
        if ratio < config.degradedBelow { return .degraded }
        if let m = meanLatency(now: now), m > config.degradedLatencySeconds { return .degraded }
        return .healthy
    }
}
