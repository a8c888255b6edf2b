// DemoCommand: `fanout demo` — a bounded burst on the reactor against an embedded loopback MockTarget.
import ArgumentParser
import CurlReactor
import MockTarget

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the engine against built-in loopback targets; no configuration, no network.",
        discussion: "Starts a MockTarget on 127.0.0.1, fires a bounded burst of keep-alive requests at it and prints throughput and latency.")

    @Option(name: .short, help: "Requests in flight at once.")
    var concurrency = 64

    @Option(name: .short, help: "Requests in the burst.")
    var requests = 20_000

    @Option(name: .short, help: "Upper bound on the burst's duration (e.g. 5s).", transform: parseDuration)
    var duration: Duration = .seconds(10)

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("-c must be at least 1") }
        guard requests >= 1 else { throw ValidationError("-n must be at least 1") }
        guard duration > .zero else { throw ValidationError("-d must be positive") }
    }

    func run() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let reactor = try CurlReactor(configuration: .init(maxInFlightPerHost: concurrency, maxInFlightTotal: concurrency))
        let url = server.url("/demo")
        let runner = ClosedLoopRunner(reactor: reactor, concurrency: concurrency, maxRequests: requests, duration: duration) { _ in
            HTTPRequest(url: url, timeout: .seconds(5), captureHeaders: [])
        }
        let summary = await runner.run()
        let stats = reactor.stats()
        await reactor.shutdown(.drain)
        let after = reactor.stats()
        print(renderSummary(
            title: "fanout demo: \(summary.requests) keep-alive GETs to an embedded MockTarget at \(server.baseURL), \(concurrency) in flight (\(CurlReactor.curlShortVersion))",
            summary, stats: stats, cpuNote: "client and in-process server together"))
        print("  server saw   \(server.requestCount) requests on \(server.connectionCount) connections")
        print("  reactor      \(stats.socketActionCalls) socket_action calls, \(stats.timerFires) timer fires; after shutdown: \(after.isIdleAndEmpty && after.released ? "everything released" : "LEAK \(after)")")
        if server.requestCount != summary.requests || !(after.isIdleAndEmpty && after.released) {
            throw ExitCode(1)
        }
    }
}
