// LoadPlan: a validated load run — URLs with weights, request shape, loop mode and bounds; and its URL schedule.
import CurlReactor
import FanoutCore

struct WeightedURL: Sendable, Hashable {
    var url: String
    var weight: Double
}

struct LoadPlan: Sendable {
    var urls: [WeightedURL]
    var method: String
    var headers: [HTTPHeader]
    var body: [UInt8]?
    var timeout: Duration
    var http2: Bool
    var keepAlive: Bool
    var concurrency: Int
    var maxRequests: Int
    var duration: Duration
    /// False when only -n bounds the run (the duration is then a safety limit, not reported).
    var durationLimited = true
    /// Requests per second for the open loop; nil for the closed loop.
    var rate: Double?
    var seed: UInt64

    func request(_ urlIndex: Int) -> HTTPRequest {
        HTTPRequest(
            method: method, url: urls[urlIndex].url, headers: headers, body: body, timeout: timeout,
            captureHeaders: [], forbidReuse: !keepAlive, httpVersion: http2 ? .http2 : .http1_1)
    }
}

/// Which URL the i-th request goes to and, in the open loop, when it is meant to be sent. Deterministic for a
/// seed: URL choice is a weighted draw from a SplitMix64 stream; the open loop's intended send time of request
/// i is `i / rate` seconds after the start (a constant arrival rate, as wrk2 and vegeta use).
struct LoadSchedule: Sendable {
    let cumulative: [Double]
    let rate: Double?
    private var rng: SplitMix64

    init(urls: [WeightedURL], rate: Double?, seed: UInt64) {
        var sum = 0.0
        cumulative = urls.map {
            sum += $0.weight
            return sum
        }
        self.rate = rate
        rng = SplitMix64(seed: seed)
    }

    /// The next request's URL index.
    mutating func nextURL() -> Int {
        guard cumulative.count > 1 else { return 0 }
        let x = Double(rng.next() >> 11) / Double(1 << 53) * cumulative.last!
        return cumulative.firstIndex { x < $0 } ?? cumulative.count - 1
    }

    /// Seconds after the start at which request `i` (0-based) is due in the open loop.
    func intendedOffset(_ i: Int) -> Double {
        guard let rate else { return 0 }
        return Double(i) / rate
    }

    /// The same in nanoseconds, as the engine schedules it.
    func intendedNanoseconds(_ i: Int) -> UInt64 {
        guard let rate else { return 0 }
        return UInt64(Double(i) / rate * 1e9)
    }

    /// How many requests are due `elapsed` nanoseconds after the start (request i is due once i / rate s have
    /// passed, so request 0 at once); 0 in the closed loop, which has no schedule.
    func dueCount(elapsedNanoseconds elapsed: UInt64) -> Int {
        guard let rate else { return 0 }
        return Int(Double(elapsed) / 1e9 * rate) + 1
    }
}
