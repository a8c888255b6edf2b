// LoadCommand: `fanout load` — closed-loop HTTP load on the reactor with an honest summary.
import AlertFanout
import ArgumentParser
import CurlReactor

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test an HTTP endpoint with N requests in flight (closed loop) on the reactor.",
        discussion: """
            Runs until -n requests were made or -d elapsed, whichever comes first, then prints requests per second,
            latency percentiles, status counts, error kinds and this process's CPU time per request.
            Example: fanout load http://127.0.0.1:8080/ -c 64 -d 10s
            """)

    @Argument(help: "The URL to request (http or https).")
    var url: String

    @Option(name: .short, help: "Requests in flight at once.")
    var concurrency = 64

    @Option(name: .short, help: "Stop after this many requests.")
    var requests = Int.max

    @Option(name: .short, help: "Stop after this long (e.g. 10s, 500ms, 2m).", transform: parseDuration)
    var duration: Duration = .seconds(10)

    @Option(help: "Per-request deadline (e.g. 5s).", transform: parseDuration)
    var timeout: Duration = .seconds(30)

    @Option(name: .short, help: "HTTP method.")
    var method = "GET"

    @Option(name: .customShort("H"), help: "A header, 'Name: value' (repeatable).")
    var header: [String] = []

    @Option(help: "Request body text.")
    var body: String?

    @Flag(help: "Open a new connection for every request.")
    var noKeepalive = false

    @OptionGroup var observability: ObservabilityOptions

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("-c must be at least 1 (got \(concurrency))") }
        guard requests >= 1 else { throw ValidationError("-n must be at least 1 (got \(requests))") }
        guard duration > .zero else { throw ValidationError("-d must be positive") }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw ValidationError("'\(url)' is not an http:// or https:// URL")
        }
        for h in header where parseHeader(h) == nil {
            throw ValidationError("header '\(h)' is not of the form 'Name: value'")
        }
    }

    func run() async throws {
        let obs = try Observability(observability)
        let reactor = try CurlReactor(configuration: .init(
            maxInFlightPerHost: concurrency, maxInFlightTotal: concurrency, defaultTimeout: timeout))
        let reactorMetrics = obs.reactorMetrics(reactor)
        let request = HTTPRequest(
            method: method, url: url, headers: header.compactMap(parseHeader), body: body.map { Array($0.utf8) },
            timeout: timeout, captureHeaders: [], forbidReuse: noKeepalive)
        let runner = ClosedLoopRunner(reactor: reactor, concurrency: concurrency, maxRequests: requests, duration: duration) { _ in request }
        let summary = await runner.run()
        let stats = reactor.stats()
        reactorMetrics?.sample()
        reactorMetrics?.stop()
        await reactor.shutdown(.drain)
        try obs.finish()
        print(renderSummary(title: "fanout load \(url): \(concurrency) in flight, \(CurlReactor.curlShortVersion)", summary, stats: stats, cpuNote: "client only"))
        if summary.requests > 0 && summary.errors.values.reduce(0, +) == summary.requests {
            throw ExitCode(1)
        }
    }
}

func parseHeader(_ text: String) -> HTTPHeader? {
    guard let colon = text.firstIndex(of: ":") else { return nil }
    let name = trimmedWhitespace(text[..<colon])
    guard !name.isEmpty else { return nil }
    return HTTPHeader(name, trimmedWhitespace(text[text.index(after: colon)...]))
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `250us` or a bare number of seconds.
func parseDuration(_ text: String) throws -> Duration {
    let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("s", 1), ("m", 60), ("h", 3600)]
    let t = trimmedWhitespace(text)
    for (suffix, scale) in units where t.hasSuffix(suffix) {
        if let v = Double(t.dropLast(suffix.count)), v >= 0, v.isFinite {
            return .nanoseconds(Int64(v * scale * 1e9))
        }
    }
    if let v = Double(t), v >= 0, v.isFinite { return .nanoseconds(Int64(v * 1e9)) }
    throw ValidationError("'\(text)' is not a duration (examples: 10s, 500ms, 2m)")
}

/// `text` without leading and trailing spaces and tabs.
func trimmedWhitespace<S: StringProtocol>(_ text: S) -> String {
    var s = Substring(text)
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return String(s)
}
