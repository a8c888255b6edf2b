// LoadStats: what a load run measured for one URL — counts, statuses, error kinds and fixed-size HDR histograms.
import AlertFanout
import CurlReactor
import Histogram

/// Latencies in microseconds from 1 µs to one hour at 3 significant digits: fixed memory however long the run.
public typealias MicrosHistogram = Histogram<UInt64>

/// An empty latency histogram (1 µs to 1 h, 3 significant digits).
public func makeMicrosHistogram() -> MicrosHistogram {
    Histogram(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

/// What a run measured for one URL (or, merged, for all).
public struct LoadStats: Sendable {
    /// Requests completed, with or without a response.
    public var requests = 0
    /// Requests that ended without a response (by kind in `errorKinds`).
    public var errors = 0
    /// Response body bytes received.
    public var bytes = 0
    /// Responses by HTTP status.
    public var statuses: [Int: Int] {
        get {
            var all = statusCounts
            if runStatus >= 0 { all[runStatus, default: 0] += runCount }
            return all
        }
        set {
            statusCounts = newValue
            runStatus = -1
            runCount = 0
        }
    }
    /// Statuses counted so far but the current run of equal ones, which is counted without hashing (a load run
    /// sees one status for long stretches).
    private var statusCounts: [Int: Int] = [:]
    private var runStatus = -1
    private var runCount = 0
    /// Failures by `TransferError.Kind` raw value.
    public var errorKinds: [String: Int] = [:]
    /// Completion minus intended send time (open loop) or actual send time (closed loop).
    public var latency = makeMicrosHistogram()
    /// New connections only.
    public var connect = makeMicrosHistogram()
    /// Time to the first response byte.
    public var firstByte = makeMicrosHistogram()
    /// Open loop: actual send minus intended send (how far sending fell behind the schedule).
    public var lag = makeMicrosHistogram()

    /// Nothing measured yet.
    public init() {}

    /// Counts one completed request.
    public mutating func record(_ result: Result<HTTPResponse, TransferError>, latencyMicros: UInt64) {
        requests += 1
        _ = latency.record(max(1, min(latencyMicros, 3_600_000_000)))
        switch result {
        case .success(let r):
            if r.status != runStatus {
                if runStatus >= 0 { statusCounts[runStatus, default: 0] += runCount }
                runStatus = r.status
                runCount = 0
            }
            runCount += 1
            bytes += r.bodyBytes
            if r.newConnection, r.timings.connect > .zero { _ = connect.record(UInt64(max(1, micros(r.timings.connect)))) }
            if r.timings.firstByte > .zero { _ = firstByte.record(UInt64(max(1, micros(r.timings.firstByte)))) }
        case .failure(let e):
            errors += 1
            errorKinds[e.kind.rawValue, default: 0] += 1
        }
    }

    /// Adds another's counts and histograms (exact).
    public mutating func merge(_ o: LoadStats) {
        requests += o.requests
        errors += o.errors
        bytes += o.bytes
        var mine = statuses
        for (k, v) in o.statuses { mine[k, default: 0] += v }
        statuses = mine
        for (k, v) in o.errorKinds { errorKinds[k, default: 0] += v }
        latency.add(o.latency)
        connect.add(o.connect)
        firstByte.add(o.firstByte)
        lag.add(o.lag)
    }
}

/// The percentiles every report shows.
public let reportedPercentiles: [(String, Double)] = [("p50", 50), ("p75", 75), ("p90", 90), ("p99", 99), ("p99_9", 99.9), ("p99_99", 99.99)]

extension Histogram where Count == UInt64 {
    /// `{count, min, p50 … p99_99, max, mean}` in the histogram's unit (µs).
    public var summaryJSON: JSONValue {
        guard totalCount > 0 else { return .object([("count", .int(0))]) }
        var m: [(String, JSONValue)] = [("count", .int(Int(totalCount))), ("min", .int(Int(min)))]
        for (name, p) in reportedPercentiles { m.append((name, .int(Int(valueAtPercentile(p))))) }
        m.append(("max", .int(Int(max))))
        m.append(("mean", .double((mean * 10).rounded() / 10)))
        return .object(m)
    }

    /// Every recorded bucket as `[value, count]`: re-recording these into an empty histogram of the same
    /// configuration reproduces it exactly, which is what makes `fanout load merge` exact.
    public var bucketsJSON: JSONValue {
        var out: [JSONValue] = []
        for v in recordedValues() where v.count > 0 {
            out.append(.array([.int(Int(v.value)), .int(Int(v.count))]))
        }
        return .array(out)
    }

    /// The histogram `bucketsJSON` wrote, or nil when `v` is not one.
    public static func fromBuckets(_ v: JSONValue?) -> Histogram<UInt64>? {
        guard let items = v?.arrayValue else { return nil }
        var h = makeMicrosHistogram()
        for item in items {
            guard let pair = item.arrayValue, pair.count == 2, let value = pair[0].intValue, let count = pair[1].intValue,
                value >= 0, count >= 0
            else { return nil }
            _ = h.record(UInt64(value), count: UInt64(count))
        }
        return h
    }
}
