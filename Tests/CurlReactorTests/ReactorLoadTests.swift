// ReactorLoadTests: many requests at high concurrency, connection churn across hosts, and no busy loop while idle.
import CurlReactor
import Dispatch
import MockTarget
import TestSupport
import XCTest

class ReactorLoadTests: ReactorTestCase {
    func testTenThousandRequestsAtConcurrency256CompleteExactlyOnce() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 256, maxInFlightTotal: 256))
        let n = 10_000
        let tally = CompletionTally(expected: n)
        for i in 0..<n {
            reactor.submit(HTTPRequest(url: server.url("/load?i=\(i % 100)"))) { tally.record(i, $0) }
        }
        await tally.wait(seconds: 120)
        let s = tally.snapshot
        XCTAssertEqual(s.perIndex.filter { $0 != 1 }.count, 0, "every request completes exactly once")
        XCTAssertEqual(s.successes, n, "failures: \(s.failures)")
        XCTAssertEqual(server.requestCount, n)
        let stats = reactor.stats()
        XCTAssertLessThanOrEqual(stats.connectionsOpened, 256 + 16, "\(stats)")
        await assertReleased(reactor)
    }

    func testConnectionChurnAcrossLoopbackHostsAndNames() async throws {
        var servers = [try MockTarget(host: "127.0.0.1"), try MockTarget(host: "127.0.0.2"), try MockTarget(host: "127.0.0.3")]
        var urls = servers.map { $0.url("/churn") }
        urls.append("http://localhost:\(servers[0].port)/churn")
        if let (name, address) = loopbackHostname() {
            // The machine's own name goes through curl's threaded resolver (and its wake-up socket pair).
            let s = try MockTarget(host: address)
            servers.append(s)
            urls.append("http://\(name):\(s.port)/churn")
        }
        defer { servers.forEach { $0.stop() } }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 8, maxInFlightTotal: 32))
        let n = 1500
        let tally = CompletionTally(expected: n)
        for i in 0..<n {
            let req = HTTPRequest(url: urls[i % urls.count] + "?i=\(i)", timeout: .seconds(20), forbidReuse: true)
            reactor.submit(req) { tally.record(i, $0) }
        }
        await tally.wait(seconds: 120)
        let s = tally.snapshot
        XCTAssertEqual(s.perIndex.filter { $0 != 1 }.count, 0)
        XCTAssertEqual(s.successes, n, "failures: \(s.failures)")
        XCTAssertEqual(servers.map(\.requestCount).reduce(0, +), n)
        let stats = reactor.stats()
        XCTAssertGreaterThanOrEqual(stats.connectionsOpened, n, "forbidReuse opens a connection per request")
        XCTAssertEqual(stats.inFlight, 0)
        await assertReleased(reactor)
    }

    func testNoBusyLoopWhileRequestsWait() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 256))
        let n = 200
        let tally = CompletionTally(expected: n)
        for i in 0..<n {
            reactor.submit(HTTPRequest(url: server.url("/hang?i=\(i)"), timeout: .seconds(2))) { tally.record(i, $0) }
        }
        try await waitUntil(seconds: 10) { server.requestCount == n }
        let cpuBefore = processCPUSeconds()
        let wallBefore = ContinuousClock.now
        await tally.wait(seconds: 10)
        let cpu = processCPUSeconds() - cpuBefore
        let wall = seconds(ContinuousClock.now - wallBefore)
        XCTAssertEqual(tally.snapshot.failures[.deadline], n)
        XCTAssertGreaterThan(wall, 1.0, "the requests really waited")
        XCTAssertLessThan(cpu, 0.25, "waiting must not spin: \(cpu) s of CPU over \(wall) s")
        print("idle cost: \(cpu) CPU-s for \(n) requests waiting \(wall) s; timer fires: \(reactor.stats().timerFires)")
        await assertReleased(reactor)
    }
}

/// The same tests with a Dispatch source per socket (the portable fallback).
final class ReactorLoadSourcePerSocketTests: ReactorLoadTests {
    override class var watching: SocketWatching { .sourcePerSocket }
    /// Also makes Linux test discovery list the inherited tests, which it does only for a class with a test of its own.
    func testRunsWithASourcePerSocket() throws { try assertWatching(.sourcePerSocket) }
}
