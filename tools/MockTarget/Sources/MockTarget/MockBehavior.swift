// MockBehavior: the scripted ways a MockTarget route answers — status, delay, hang, close, reset, slow body, flapping.

/// What a route does with a request. Behaviours compose: `flap` and `sequence` pick another behaviour per request.
public indirect enum MockBehavior: Sendable {
    /// Answer `status` with `body` and `headers` after `delay`.
    case respond(status: Int = 200, body: [UInt8] = Array("ok".utf8), headers: [(String, String)] = [], delay: Duration = .zero)
    /// Never answer; the connection stays open until the client gives up or the server stops.
    case hang
    /// Close the connection without answering (a clean FIN).
    case close
    /// Reset the connection without answering (RST via `SO_LINGER` 0).
    case reset
    /// Send the head and `sentBytes` of a `totalBytes` body, then reset.
    case resetMidBody(sentBytes: Int = 10, totalBytes: Int = 1000)
    /// Send a `chunks × chunkBytes` body one chunk every `interval`.
    case slowBody(chunks: Int = 5, chunkBytes: Int = 10, interval: Duration = .milliseconds(100))
    /// Every `every`-th request to this route (counting from 1) gets `failure`; the others get `success`.
    case flap(every: Int, failure: MockBehavior, success: MockBehavior)
    /// The n-th request to this route gets the n-th behaviour; the last one repeats.
    case sequence([MockBehavior])
    /// A behaviour chosen by code from the recorded request (validators, vendor simulations).
    case custom(@Sendable (RecordedRequest) -> MockBehavior)

    /// `status` with a `Retry-After` header.
    public static func retryAfter(status: Int = 429, value: String = "1", body: String = "slow down") -> MockBehavior {
        .respond(status: status, body: Array(body.utf8), headers: [("Retry-After", value)])
    }

    /// A plain text answer.
    public static func text(_ body: String, status: Int = 200, delay: Duration = .zero, headers: [(String, String)] = []) -> MockBehavior {
        .respond(status: status, body: Array(body.utf8), headers: headers, delay: delay)
    }

    /// The behaviour selected by a request's path and query when no route is configured:
    ///
    /// | path | behaviour |
    /// |---|---|
    /// | `/hang` | hang |
    /// | `/close` | close without answering |
    /// | `/reset` | reset without answering |
    /// | `/reset-mid` | head and 10 body bytes, then reset |
    /// | `/slow?chunks=5&bytes=10&interval_ms=100` | slow body |
    /// | `/status/N` | status N |
    /// | anything else | 200 `ok` |
    ///
    /// Query parameters refine `respond`: `status`, `delay_ms`, `bytes` (body of N `x`), `body`,
    /// `retry_after` (adds the header), and `flap_every=N` (every N-th request to the path answers 503).
    public static func fromQuery(path: String, query: [String: String]) -> MockBehavior {
        func int(_ k: String) -> Int? { query[k].flatMap { Int($0) } }
        switch path {
        case "/hang": return .hang
        case "/close": return .close
        case "/reset": return .reset
        case "/reset-mid": return .resetMidBody(sentBytes: int("sent") ?? 10, totalBytes: int("total") ?? 1000)
        case "/slow":
            return .slowBody(chunks: int("chunks") ?? 5, chunkBytes: int("bytes") ?? 10, interval: .milliseconds(int("interval_ms") ?? 100))
        default: break
        }
        var status = int("status") ?? 200
        if path.hasPrefix("/status/"), let s = Int(path.dropFirst("/status/".count)) { status = s }
        var body: [UInt8] = Array((query["body"] ?? "ok").utf8)
        if let n = int("bytes") { body = [UInt8](repeating: 0x78, count: max(0, n)) }
        var headers: [(String, String)] = []
        if let ra = query["retry_after"] { headers.append(("Retry-After", ra)) }
        let respond = MockBehavior.respond(status: status, body: body, headers: headers, delay: .milliseconds(int("delay_ms") ?? 0))
        if let every = int("flap_every"), every > 0 {
            return .flap(every: every, failure: .text("flapping", status: 503), success: respond)
        }
        return respond
    }
}

/// One request as the server received it.
public struct RecordedRequest: Sendable {
    public var method: String
    /// The request target as sent (path and query).
    public var uri: String
    public var path: String
    public var query: [String: String]
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Which accepted connection carried it (1-based, in accept order).
    public var connection: Int
    /// 1-based index of this request among those to the same route.
    public var routeIndex: Int

    /// The first value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        headers.first(where: { $0.0.caseInsensitiveCompare(name) }).map { $0.1 }
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

extension String {
    fileprivate func caseInsensitiveCompare(_ other: String) -> Bool {
        lowercased() == other.lowercased()
    }
}

/// Splits a request target into its path and decoded query parameters.
func splitURI(_ uri: String) -> (path: String, query: [String: String]) {
    guard let q = uri.firstIndex(of: "?") else { return (uri, [:]) }
    var out: [String: String] = [:]
    for pair in uri[uri.index(after: q)...].split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1)
        let k = String(kv[0]).removingPercentEncodingLoosely
        let v = kv.count > 1 ? String(kv[1]).removingPercentEncodingLoosely : ""
        out[k] = v
    }
    return (String(uri[..<q]), out)
}

extension String {
    /// Percent-decoding that leaves malformed escapes as they are; `+` becomes a space.
    var removingPercentEncodingLoosely: String {
        var bytes: [UInt8] = []
        var it = Array(utf8)[...]
        while let c = it.popFirst() {
            if c == 0x25, it.count >= 2, let h = hexValue(it[it.startIndex]), let l = hexValue(it[it.startIndex + 1]) {
                bytes.append(h << 4 | l)
                it = it.dropFirst(2)
            } else if c == 0x2B {
                bytes.append(0x20)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x41...0x46: return c - 0x41 + 10
    case 0x61...0x66: return c - 0x61 + 10
    default: return nil
    }
}
