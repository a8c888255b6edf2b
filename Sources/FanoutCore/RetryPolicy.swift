// RetryPolicy: which failures are retried, full-jitter exponential backoff, Retry-After parsing and the retry budget.

/// When and how soon to try again.
///
/// Classification (one place for every target type; formatters add the vendor's own reading of statuses, e.g.
/// Standard Webhooks targets also retry 3xx and other 4xx and stop at 410):
/// 2xx success; 408, 425, 429 and 5xx retryable; refused, reset, DNS and timeouts retryable; other 4xx and
/// malformed requests permanent. A request is repeated only when that is safe: the formatter marked it
/// idempotent (PagerDuty dedup key, Rootly deduplication key, webhook idempotency key, Alertmanager's own
/// retry semantics), or the failure proves it was not processed (refused, DNS, connect timeout, 429).
///
/// Backoff is "full jitter": a uniform draw from `0 … min(capSeconds, baseSeconds × 2^(attempt−1))`, never
/// less than `Retry-After` when the vendor sent one. With the defaults (base 0.1 s, cap 2 s):
///
/// | after attempt | upper bound of the draw |
/// |---|---|
/// | 1 | 0.1 s |
/// | 2 | 0.2 s |
/// | 3 | 0.4 s |
/// | 5 | 1.6 s |
/// | 6+ | 2 s (cap) |
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts: Int
    public var baseSeconds: Double
    public var capSeconds: Double

    public init(maxAttempts: Int = 3, baseSeconds: Double = 0.1, capSeconds: Double = 2) {
        self.maxAttempts = maxAttempts
        self.baseSeconds = baseSeconds
        self.capSeconds = capSeconds
    }

    /// The upper bound of the backoff draw after `attempt` (1-based).
    public func backoffCeiling(afterAttempt attempt: Int) -> Double {
        let exp = min(max(attempt - 1, 0), 30)
        return min(capSeconds, baseSeconds * Double(1 << exp))
    }

    /// A full-jitter delay after `attempt`.
    public func backoff<R: RandomNumberGenerator>(afterAttempt attempt: Int, rng: inout R) -> Double {
        let ceiling = backoffCeiling(afterAttempt: attempt)
        return ceiling <= 0 ? 0 : Double.random(in: 0...ceiling, using: &rng)
    }

    /// HTTP statuses worth retrying.
    public static func isRetryableStatus(_ status: Int) -> Bool {
        status == 408 || status == 425 || status == 429 || (500...599).contains(status)
    }

    /// Failures that prove the request was not processed, so even a non-idempotent request may be repeated:
    /// the transport kinds of ``FailureKind/provesNotProcessed``, and HTTP 429.
    public static func provesNotProcessed(_ kind: FailureKind, status: Int?) -> Bool {
        status == 429 || kind.provesNotProcessed
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date in IMF-fixdate, RFC 850 or asctime form.
public enum RetryAfter {
    /// Seconds to wait from `nowEpochSeconds`, or nil when the value is malformed. Dates in the past give 0.
    public static func seconds(_ value: String, nowEpochSeconds: Double) -> Double? {
        let v = value.trimmingSpaces
        if !v.isEmpty, v.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            return Double(v.prefix(9)).map { $0 }  // absurdly large values are capped by the caller's deadline
        }
        guard let epoch = httpDate(v) else { return nil }
        return max(0, epoch - nowEpochSeconds)
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Seconds since the epoch of an HTTP-date, or nil.
    public static func httpDate(_ s: String) -> Double? {
        let parts = s.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var day: Int?
        var month: Int?
        var year: Int?
        var time: String?
        if parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT" {  // Sun, 06 Nov 1994 08:49:37 GMT
            day = Int(parts[1])
            month = months.firstIndex(of: parts[2]).map { $0 + 1 }
            year = Int(parts[3])
            time = parts[4]
        } else if parts.count == 4, parts[0].hasSuffix(","), parts[3] == "GMT" {  // Sunday, 06-Nov-94 08:49:37 GMT
            let d = parts[1].split(separator: "-").map(String.init)
            guard d.count == 3, let yy = Int(d[2]) else { return nil }
            day = Int(d[0])
            month = months.firstIndex(of: d[1]).map { $0 + 1 }
            year = yy < 70 ? 2000 + yy : 1900 + yy
            time = parts[2]
        } else if parts.count == 5 {  // Sun Nov  6 08:49:37 1994
            month = months.firstIndex(of: parts[1]).map { $0 + 1 }
            day = Int(parts[2])
            time = parts[3]
            year = Int(parts[4])
        }
        guard let day, let month, let year, let time, (1...31).contains(day) else { return nil }
        let t = time.split(separator: ":").compactMap { Int($0) }
        guard t.count == 3, t[0] < 24, t[1] < 60, t[2] <= 60 else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86400 + t[0] * 3600 + t[1] * 60 + t[2])
    }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}

/// Caps retries so a failing target cannot multiply load: each first attempt deposits `ratio` tokens, time
/// adds `floorPerSecond`, the balance never exceeds `maxTokens`, and each retry spends one token.
///
/// | traffic to a target that always fails | retries allowed |
/// |---|---|
/// | 100 requests/s | ≈ 20/s (20 % of requests) + 1/s floor |
/// | 1 request/s | ≈ 0.2/s + 1/s floor ≈ 1.2/s |
/// | idle for a minute, then a burst | at most `maxTokens` (10) at once |
public struct RetryBudget: Sendable, Hashable {
    public var ratio: Double
    public var floorPerSecond: Double
    public var maxTokens: Double
    public private(set) var tokens: Double
    private var last: Double?

    public init(ratio: Double = 0.2, floorPerSecond: Double = 1, maxTokens: Double = 10) {
        self.ratio = ratio
        self.floorPerSecond = floorPerSecond
        self.maxTokens = maxTokens
        tokens = maxTokens
    }

    private mutating func refill(_ now: Double) {
        if let last, now > last { tokens = min(maxTokens, tokens + (now - last) * floorPerSecond) }
        last = max(last ?? now, now)
    }

    /// A first attempt was sent.
    public mutating func deposit(now: Double) {
        refill(now)
        tokens = min(maxTokens, tokens + ratio)
    }

    /// Spends a token for one retry; false when the budget is exhausted.
    public mutating func withdraw(now: Double) -> Bool {
        refill(now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
