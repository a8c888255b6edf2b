// LoadReport: the stable JSON result of a load run (schema alertfanout.load.v1), its summary text, and exact merging.
import AlertFanout

/// A load run's result as written by `--json` and read by `fanout load merge`.
///
/// Schema `alertfanout.load.v1` (times in microseconds unless the name says otherwise):
/// `{schema, mode: "closed"|"open", concurrency, rate (open loop; null otherwise), duration_s (configured),
///   elapsed_s, interrupted, runs (1, or the number of merged files), requests, errors, bytes, achieved_rps,
///   cpu_seconds, cpu_us_per_request, connections_opened, statuses {code: n}, error_kinds {kind: n},
///   latency_us / connect_us / ttfb_us / schedule_lag_us {count, min, p50, p75, p90, p99, p99_9, p99_99, max, mean},
///   urls: [{url, weight, requests, errors, bytes, statuses, error_kinds, latency_us, histograms}],
///   histograms: {latency, connect, ttfb, schedule_lag: [[value_us, count], …]}}`
/// Histograms are exact bucket lists, so merging files is exact.
public struct LoadReport: Sendable {
    /// `closed` or `open`.
    public var mode: String
    /// The plan's concurrency.
    public var concurrency: Int
    /// The open loop's rate; nil in the closed loop.
    public var rate: Double?
    /// The configured duration, when the duration bounded the run.
    public var durationSeconds: Double?
    /// How long the run took (the longest, after merging).
    public var elapsedSeconds: Double
    /// True when any merged run was interrupted.
    public var interrupted: Bool
    /// 1, or how many results were merged.
    public var runs: Int
    /// CPU seconds used (summed over merged runs).
    public var cpuSeconds: Double
    /// New connections opened (summed).
    public var connectionsOpened: Int
    /// Completed requests per second.
    public var achievedRPS: Double
    /// Per URL: its weight and statistics.
    public var urls: [(url: String, weight: Double, stats: LoadStats)]

    /// Every URL's statistics merged.
    public var total: LoadStats { urls.reduce(into: LoadStats()) { $0.merge($1.stats) } }

    /// The report of one run.
    public init(_ r: LoadResult) {
        mode = r.plan.rate == nil ? "closed" : "open"
        concurrency = r.plan.concurrency
        rate = r.plan.rate
        durationSeconds = r.plan.durationLimited ? r.plan.duration.seconds : nil
        elapsedSeconds = r.elapsedSeconds
        interrupted = r.interrupted
        runs = 1
        cpuSeconds = r.cpuSeconds
        connectionsOpened = r.connectionsOpened
        urls = zip(r.plan.urls, r.perURL).map { ($0.url, $0.weight, $1) }
        let n = urls.reduce(0) { $0 + $1.stats.requests }
        achievedRPS = r.elapsedSeconds > 0 ? Double(n) / r.elapsedSeconds : 0
    }

    /// The `alertfanout.load.v1` document.
    public var json: JSONValue {
        let t = total
        func counts<K>(_ d: [K: Int]) -> JSONValue {
            .object(d.map { ("\($0.key)", JSONValue.int($0.value)) }.sorted { $0.0 < $1.0 })
        }
        func statsJSON(_ s: LoadStats) -> [(String, JSONValue)] {
            [
                ("requests", .int(s.requests)), ("errors", .int(s.errors)), ("bytes", .int(s.bytes)),
                ("statuses", counts(s.statuses)), ("error_kinds", counts(s.errorKinds)),
                ("latency_us", s.latency.summaryJSON), ("connect_us", s.connect.summaryJSON), ("ttfb_us", s.firstByte.summaryJSON),
            ]
                + (mode == "open" ? [("schedule_lag_us", s.lag.summaryJSON)] : [])
        }
        func histograms(_ s: LoadStats) -> JSONValue {
            .object([
                ("latency", s.latency.bucketsJSON), ("connect", s.connect.bucketsJSON), ("ttfb", s.firstByte.bucketsJSON),
                ("schedule_lag", s.lag.bucketsJSON),
            ])
        }
        let requests = t.requests
        var m: [(String, JSONValue)] = [
            ("schema", .string("alertfanout.load.v1")), ("mode", .string(mode)), ("concurrency", .int(concurrency)),
            ("rate", rate.map { .double($0) } ?? .null), ("duration_s", durationSeconds.map { .double($0) } ?? .null),
            ("elapsed_s", .double((elapsedSeconds * 1000).rounded() / 1000)), ("interrupted", .bool(interrupted)), ("runs", .int(runs)),
            ("achieved_rps", .double((achievedRPS * 10).rounded() / 10)), ("cpu_seconds", .double((cpuSeconds * 1000).rounded() / 1000)),
            ("cpu_us_per_request", .double(requests > 0 ? (cpuSeconds / Double(requests) * 1e7).rounded() / 10 : 0)),
            ("connections_opened", .int(connectionsOpened)),
        ]
        m += statsJSON(t)
        m.append(
            (
                "urls",
                .array(
                    urls.map { u in
                        .object([("url", .string(u.url)), ("weight", .double(u.weight))] + statsJSON(u.stats) + [("histograms", histograms(u.stats))])
                    })
            ))
        m.append(("histograms", histograms(t)))
        return .object(m)
    }

    /// Reads a result file; nil with a reason when it is not one.
    public static func parse(_ v: JSONValue) -> Result<LoadReport, LoadError> {
        guard v["schema"]?.stringValue == "alertfanout.load.v1" else {
            return .failure(LoadError("not an alertfanout.load.v1 result (write one with `fanout load --json`)"))
        }
        var r = LoadReport.empty
        r.mode = v["mode"]?.stringValue ?? "closed"
        r.concurrency = v["concurrency"]?.intValue ?? 0
        r.rate = v["rate"]?.doubleValue
        r.durationSeconds = v["duration_s"]?.doubleValue ?? 0
        r.elapsedSeconds = v["elapsed_s"]?.doubleValue ?? 0
        r.interrupted = v["interrupted"]?.boolValue ?? false
        r.runs = v["runs"]?.intValue ?? 1
        r.cpuSeconds = v["cpu_seconds"]?.doubleValue ?? 0
        r.connectionsOpened = v["connections_opened"]?.intValue ?? 0
        r.achievedRPS = v["achieved_rps"]?.doubleValue ?? 0
        for u in v["urls"]?.arrayValue ?? [] {
            guard let url = u["url"]?.stringValue, let h = u["histograms"] else {
                return .failure(LoadError("a url entry lacks its url or histograms"))
            }
            var s = LoadStats()
            s.requests = u["requests"]?.intValue ?? 0
            s.errors = u["errors"]?.intValue ?? 0
            s.bytes = u["bytes"]?.intValue ?? 0
            for (k, c) in u["statuses"]?.objectValue ?? [] { if let code = Int(k), let n = c.intValue { s.statuses[code] = n } }
            for (k, c) in u["error_kinds"]?.objectValue ?? [] { if let n = c.intValue { s.errorKinds[k] = n } }
            guard let lat = MicrosHistogram.fromBuckets(h["latency"]), let con = MicrosHistogram.fromBuckets(h["connect"]),
                let ttfb = MicrosHistogram.fromBuckets(h["ttfb"]), let lag = MicrosHistogram.fromBuckets(h["schedule_lag"])
            else {
                return .failure(LoadError("histograms of \(url) are malformed"))
            }
            s.latency = lat
            s.connect = con
            s.firstByte = ttfb
            s.lag = lag
            r.urls.append((url, u["weight"]?.doubleValue ?? 1, s))
        }
        return .success(r)
    }

    /// A report of nothing, to merge others into.
    public static var empty: LoadReport {
        LoadReport(
            mode: "closed", concurrency: 0, rate: nil, durationSeconds: 0, elapsedSeconds: 0, interrupted: false, runs: 0,
            cpuSeconds: 0, connectionsOpened: 0, achievedRPS: 0, urls: [])
    }

    private init(
        mode: String, concurrency: Int, rate: Double?, durationSeconds: Double?, elapsedSeconds: Double, interrupted: Bool,
        runs: Int, cpuSeconds: Double, connectionsOpened: Int, achievedRPS: Double, urls: [(url: String, weight: Double, stats: LoadStats)]
    ) {
        self.mode = mode
        self.concurrency = concurrency
        self.rate = rate
        self.durationSeconds = durationSeconds
        self.elapsedSeconds = elapsedSeconds
        self.interrupted = interrupted
        self.runs = runs
        self.cpuSeconds = cpuSeconds
        self.connectionsOpened = connectionsOpened
        self.achievedRPS = achievedRPS
        self.urls = urls
    }

    /// Runs made side by side (several machines, one share each): counts and histograms add up exactly;
    /// rates and concurrency add up (they ran at the same time); elapsed is the longest run.
    public mutating func merge(_ o: LoadReport) {
        if runs == 0 {
            self = o
            return
        }
        runs += o.runs
        concurrency += o.concurrency
        if let a = rate, let b = o.rate { rate = a + b } else { rate = rate ?? o.rate }
        mode = mode == o.mode ? mode : "mixed"
        durationSeconds = [durationSeconds, o.durationSeconds].compactMap { $0 }.max()
        elapsedSeconds = max(elapsedSeconds, o.elapsedSeconds)
        interrupted = interrupted || o.interrupted
        cpuSeconds += o.cpuSeconds
        connectionsOpened += o.connectionsOpened
        achievedRPS += o.achievedRPS
        for u in o.urls {
            if let i = urls.firstIndex(where: { $0.url == u.url }) {
                urls[i].stats.merge(u.stats)
            } else {
                urls.append(u)
            }
        }
    }

    /// The human-readable summary.
    public func render(title: String) -> String {
        let t = total
        var out = [title]
        out.append(
            "  requests     \(t.requests) in \(fmt(elapsedSeconds, 2)) s = \(fmt(achievedRPS, 0)) req/s\(rate.map { " (target \(fmt($0, 0))/s)" } ?? "")\(interrupted ? "  [interrupted]" : "")"
        )
        // Failures first: a run in which most requests failed must not read as a fast run.
        let responses = t.requests - t.errors
        let share = t.requests > 0 ? Double(t.errors) / Double(t.requests) * 100 : 0
        out.append(
            "  responses    \(responses) = \(fmt(elapsedSeconds > 0 ? Double(responses) / elapsedSeconds : 0, 0)) responses/s; failed without a response: \(t.errors) (\(fmt(share, share > 0 && share < 0.1 ? 3 : 1)) %)\(share >= 50 ? "  ← MOST REQUESTS FAILED" : "")"
        )
        out += latencyLines(t, indent: "  ")
        let statuses = t.statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        out.append("  statuses     \(statuses.isEmpty ? "none" : statuses)")
        if !t.errorKinds.isEmpty {
            out.append("  errors       " + t.errorKinds.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        }
        out.append("  connections  \(connectionsOpened) opened")
        let per = t.requests > 0 ? cpuSeconds / Double(t.requests) * 1e6 : 0
        out.append("  CPU          \(fmt(cpuSeconds, 2)) s = \(fmt(per, 1)) µs/request (this process)")
        if urls.count > 1 {
            for u in urls {
                out.append("  \(u.url) (weight \(fmt(u.weight, 2))): \(u.stats.requests) requests, \(u.stats.errors) errors")
                out += latencyLines(u.stats, indent: "    ")
            }
        }
        if mode != "closed" {
            out.append("  * open loop: latency counts from each request's intended send time (no coordinated omission); lag is how late it was sent")
        }
        return out.joined(separator: "\n")
    }

    private func latencyLines(_ s: LoadStats, indent: String) -> [String] {
        var out: [String] = []
        func line(_ name: String, _ h: MicrosHistogram) {
            guard h.totalCount > 0 else { return }
            let p = reportedPercentiles.map { "\($0.0.replacingOccurrences(of: "_", with: ".")) \(ms(h.valueAtPercentile($0.1)))" }.joined(separator: "  ")
            out.append("\(indent)\(name.padding(toLength: 11, withPad: " ", startingAt: 0))  \(p)  max \(ms(h.max)) ms")
        }
        line(mode == "open" ? "latency*" : "latency", s.latency)
        line("connect", s.connect)
        line("first byte", s.firstByte)
        if mode == "open" { line("lag", s.lag) }
        return out
    }
}

private func ms(_ micros: UInt64) -> String { fmt(Double(micros) / 1000, 3) }
