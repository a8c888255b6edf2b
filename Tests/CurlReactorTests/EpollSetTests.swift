// EpollSetTests: the reactor with `.epollSet` socket watching — correctness, churn, cancellation, idle cost, release.
import CurlReactor
import Dispatch
import MockTarget
import XCTest

final class EpollSetTests: XCTestCase {
    func reactor(perHost: Int = 64, total: Int = 1024) throws -> CurlReactor {
        try CurlReactor(configuration: .init(maxInFlightPerHost: perHost, maxInFlightTotal: total, socketWatching: .epollSet))
    }

    func testRequestsAndBodiesRoundTrip() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let r = try reactor()
        let get = await r.execute(HTTPRequest(url: server.url("/status/201?body=hi&retry_after=3")))
        XCTAssertEqual(get.response?.status, 201)
        XCTAssertEqual(get.response?.bodyText, "hi")
        XCTAssertEqual(get.response?.header("retry-after"), "3")
        let payload = [UInt8](repeating: 0x41, count: 70_000)
        let post = await r.execute(HTTPRequest(method: "POST", url: server.url("/p"), body: payload))
        XCTAssertEqual(post.response?.status, 200)
        XCTAssertEqual(server.requests.last?.body, payload)
        let big = await r.execute(HTTPRequest(url: server.url("/b?bytes=300000"), maxResponseBodyBytes: 400_000))
        XCTAssertEqual(big.response?.body.count, 300_000)
        await assertReleased(r)
    }

    func testTenThousandAtConcurrency256AndReuse() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let r = try reactor(perHost: 256, total: 256)
        let n = 10_000
        let tally = CompletionTally(expected: n)
        for i in 0..<n { r.submit(HTTPRequest(url: server.url("/l"))) { tally.record(i, $0) } }
        await tally.wait(seconds: 120)
        XCTAssertEqual(tally.snapshot.successes, n)
        XCTAssertEqual(tally.snapshot.perIndex.filter { $0 != 1 }.count, 0)
        XCTAssertLessThanOrEqual(r.stats().connectionsOpened, 256 + 16)
        await assertReleased(r)
    }

    func testChurnAcrossHostsAndTheResolver() async throws {
        var servers = [try MockTarget(host: "127.0.0.1"), try MockTarget(host: "127.0.0.2")]
        var urls = servers.map { $0.url("/c") } + ["http://localhost:\(servers[0].port)/c"]
        if let (name, address) = loopbackHostname() {
            let s = try MockTarget(host: address)
            servers.append(s)
            urls.append("http://\(name):\(s.port)/c")
        }
        defer { servers.forEach { $0.stop() } }
        let r = try reactor(perHost: 8, total: 32)
        let n = 1200
        let tally = CompletionTally(expected: n)
        for i in 0..<n {
            r.submit(HTTPRequest(url: urls[i % urls.count], timeout: .seconds(20), forbidReuse: true)) { tally.record(i, $0) }
        }
        await tally.wait(seconds: 120)
        XCTAssertEqual(tally.snapshot.successes, n, "failures: \(tally.snapshot.failures)")
        await assertReleased(r)
    }

    func testFailuresCancelDeadlineAndShutdown() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let r = try reactor(perHost: 1)
        let refused = await r.execute(HTTPRequest(url: "http://127.0.0.1:\(try unusedPort())/"))
        XCTAssertEqual(refused.failureKind, .refused)
        let reset = await r.execute(HTTPRequest(url: server.url("/reset-mid?sent=10&total=500")))
        XCTAssertEqual(reset.failureKind, .reset)
        let started = ContinuousClock.now
        let hang = await r.execute(HTTPRequest(url: server.url("/hang"), timeout: .milliseconds(300)))
        XCTAssertEqual(hang.failureKind, .deadline)
        XCTAssertLessThan(seconds(ContinuousClock.now - started), 0.8)
        let tally = CompletionTally(expected: 3)
        let a = r.submit(HTTPRequest(url: server.url("/hang?a"))) { tally.record(0, $0) }
        r.submit(HTTPRequest(url: server.url("/hang?b"))) { tally.record(1, $0) }
        r.submit(HTTPRequest(url: server.url("/hang?c"))) { tally.record(2, $0) }
        try await waitUntil { server.requests.contains { $0.uri.contains("hang?a") } }
        a.cancel()
        await r.shutdown(.cancel)
        await tally.wait(seconds: 5)
        XCTAssertEqual(tally.snapshot.failures[.cancelled], 1)
        XCTAssertEqual(tally.snapshot.failures[.shutdown], 2)
        await assertReleased(r)
    }

    func testNoBusyLoopWhileRequestsWait() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let r = try reactor(perHost: 256)
        let n = 200
        let tally = CompletionTally(expected: n)
        for i in 0..<n { r.submit(HTTPRequest(url: server.url("/hang?i=\(i)"), timeout: .seconds(2))) { tally.record(i, $0) } }
        try await waitUntil(seconds: 10) { server.requestCount == n }
        let cpu0 = processCPUSeconds()
        await tally.wait(seconds: 10)
        let cpu = processCPUSeconds() - cpu0
        XCTAssertEqual(tally.snapshot.failures[.deadline], n)
        XCTAssertLessThan(cpu, 0.25, "waiting must not spin: \(cpu) CPU-s")
        await assertReleased(r)
    }
}
