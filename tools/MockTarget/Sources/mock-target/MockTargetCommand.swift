// mock-target: runs a MockTarget by hand on a loopback address until interrupted.
import ArgumentParser
import Dispatch
import MockTarget

#if canImport(Glibc)
    import Glibc
#endif

@main
struct MockTargetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-target",
        abstract: "A loopback HTTP/1.1 server with scripted behaviours, for tests, demos and benchmarks.",
        discussion: """
            Paths select behaviours: /hang, /close, /reset, /reset-mid, /slow?chunks=5&bytes=10&interval_ms=100 and /status/N. Any path accepts ?status=N&delay_ms=N&bytes=N&body=TEXT&retry_after=V&flap_every=N. Everything else answers 200 "ok".
            """)

    @Option(help: "Loopback address to bind (127.0.0.0/8, ::1 or localhost).")
    var host = "127.0.0.1"

    @Option(help: "Port (0 picks a free one).")
    var port = 8080

    @Flag(help: "Only count requests; keep no record of them (for long load runs).")
    var noRecord = false

    func validate() throws {
        guard MockTarget.isLoopback(host) else {
            throw ValidationError("--host must be a loopback address (127.0.0.0/8, ::1 or localhost), not '\(host)'")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
    }

    func run() throws {
        let server = try MockTarget(host: host, port: port, recordRequests: !noRecord)
        print("mock-target listening on \(server.baseURL)")
        let sig = DispatchSource.makeSignalSource(signal: 2, queue: .main)
        signal(2, SIG_IGN)
        sig.setEventHandler {
            print("mock-target: \(server.requestCount) requests on \(server.connectionCount) connections")
            server.stop()
            Glibc.exit(0)
        }
        sig.resume()
        dispatchMain()
    }
}
