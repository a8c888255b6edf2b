// ReactorPromiseTests: what the README and the API docs promise and nothing else tested — admission caps, FIFO per
// host and round-robin across hosts, the callback queue, the connect timeout and the `dns` kind, and a cancel
// racing its own completion.
import Dispatch
import Glibc
import MockTarget
import TestSupport
import XCTest

@testable import CurlReactor

class ReactorPromiseTests: ReactorTestCase {
    /// `maxInFlightTotal` caps the requests handed to curl even when the per-host cap would allow more: the
    /// server sees exactly that many at once (its peak of concurrently held requests), never more.
    func testTheTotalCapHoldsWhenThePerHostCapIsHigher() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 8, maxInFlightTotal: 2))
        let tally = CompletionTally(expected: 6)
        for i in 0..<6 { reactor.submit(HTTPRequest(url: server.url("/cap?delay_ms=100&i=\(i)"))) { tally.record(i, $0) } }
        await tally.wait()
        XCTAssertEqual(tally.snapshot.successes, 6, "\(tally.snapshot.failures)")
        XCTAssertEqual(server.peakDelayedRequests, 2, "two at once (the total cap), not one and not more")
        await assertReleased(reactor)
    }

    /// With room for one request at a time, queued requests are admitted first-in first-out per host and hosts
    /// take turns. The first request of host A is admitted at once on submission; then A and B alternate while
    /// both have requests waiting, and the rest of B follows.
    func testAdmissionIsFIFOPerHostAndRoundRobinAcrossHosts() async throws {
        let a = try MockTarget()
        let b = try MockTarget()
        defer {
            a.stop()
            b.stop()
        }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 4, maxInFlightTotal: 1))
        let order = TestLock<[String]>([])
        let tally = CompletionTally(expected: 8)
        let labels = ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4"]  // submitted in this order
        for (index, label) in labels.enumerated() {
            let server = label.hasPrefix("A") ? a : b
            reactor.submit(HTTPRequest(url: server.url("/rr?delay_ms=20&id=\(label)"))) { r in
                order.withLock { $0.append(label) }
                tally.record(index, r)
            }
        }
        await tally.wait()
        XCTAssertEqual(tally.snapshot.successes, 8, "\(tally.snapshot.failures)")
        XCTAssertEqual(order.withLock { $0 }, ["A1", "A2", "B1", "A3", "B2", "A4", "B3", "B4"])
        XCTAssertEqual(a.peakDelayedRequests, 1)
        XCTAssertEqual(b.peakDelayedRequests, 1)
        await assertReleased(reactor)
    }

    /// A completion runs on the queue given to `submit`; without one it runs on the reactor's queue.
    func testCompletionsRunOnTheCallbackQueue() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor()
        let queue = DispatchQueue(label: "callback-test")
        let key = DispatchSpecificKey<String>()
        queue.setSpecific(key: key, value: "mine")
        let seen = TestLock<[String]>([])
        let tally = CompletionTally(expected: 4)
        for i in 0..<2 {
            reactor.submit(HTTPRequest(url: server.url("/cb?i=\(i)")), callbackQueue: queue) { r in
                seen.withLock { $0.append("queue=\(DispatchQueue.getSpecific(key: key) ?? "other") reactor=\(reactor.isOnQueue)") }
                tally.record(i, r)
            }
        }
        for i in 2..<4 {
            reactor.submit(HTTPRequest(url: server.url("/cb?i=\(i)"))) { r in
                seen.withLock { $0.append("queue=\(DispatchQueue.getSpecific(key: key) ?? "other") reactor=\(reactor.isOnQueue)") }
                tally.record(i, r)
            }
        }
        await tally.wait()
        XCTAssertEqual(tally.snapshot.successes, 4)
        XCTAssertEqual(
            seen.withLock { $0 }.sorted(), ["queue=mine reactor=false", "queue=mine reactor=false", "queue=other reactor=true", "queue=other reactor=true"])
        await assertReleased(reactor)
    }

    /// A listener whose accept queue is full drops further SYNs, so connection set-up never finishes: the request
    /// ends as `connect_timeout` after its `connectTimeout`, well inside its overall deadline.
    func testAConnectThatNeverCompletesIsAConnectTimeout() async throws {
        let listener = try FullListener()
        defer { listener.close() }
        let reactor = try makeReactor()
        let r = await reactor.execute(
            HTTPRequest(url: "http://127.0.0.1:\(listener.port)/", timeout: .seconds(20), connectTimeout: .milliseconds(300)))
        XCTAssertEqual(r.failureKind, .connectTimeout, "\(r)")
        await assertReleased(reactor)
    }

    /// A name the resolver refuses is `dns`. The name has a 70-character label, which the C library rejects before
    /// building a query, so nothing leaves the machine (checked with strace: no socket other than nscd's).
    func testANameThatCannotResolveIsADNSFailure() async throws {
        let reactor = try makeReactor()
        let label = String(repeating: "a", count: 70)
        let r = await reactor.execute(HTTPRequest(url: "http://\(label).invalid:9/", timeout: .seconds(10)))
        XCTAssertEqual(r.failureKind, .dns, "\(r)")
        await assertReleased(reactor)
    }

    /// Cancels land at every point of a request's life, including right as it completes: every request still
    /// completes exactly once, as a response or as `cancelled`, and nothing is left behind.
    func testCancelRacingCompletionCompletesExactlyOnce() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 16, maxInFlightTotal: 16))
        let n = 400
        let tally = CompletionTally(expected: n)
        let cancellers = DispatchQueue(label: "cancellers", attributes: .concurrent)
        for i in 0..<n {
            let handle = reactor.submit(HTTPRequest(url: server.url("/race?i=\(i)"))) { tally.record(i, $0) }
            // Spread the cancels from before admission to after completion.
            cancellers.asyncAfter(deadline: .now() + .microseconds((i * 37) % 3000)) { handle.cancel() }
        }
        await tally.wait()
        let s = tally.snapshot
        XCTAssertEqual(s.perIndex.filter { $0 != 1 }.count, 0, "every request completes exactly once")
        XCTAssertEqual(s.successes + (s.failures[.cancelled] ?? 0), n, "only responses and cancels: \(s.failures)")
        await assertReleased(reactor)
    }
}

/// The same tests with a Dispatch source per socket (the portable fallback).
final class ReactorPromiseSourcePerSocketTests: ReactorPromiseTests {
    override class var watching: SocketWatching { .sourcePerSocket }
    /// Also makes Linux test discovery list the inherited tests, which it does only for a class with a test of its own.
    func testRunsWithASourcePerSocket() throws { try assertWatching(.sourcePerSocket) }
}

/// A TCP listener on 127.0.0.1 with a backlog of 0 that never accepts, its queue filled by one connection: the
/// kernel drops later SYNs, so a new connect stays in SYN-SENT.
final class FullListener {
    let fd: Int32
    let port: Int
    private let clients: [Int32]

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EMFILE) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } }
        guard bound == 0, listen(listener, 0) == 0 else {
            Glibc.close(listener)
            throw POSIXError(.EADDRINUSE)
        }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        // One connection fills a backlog of 0; a second makes sure (its SYN may already be dropped).
        var made: [Int32] = []
        for _ in 0..<2 {
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            let to = addr
            _ = withUnsafePointer(to: to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            made.append(c)
        }
        usleep(50_000)
        fd = listener
        port = Int(UInt16(bigEndian: addr.sin_port))
        clients = made
    }

    func close() {
        for c in clients { Glibc.close(c) }
        Glibc.close(fd)
    }
}
