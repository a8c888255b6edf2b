// LoadPlan: a validated load run — URLs with weights, request shape, loop mode and bounds; and its URL schedule.
import CurlReactor
import FanoutCore

/// Why a load plan, result file or log file cannot be used.
public struct LoadError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, in words meant for the user.
    public var message: String
    /// An error with this message.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// A URL and its share of the requests (weights are relative: 3 and 1 send three quarters to the first).
public struct WeightedURL: Sendable, Hashable {
    /// An http:// or https:// URL.
    public var url: String
    /// A positive, finite share.
    public var weight: Double

    /// A URL with its weight.
    public init(url: String, weight: Double) {
        self.url = url
        self.weight = weight
    }
}

/// What to send, how, and for how long. Check `problems()` (the engine refuses a plan that has any).
public struct LoadPlan: Sendable {
    /// Where requests go; each request picks one by weight (see `LoadSchedule`).
    public var urls: [WeightedURL]
    /// The HTTP method.
    public var method: String
    /// Headers sent with every request.
    public var headers: [HTTPHeader]
    /// The request body, if any.
    public var body: [UInt8]?
    /// Each request's deadline.
    public var timeout: Duration
    /// Ask for HTTP/2 (ALPN over TLS); HTTP/1.1 otherwise.
    public var http2: Bool
    /// Reuse connections (false: a new connection per request).
    public var keepAlive: Bool
    /// Requests in flight at most (the closed loop keeps exactly this many).
    public var concurrency: Int
    /// Stop after this many requests.
    public var maxRequests: Int
    /// Stop after this long.
    public var duration: Duration
    /// False when only -n bounds the run (the duration is then a safety limit, not reported).
    public var durationLimited = true
    /// Requests per second for the open loop; nil for the closed loop.
    public var rate: Double?
    /// Seeds the URL choice, so a run can be repeated exactly.
    public var seed: UInt64

    /// A plan; every argument but `urls` and `concurrency` has the default `fanout load` uses.
    public init(
        urls: [WeightedURL], method: String = "GET", headers: [HTTPHeader] = [], body: [UInt8]? = nil, timeout: Duration = .seconds(10),
        http2: Bool = false, keepAlive: Bool = true, concurrency: Int, maxRequests: Int = .max, duration: Duration = .seconds(10),
        durationLimited: Bool = true, rate: Double? = nil, seed: UInt64 = 1
    ) {
        self.urls = urls
        self.method = method
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.http2 = http2
        self.keepAlive = keepAlive
        self.concurrency = concurrency
        self.maxRequests = maxRequests
        self.duration = duration
        self.durationLimited = durationLimited
        self.rate = rate
        self.seed = seed
    }

    /// Every reason this plan cannot run, empty when it can. URLs are checked as libcurl would parse them.
    public func problems() -> [String] {
        var out: [String] = []
        if urls.isEmpty { out.append("the plan has no URL") }
        for u in urls {
            if !(u.url.hasPrefix("http://") || u.url.hasPrefix("https://")) {
                out.append("'\(u.url)' is not an http:// or https:// URL")
            } else if let why = CurlReactor.urlProblem(u.url) {
                out.append("'\(u.url)' is not a usable URL: \(why)")
            }
            if !(u.weight > 0 && u.weight.isFinite) { out.append("the weight of '\(u.url)' must be a positive number (got \(u.weight))") }
        }
        if method.isEmpty || method.contains(" ") { out.append("'\(method)' is not an HTTP method") }
        if concurrency < 1 { out.append("concurrency must be at least 1 (got \(concurrency))") }
        if maxRequests < 1 { out.append("the request count must be at least 1 (got \(maxRequests))") }
        if duration <= .zero { out.append("the duration must be positive") }
        if timeout <= .zero { out.append("the timeout must be positive") }
        if let r = rate, !(r > 0 && r.isFinite) { out.append("the rate must be a positive number of requests per second (got \(r))") }
        return out
    }

    /// The request sent to the URL at `urlIndex`.
    public func request(_ urlIndex: Int) -> HTTPRequest {
        HTTPRequest(
            method: method, url: urls[urlIndex].url, headers: headers, body: body, timeout: timeout,
            captureHeaders: [], keepResponseBody: false, forbidReuse: !keepAlive, httpVersion: http2 ? .http2 : .http1_1)
    }
}

/// Which URL the i-th request goes to and, in the open loop, when it is meant to be sent. Deterministic for a
/// seed: URL choice is a weighted draw from a SplitMix64 stream; the open loop's intended send time of request
/// i is `i / rate` seconds after the start (a constant arrival rate, as wrk2 and vegeta use).
public struct LoadSchedule: Sendable {
    let cumulative: [Double]
    /// Requests per second (open loop), or nil (closed loop).
    public let rate: Double?
    private var rng: SplitMix64

    /// The schedule of a plan's URLs, rate and seed.
    public init(urls: [WeightedURL], rate: Double?, seed: UInt64) {
        var sum = 0.0
        cumulative = urls.map {
            sum += $0.weight
            return sum
        }
        self.rate = rate
        rng = SplitMix64(seed: seed)
    }

    /// The next request's URL index.
    public mutating func nextURL() -> Int {
        guard cumulative.count > 1 else { return 0 }
        let x = Double(rng.next() >> 11) / Double(1 << 53) * cumulative.last!
        return cumulative.firstIndex { x < $0 } ?? cumulative.count - 1
    }

    /// Seconds after the start at which request `i` (0-based) is due in the open loop.
    public func intendedOffset(_ i: Int) -> Double {
        guard let rate else { return 0 }
        return Double(i) / rate
    }

    /// The same in nanoseconds, as the engine schedules it.
    public func intendedNanoseconds(_ i: Int) -> UInt64 {
        guard let rate else { return 0 }
        return UInt64(Double(i) / rate * 1e9)
    }

    /// How many requests are due `elapsed` nanoseconds after the start (request i is due once i / rate s have
    /// passed, so request 0 at once); 0 in the closed loop, which has no schedule.
    public func dueCount(elapsedNanoseconds elapsed: UInt64) -> Int {
        guard let rate else { return 0 }
        return Int(Double(elapsed) / 1e9 * rate) + 1
    }
}
