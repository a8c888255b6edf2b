import Dispatch
import MockTarget
import Synchronization
import TestSupport
import XCTest

// ReactorFailureTests: refused, reset, deadlines (with and without admission waits), cancellation and shutdown.
@testable import CurlReactor

class ReactorFailureTests: ReactorTestCase {
    func testConnectionRefused() async throws {
        let port = try unusedPort()
        let reactor = try makeReactor()
        let r = await reactor.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/"))
        XCTAssertEqual(r.failureKind, .refused, "\(r)")
        XCTAssertNotNil(r.failure?.curlCode)
        await assertReleased(reactor)
    }

    func testResetBeforeAndDuringResponse() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor()
        let mid = await reactor.execute(HTTPRequest(url: server.url("/reset-mid?sent=100&total=5000")))
        XCTAssertEqual(mid.failureKind, .reset, "\(mid)")
        let early = await reactor.execute(HTTPRequest(url: server.url("/reset")))
        XCTAssertEqual(early.failureKind, .reset, "\(early)")
        let closed = await reactor.execute(HTTPRequest(url: server.url("/close")))
        XCTAssertEqual(closed.failureKind, .reset, "\(closed)")
        // The reactor is still healthy afterwards.
        let ok = await reactor.execute(HTTPRequest(url: server.url("/after")))
        XCTAssertEqual(ok.response?.status, 200)
        await assertReleased(reactor)
    }

    func testHangingServerHitsTheDeadlineOnTime() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor()
        let started = ContinuousClock.now
        let r = await reactor.execute(HTTPRequest(url: server.url("/hang"), timeout: .milliseconds(300)))
        let elapsed = seconds(ContinuousClock.now - started)
        XCTAssertEqual(r.failureKind, .deadline, "\(r)")
        XCTAssertGreaterThanOrEqual(elapsed, 0.29)
        // libcurl's own timeout ended it (its message, no backstop), not the reactor's safety net.
        XCTAssertTrue(r.failure?.message.contains("timed out") ?? false, "\(r)")
        XCTAssertEqual(reactor.stats().backstopExpiries, 0)
        await assertReleased(reactor)
    }

    func testTheBackstopCompletesARequestWhoseTimeoutLibcurlLost() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor()
        reactor.queue.sync { reactor.core.testingStarveCurlTimeouts = true }
        let started = ContinuousClock.now
        let r = await reactor.execute(HTTPRequest(url: server.url("/hang"), timeout: .milliseconds(200)))
        let elapsed = seconds(ContinuousClock.now - started)
        XCTAssertEqual(r.failureKind, .deadline, "\(r)")
        XCTAssertTrue(r.failure?.message.contains("completed by the reactor") ?? false)
        XCTAssertGreaterThanOrEqual(elapsed, 0.2)
        XCTAssertEqual(reactor.stats().backstopExpiries, 1)
        await assertReleased(reactor)
    }

    func testDeadlineStartsAtAdmissionNotSubmission() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 1))
        let tally = CompletionTally(expected: 2)
        let results = ResultBox()
        for i in 0..<2 {
            reactor.submit(HTTPRequest(url: server.url("/hang?i=\(i)"), timeout: .milliseconds(400))) { r in
                results.set(i, r)
                tally.record(i, r)
            }
        }
        await tally.wait()
        let second = try XCTUnwrap(results.get(1)?.failure)
        XCTAssertEqual(second.kind, .deadline)
        XCTAssertGreaterThanOrEqual(seconds(second.timings.queued), 0.35, "it waited behind the first request")
        XCTAssertGreaterThanOrEqual(seconds(second.timings.total), 0.38, "it still got its whole deadline")
        XCTAssertEqual(server.requestCount, 2)
        await assertReleased(reactor)
    }

    func testOverallDeadlineExpiresWhileQueued() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 1))
        let first = reactor.submit(HTTPRequest(url: server.url("/hang?first"), timeout: .seconds(5))) { _ in }
        let started = ContinuousClock.now
        let r = await reactor.execute(HTTPRequest(url: server.url("/hang?second"), timeout: .seconds(5), overallTimeout: .milliseconds(200)))
        let elapsed = seconds(ContinuousClock.now - started)
        XCTAssertEqual(r.failureKind, .deadline, "\(r)")
        XCTAssertTrue(r.failure?.message.contains("waited for admission") ?? false)
        XCTAssertLessThan(elapsed, 4.5, "not held until the first request's own 5 s timeout")
        XCTAssertEqual(server.requests.filter { $0.uri.contains("second") }.count, 0, "never sent")
        first.cancel()
        await assertReleased(reactor)
    }

    func testCancelBeforeAdmissionAndInFlight() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 1))
        let tally = CompletionTally(expected: 2)
        let results = ResultBox()
        let inflight = reactor.submit(HTTPRequest(url: server.url("/hang?a"))) { r in
            results.set(0, r)
            tally.record(0, r)
        }
        let queued = reactor.submit(HTTPRequest(url: server.url("/hang?b"))) { r in
            results.set(1, r)
            tally.record(1, r)
        }
        try await waitUntil { server.requestCount == 1 }
        queued.cancel()
        try await Task.sleep(for: .milliseconds(50))
        inflight.cancel()
        inflight.cancel()  // twice is harmless
        await tally.wait(seconds: 5)
        XCTAssertEqual(results.get(0)?.failureKind, .cancelled)
        XCTAssertEqual(results.get(1)?.failureKind, .cancelled)
        XCTAssertEqual(tally.snapshot.perIndex, [1, 1])
        XCTAssertEqual(server.requestCount, 1, "the queued request was never sent")
        // The async facade cancels with its task.
        let task = Task { await reactor.execute(HTTPRequest(url: server.url("/hang?c"))) }
        try await waitUntil { server.requestCount == 2 }
        task.cancel()
        let r = await task.value
        XCTAssertEqual(r.failureKind, .cancelled)
        await assertReleased(reactor)
    }

    func testShutdownCancelCompletesEverything() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 4))
        let tally = CompletionTally(expected: 10)
        for i in 0..<10 {
            reactor.submit(HTTPRequest(url: server.url("/hang?i=\(i)"))) { tally.record(i, $0) }
        }
        try await waitUntil { server.requestCount == 4 }
        await reactor.shutdown(.cancel)
        await tally.wait(seconds: 5)
        let s = tally.snapshot
        XCTAssertEqual(s.perIndex, [Int](repeating: 1, count: 10))
        XCTAssertEqual(s.failures[.shutdown], 10)
        // After shutdown: new work is refused with a typed error, and shutting down again is harmless.
        let late = await reactor.execute(HTTPRequest(url: server.url("/late")))
        XCTAssertEqual(late.failureKind, .shutdown)
        await reactor.shutdown(.drain)
        await assertReleased(reactor)
    }

    func testShutdownDrainLetsRequestsFinish() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 2))
        let tally = CompletionTally(expected: 6)
        for i in 0..<6 {
            reactor.submit(HTTPRequest(url: server.url("/d?delay_ms=50&i=\(i)"))) { tally.record(i, $0) }
        }
        await reactor.shutdown(.drain)
        await tally.wait(seconds: 5)
        XCTAssertEqual(tally.snapshot.successes, 6, "drain lets queued and in-flight requests finish")
        XCTAssertEqual(server.requestCount, 6)
        await assertReleased(reactor)
    }
}

/// The same tests with a Dispatch source per socket (the portable fallback).
final class ReactorFailureSourcePerSocketTests: ReactorFailureTests {
    override class var watching: SocketWatching { .sourcePerSocket }
    /// Also makes Linux test discovery list the inherited tests, which it does only for a class with a test of its own.
    func testRunsWithASourcePerSocket() throws { try assertWatching(.sourcePerSocket) }
}
