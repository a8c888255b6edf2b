// LoadCommand: `fanout load` — closed- or open-loop HTTP load on the reactor with honest latency; `fanout load merge`.
import AlertFanout
import ArgumentParser
import CurlReactor
import Dispatch
import FanoutLoad
import Foundation
import Synchronization

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test HTTP endpoints on the reactor (closed loop, or a constant request rate), or merge result files.",
        subcommands: [LoadRunCommand.self, LoadMergeCommand.self],
        defaultSubcommand: LoadRunCommand.self)
}

struct LoadRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Load-test one or more URLs (the default `fanout load` action).",
        discussion: """
            Closed loop (default): -c requests in flight, each completion sends the next; latency counts from the actual send.

            Open loop (--rate R): request i is due i/R seconds after the start, with at most -c in flight. Latency counts from the intended send time, so server stalls show in the percentiles (no coordinated omission), and the schedule lag says how far sending fell behind.

            A run stops after -n requests or -d, whichever comes first. Ctrl-C stops sending, waits up to 2 s for requests in flight and prints what was done. Memory stays flat: only HDR histograms are kept.

            Exit status: 0 when every request got an HTTP response, whatever its status (the summary counts statuses); 1 when more requests failed without a response (refused, reset, timeout, …) than --max-error-percent allows; 64 for bad input, such as a URL libcurl cannot use, before anything is sent.

            Examples:
            fanout load http://127.0.0.1:8080/ -c 64 -d 10s
            fanout load http://127.0.0.1:8080/a http://127.0.0.1:8080/b --rate 5000 -d 30s --json > run1.json
            fanout load merge run1.json run2.json
            """)

    @Argument(help: "URLs to request (http or https); several share the load equally unless --urls-file gives weights.")
    var urls: [String] = []

    @Option(name: .short, help: "Requests in flight at most (closed loop: exactly).")
    var concurrency = 64

    @Option(name: [.customShort("n"), .long], help: "Stop after this many requests.")
    var requests: Int?

    @Option(name: .short, help: "Stop after this long (e.g. 10s, 500ms, 2m). Default 10s unless -n is given.", transform: parseDuration)
    var duration: Duration?

    @Option(help: "Open loop: requests per second (constant arrival rate).")
    var rate: Double?

    @Option(name: .short, help: "HTTP method.")
    var method = "GET"

    @Option(name: .customShort("H"), help: "A header, 'Name: value' (repeatable).")
    var header: [String] = []

    @Option(help: "Request body text.")
    var body: String?

    @Option(help: "Request body from a file.")
    var bodyFile: String?

    @Option(help: "File of URLs, one per line: URL [weight] (# starts a comment).")
    var urlsFile: String?

    @Option(help: "Per-request deadline (e.g. 5s).", transform: parseDuration)
    var timeout: Duration = .seconds(30)

    @Flag(help: "HTTP/2 (prior knowledge on http://, negotiated on https://).")
    var http2 = false

    @Flag(help: "Print the result as JSON (schema alertfanout.load.v1) instead of the summary.")
    var json = false

    @Option(help: "Write an HdrHistogram interval log (one histogram per second) to this file.")
    var hdrLog: String?

    @Flag(help: "No live progress line (it is shown only on a terminal anyway).")
    var noProgress = false

    @Option(help: "Seed for the weighted URL choice (runs with the same seed pick the same URLs).")
    var seed: UInt64 = 1

    @Flag(help: "Open a new connection for every request.")
    var noKeepalive = false

    @Flag(help: "Watch sockets through one epoll set drained in place (the default on Linux).")
    var epoll = false

    @Flag(help: "Watch sockets with a Dispatch source per socket (the portable fallback; for comparison).")
    var perSocket = false

    @Option(help: "Exit 0 even when up to this percentage of requests failed without a response (default 0: any failure exits 1).")
    var maxErrorPercent: Double = 0

    @Option(
        name: [.customShort("t"), .long],
        help: "Reactors to run side by side (like wrk -t): each has its own libcurl multi handle and queue, and a share of -c, -n and --rate; one result.")
    var threads = 1

    @OptionGroup var observability: ObservabilityOptions

    func validate() throws {
        guard (0...100).contains(maxErrorPercent) else { throw ValidationError("--max-error-percent must be between 0 and 100") }
        guard concurrency >= 1 else { throw ValidationError("-c must be at least 1 (got \(concurrency))") }
        if let n = requests, n < 1 { throw ValidationError("-n must be at least 1 (got \(n))") }
        if let d = duration, d <= .zero { throw ValidationError("-d must be positive") }
        if let r = rate, !(r > 0 && r.isFinite) { throw ValidationError("--rate must be a positive number of requests per second") }
        if body != nil && bodyFile != nil { throw ValidationError("--body and --body-file cannot be used together") }
        if epoll && perSocket { throw ValidationError("--epoll and --per-socket cannot be used together") }
        if urls.isEmpty && urlsFile == nil { throw ValidationError("give at least one URL, or --urls-file") }
        for u in urls { try LoadRunCommand.checkURL(u) }
        for h in header where parseHeader(h) == nil { throw ValidationError("header '\(h)' is not of the form 'Name: value'") }
        if method.isEmpty || method.contains(" ") { throw ValidationError("-m '\(method)' is not an HTTP method") }
        guard threads >= 1 else { throw ValidationError("-t must be at least 1 (got \(threads))") }
        if threads > concurrency { throw ValidationError("-t \(threads) needs at least as many connections: -c is \(concurrency)") }
        if let n = requests, threads > n { throw ValidationError("-t \(threads) needs at least as many requests: -n is \(n)") }
        if threads > 1 && hdrLog != nil { throw ValidationError("--hdr-log records one reactor's histograms: use it with -t 1") }
    }

    /// `plan` cut into `n` shares run side by side: connections, the request count and the rate split as evenly as
    /// they go (the first shares take the remainders), each share with its own seed.
    static func shares(of plan: LoadPlan, _ n: Int) -> [LoadPlan] {
        (0..<n).map { i in
            var p = plan
            p.concurrency = plan.concurrency / n + (i < plan.concurrency % n ? 1 : 0)
            if plan.maxRequests != Int.max { p.maxRequests = plan.maxRequests / n + (i < plan.maxRequests % n ? 1 : 0) }
            p.rate = plan.rate.map { $0 / Double(n) }
            p.seed = plan.seed &+ UInt64(i)
            return p
        }
    }

    /// A URL libcurl would refuse is a usage error (exit 64) before anything is sent.
    static func checkURL(_ u: String) throws {
        if let problem = LoadPlan(urls: [WeightedURL(url: u, weight: 1)], concurrency: 1).problems().first { throw ValidationError(problem) }
    }

    /// Reads `URL [weight]` lines.
    static func readURLsFile(_ path: String) throws -> [WeightedURL] {
        let text: String
        do { text = try readText(path, what: "URLs file") } catch let e as InputError { throw ValidationError(e.message) }
        var out: [WeightedURL] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if parts.isEmpty { continue }
            guard parts.count <= 2 else { throw ValidationError("\(path):\(n + 1): expected 'URL [weight]'") }
            do { try checkURL(parts[0]) } catch { throw ValidationError("\(path):\(n + 1): '\(parts[0])' is not an http:// or https:// URL") }
            var weight = 1.0
            if parts.count == 2 {
                guard let w = Double(parts[1]), w > 0, w.isFinite else {
                    throw ValidationError("\(path):\(n + 1): weight '\(parts[1])' must be a positive number")
                }
                weight = w
            }
            out.append(WeightedURL(url: parts[0], weight: weight))
        }
        guard !out.isEmpty else { throw ValidationError("\(path): no URLs") }
        return out
    }

    func makePlan() throws -> LoadPlan {
        var list = urls.map { WeightedURL(url: $0, weight: 1) }
        if let f = urlsFile { list += try LoadRunCommand.readURLsFile(f) }
        var bodyBytes = body.map { Array($0.utf8) }
        if let f = bodyFile {
            guard let data = FileManager.default.contents(atPath: f) else { throw ValidationError("cannot read --body-file '\(f)'") }
            bodyBytes = Array(data)
        }
        return LoadPlan(
            urls: list, method: method, headers: header.compactMap(parseHeader), body: bodyBytes, timeout: timeout,
            http2: http2, keepAlive: !noKeepalive, concurrency: concurrency, maxRequests: requests ?? Int.max,
            duration: duration ?? (requests == nil ? .seconds(10) : .seconds(86_400)),
            durationLimited: duration != nil || requests == nil, rate: rate, seed: seed)
    }

    func run() async throws {
        let plan = try makePlan()
        let obs = try Observability(observability)
        let watching = perSocket ? SocketWatching.sourcePerSocket : epoll ? .epollSet : ReactorConfiguration().socketWatching
        var reactors: [CurlReactor] = []
        var engines: [LoadEngine] = []
        for share in LoadRunCommand.shares(of: plan, threads) {
            let reactor = try CurlReactor(
                configuration: .init(
                    maxInFlightPerHost: share.concurrency, maxInFlightTotal: share.concurrency, defaultTimeout: share.timeout,
                    label: "alertfanout.load", socketWatching: watching))
            reactors.append(reactor)
            do { engines.append(try LoadEngine(reactor: reactor, plan: share)) } catch let e as LoadError { throw ValidationError(e.message) }
        }
        let reactorMetrics = obs.reactorMetrics(reactors[0])
        var log: HdrLogWriter?
        if let path = hdrLog {
            do {
                let w = try HdrLogWriter(path: path, startEpochSeconds: Date().timeIntervalSince1970)
                engines[0].onInterval = { start, length, h in w.write(startOffset: start, length: length, histogram: h) }
                log = w
            } catch let e as LoadError {
                throw ValidationError(e.message)
            }
        }
        let showProgress = !noProgress && isatty(STDERR_FILENO) != 0
        if showProgress {
            // Every share reports once a second; the first one's report prints the sum (p99: the largest share's).
            let latest = Mutex([LoadProgress?](repeating: nil, count: engines.count))
            for (i, engine) in engines.enumerated() {
                engine.onProgress = { p in
                    let all = latest.withLock { l -> [LoadProgress] in
                        l[i] = p
                        return l.compactMap { $0 }
                    }
                    guard i == 0 else { return }
                    let requests = all.reduce(0) { $0 + $1.requests }
                    let rate = p.elapsedSeconds > 0 ? Double(requests) / p.elapsedSeconds : 0
                    FileHandle.standardError.write(
                        Data(
                            String(
                                format: "\r[%5.1fs] %d requests, %.0f req/s, %d errors, p99 %.3f ms   ",
                                p.elapsedSeconds, requests, rate, all.reduce(0) { $0 + $1.errors }, Double(all.map(\.p99Micros).max() ?? 0) / 1000
                            ).utf8))
                }
            }
        }
        signal(SIGINT, SIG_IGN)
        let sigint = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        sigint.setEventHandler { for e in engines { e.interrupt() } }
        sigint.activate()
        let results = await withTaskGroup(of: (Int, LoadResult).self) { group in
            for (i, engine) in engines.enumerated() { group.addTask { (i, await engine.run()) } }
            var out = [LoadResult?](repeating: nil, count: engines.count)
            for await (i, r) in group { out[i] = r }
            return out.compactMap { $0 }
        }
        sigint.cancel()
        signal(SIGINT, SIG_DFL)
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
        log?.close()
        reactorMetrics?.sample()
        reactorMetrics?.stop()
        for reactor in reactors { await reactor.shutdown(.drain) }
        try obs.finish()
        var report = LoadReport.empty
        for r in results { report.merge(LoadReport(r)) }
        // One run of one process: each share measured the whole process's CPU over the same time.
        report.runs = 1
        report.cpuSeconds = results.map(\.cpuSeconds).max() ?? 0
        if json {
            print(report.json.prettyText())
        } else {
            let mode = plan.rate.map { "open loop at \(fmt($0, 0)) req/s, at most \(plan.concurrency) in flight" } ?? "\(plan.concurrency) in flight"
            let reactorsNote = threads > 1 ? ", \(threads) reactors" : ""
            print(report.render(title: "fanout load \(plan.urls.map(\.url).joined(separator: " ")): \(mode)\(reactorsNote), \(CurlReactor.curlShortVersion)"))
        }
        // Exit 1 when more requests failed without a response than --max-error-percent allows (default: any).
        let total = report.total
        if total.requests > 0 && Double(total.errors) * 100 > maxErrorPercent * Double(total.requests) { throw ExitCode(1) }
    }
}

struct LoadMergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine `fanout load --json` results of runs made side by side (one share each) into one, exactly.",
        discussion: """
            Counts and HDR histograms add up exactly; rates and concurrency add up (the runs ran at the same time); elapsed time is the longest run's.

            To load from N machines, run one share on each, for example as a Kubernetes Indexed Job with N completions and parallelism N, each pod writing its result to a shared volume:

            fanout load URL --rate $((TOTAL / N)) -d 60s --json > /results/$JOB_COMPLETION_INDEX.json

            Then merge them:

            fanout load merge /results/*.json
            """)

    @Argument(help: "Result files written by `fanout load --json`.")
    var files: [String]

    @Flag(help: "Print the merged result as JSON.")
    var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one result file") }
    }

    func run() async throws {
        var merged = LoadReport.empty
        for f in files {
            let text: String
            do { text = try readText(f, what: "result file") } catch let e as InputError { throw ValidationError(e.message) }
            let value: JSONValue
            do { value = try JSONValue.parse(text) } catch { throw ValidationError("\(f): \(error)") }
            switch LoadReport.parse(value) {
            case .success(let r): merged.merge(r)
            case .failure(let e): throw ValidationError("\(f): \(e.message)")
            }
        }
        if json {
            print(merged.json.prettyText())
        } else {
            print(merged.render(title: "fanout load merge: \(merged.runs) runs"))
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
