import CurlReactor
import FanoutCore
import MockTarget
import Synchronization
import TestSupport
import XCTest

// PublisherTests: fan-out against real MockTargets on 127.0.0.1 — order, timeouts, skips, semantics, cancel, volume.
@testable import AlertFanout

final class PublisherTests: XCTestCase {
    /// Issue 12: a cancel that lands before the async publish stored its handle was lost (the publish ran to its
    /// deadline and ended `.allFailed`).
    func testAPublishFromAnAlreadyCancelledTaskIsCancelled() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: [webhook("stuck", server, "/hang")]))
        let task = Task { () async -> Result<PublishReport, PublishError> in
            withUnsafeCurrentTask { $0?.cancel() }
            do throws(PublishError) { return .success(try await publisher.publish(Samples.firingFull, options: .init(deadline: .seconds(3)))) } catch {
                return .failure(error)
            }
        }
        let result = await task.value
        guard case .failure(.cancelled) = result else { return XCTFail("\(result)") }
        XCTAssertEqual(publisher.activePublishes, 0)
        await assertDrained(publisher)
    }

    func webhook(_ name: String, _ server: MockTarget, _ path: String, enabled: Bool = true, timeout: Double? = nil) -> Target {
        Target(name: name, type: .webhook, url: server.url(path), enabled: enabled, timeoutSeconds: timeout)
    }

    /// An alert's deadline also bounds the wait for a connection: with one connection and five alerts to a 300 ms
    /// target, the later alerts end at their 700 ms deadline (a request still waiting is `overloaded`: our side's
    /// congestion, not the target's) instead of each waiting out the ones before it (up to 1.5 s).
    func testTheDeadlineBoundsTheWaitForAConnection() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try CurlReactor(configuration: .init(maxInFlightPerHost: 1, maxInFlightTotal: 1))
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [webhook("one", server, "/slow?delay_ms=300", timeout: 5)]), reactor: reactor)
        let results = await withTaskGroup(of: Result<PublishReport, PublishError>.self) { group in
            for i in 0..<5 {
                var alert = Samples.firingFull
                alert.labels["n"] = "\(i)"
                alert.fingerprint = Alert.fingerprint(of: alert.labels)
                group.addTask {
                    do throws(PublishError) { return .success(try await publisher.publish(alert, options: .init(deadline: .milliseconds(700)))) } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let reports = results.compactMap { r -> PublishReport? in
            switch r {
            case .success(let rep): return rep
            case .failure(let e): return e.report
            }
        }
        XCTAssertEqual(reports.count, 5)
        let outcomes = reports.flatMap(\.results)
        XCTAssertGreaterThanOrEqual(outcomes.filter { $0.outcome == .succeeded }.count, 1, "\(outcomes)")
        let waited = outcomes.filter { $0.errorKind == .overloaded }
        XCTAssertGreaterThanOrEqual(waited.count, 1, "\(outcomes)")
        XCTAssertTrue(waited.allSatisfy { $0.message?.contains("waited") ?? false }, "\(waited)")
        for r in reports { XCTAssertLessThan(r.durationSeconds, 1.0, "no alert outlives its 700 ms deadline by much: \(r.results)") }
        await assertDrained(publisher, releasesReactor: false)  // the reactor is the test's: shut down here
        await reactor.shutdown()
        let s = reactor.stats()
        XCTAssertTrue(s.released && s.isIdleAndEmpty, "\(s)")
    }

    /// A target's `max_in_flight` holds across publishes: with a limit of 2, eight concurrent publishes never
    /// have more than two requests waiting at the server, and every one is delivered (none lost in the lane).
    func testAPerTargetInFlightLimitHoldsAcrossPublishesAndLosesNothing() async throws {
        let server = try MockTarget()
        let other = try MockTarget()
        defer {
            server.stop()
            other.stop()
        }
        var limited = webhook("limited", server, "/limited?delay_ms=40")
        limited.maxInFlight = 2
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: [limited, webhook("free", other, "/free?delay_ms=40")]))
        let reports = try await withThrowingTaskGroup(of: PublishReport.self) { group in
            for i in 0..<8 {
                var alert = Samples.firingFull
                alert.labels["n"] = "\(i)"
                alert.fingerprint = Alert.fingerprint(of: alert.labels)
                group.addTask { try await publisher.publish(alert, options: .init(deadline: .seconds(20))) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(reports.count, 8)
        XCTAssertTrue(reports.allSatisfy(\.allSucceeded), "\(reports.flatMap(\.results).filter { $0.outcome != .succeeded })")
        XCTAssertEqual(server.requests.filter { $0.path.hasPrefix("/limited") }.count, 8)
        XCTAssertEqual(server.peakDelayedRequests, 2, "the limited target got its requests two at a time, never more")
        XCTAssertGreaterThan(other.peakDelayedRequests, 2, "the target without a limit was not held back by the other's lane")
        XCTAssertEqual(publisher.guards.lanes["limited"]?.inFlight, 0, "every lane place given back")
        XCTAssertEqual(publisher.activePublishes, 0)
        await assertDrained(publisher)
    }

    func testFiveTargetsAtDifferentLatenciesAreReportedInRequestOrder() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let delays = [300, 200, 260, 230, 0]
        let targets = delays.enumerated().map { webhook("t\($0.offset)", server, "/d\($0.offset)?delay_ms=\($0.element)") }
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: targets))
        let report = try await publisher.publish(Samples.firingFull)
        XCTAssertEqual(report.results.map(\.target), ["t0", "t1", "t2", "t3", "t4"])
        XCTAssertTrue(report.allSucceeded, "\(report.results)")
        XCTAssertEqual(report.results.map(\.httpStatus), [200, 200, 200, 200, 200])
        XCTAssertEqual(report.results.map(\.attempts), [1, 1, 1, 1, 1])
        XCTAssertGreaterThanOrEqual(report.results[0].durationSeconds, 0.3)
        XCTAssertLessThan(report.results[4].durationSeconds, report.results[0].durationSeconds)
        XCTAssertEqual(server.peakDelayedRequests, 4, "the four delayed requests were all waiting at the server at once: sent in parallel")
        XCTAssertGreaterThanOrEqual(report.durationSeconds, report.slowestTargetSeconds)
        // Every target saw exactly one well-formed, signed-or-not webhook body.
        XCTAssertEqual(server.requestCount, 5)
        for r in server.requests {
            let body = try JSONValue.parse(r.body)
            XCTAssertEqual(body["data"]?["fingerprint"]?.stringValue, Samples.firingFull.fingerprint)
            XCTAssertEqual(r.header("content-type"), "application/json")
        }
        await assertDrained(publisher)
    }

    func testAHangingTargetIsReportedAsTimeoutWhileTheOthersSucceed() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                webhook("fast", server, "/ok"), webhook("stuck", server, "/hang"), webhook("slow", server, "/s?delay_ms=100"),
            ]))
        // /hang never answers: the publish completing at all, with `timeout` for it, is the deadline at work.
        let report = try await publisher.publish(Samples.firingFull, options: .init(deadline: .milliseconds(600)))
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .failed, .succeeded])
        XCTAssertEqual(report.results[1].errorKind, .timeout)
        XCTAssertTrue(report.results[1].retryable)
        XCTAssertEqual(report.results[1].deadlineSeconds ?? 0, 0.6, accuracy: 0.05)
        XCTAssertTrue(report.isPartialSuccess)
        await assertDrained(publisher)
    }

    func testDisabledTargetsAreSkippedAndSemanticsOfFailure() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                webhook("ok", server, "/ok"), webhook("off", server, "/ok", enabled: false),
                // A 400 is permanent for most vendors (Standard Webhooks targets retry it: see VendorConformanceTests).
                Target(name: "bad", type: .alertmanager, url: server.url("/status/400?body=nope")), webhook("down", server, "/status/503"),
            ]))
        let partial = try await publisher.publish(Samples.firingFull)
        XCTAssertEqual(partial.results.map(\.outcome), [.succeeded, .skipped, .failed, .failed])
        XCTAssertEqual(partial.results[1].skipReason, .disabled)
        XCTAssertEqual(partial.results[2].httpStatus, 400)
        XCTAssertEqual(partial.results[2].message, "nope")
        XCTAssertFalse(partial.results[2].retryable)
        XCTAssertTrue(partial.results[3].retryable)
        XCTAssertTrue(partial.isPartialSuccess)
        XCTAssertEqual(server.requests.filter { $0.path == "/ok" }.count, 1, "the disabled target was not contacted")

        do {
            _ = try await publisher.publish(Samples.firingFull, options: .init(selection: .named(["bad", "down", "off"])))
            XCTFail("all attempted targets failed")
        } catch .allFailed(let report) {
            XCTAssertEqual(report.results.map(\.target), ["bad", "down", "off"], "the error still carries every result")
            XCTAssertEqual(report.results.map(\.outcome), [.failed, .failed, .skipped])
        }
        do {
            _ = try await publisher.publish(Samples.firingFull, options: .init(selection: .named(["off"])))
            XCTFail("nothing enabled")
        } catch {
            guard case .noEnabledTargets = error else { return XCTFail("\(error)") }
        }
        await assertDrained(publisher)
    }

    func testInvalidInputIsRejectedBeforeAnythingIsSent() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: [webhook("a", server, "/ok")]))
        for options in [
            PublishOptions(selection: .named(["a", "zz"])), PublishOptions(selection: .named([])),
            PublishOptions(deadline: .zero), PublishOptions(selection: .named(["a", "a"])),
        ] {
            do {
                _ = try await publisher.publish(Samples.firingFull, options: options)
                XCTFail("\(options) should be rejected")
            } catch {
                guard case .invalidInput(let m) = error else { return XCTFail("\(error)") }
                XCTAssertFalse(m.isEmpty)
            }
        }
        XCTAssertEqual(server.requestCount, 0)
        await assertDrained(publisher)
    }

    func testCancelMidPublishReportsEveryTarget() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: [webhook("ok", server, "/ok"), webhook("stuck", server, "/hang")]))
        let box = Mutex<Result<PublishReport, PublishError>?>(nil)
        let handle = publisher.publish(Samples.firingFull, options: .init(deadline: .seconds(30))) { r in box.withLock { $0 = r } }
        // Once the reactor has completed the quick target (its result is taken in on the same queue, first).
        try await waitUntil { server.requestCount >= 2 && publisher.reactor.stats().completed >= 1 }
        handle.cancel()
        handle.cancel()
        try await waitUntil { box.withLock { $0 } != nil }
        guard case .failure(.cancelled(let report))? = box.withLock({ $0 }) else { return XCTFail("\(String(describing: box.withLock { $0 }))") }
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .failed])
        XCTAssertEqual(report.results[1].errorKind, .cancelled)
        XCTAssertEqual(publisher.activePublishes, 0)
        await assertDrained(publisher)
    }

    func testAThousandAlertsToFiveTargetsAreAccountedForExactlyOnce() async throws {
        let servers = try (0..<5).map { _ in try MockTarget(recordRequests: false) }
        defer { servers.forEach { $0.stop() } }
        let targets = servers.enumerated().map { webhook("t\($0.offset)", $0.element, "/ok?delay_ms=\($0.offset * 2)") }
        // Learned deadlines stay out of this count: a 50 ms deadline learned from the first answers can expire
        // for a request that waits behind a thousand others on a busy machine, and its retry is a second request.
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: targets), resilience: .init(adaptiveDeadlines: false))
        let n = 1000
        let tally = Mutex<(reports: Int, results: [Int], errors: Int)>((0, [Int](repeating: 0, count: 5), 0))
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            for i in 0..<n {
                var alert = Samples.minimal
                alert.labels["i"] = String(i)
                alert.fingerprint = Alert.fingerprint(of: alert.labels)
                // All at once: the last requests wait for a connection behind thousands of others, and an alert's
                // deadline bounds that wait (ten seconds by default; a sanitized build takes longer than that).
                publisher.publish(alert, options: .init(deadline: .seconds(120))) { result in
                    let done = tally.withLock { t -> Bool in
                        t.reports += 1
                        switch result {
                        case .success(let r):
                            for (k, res) in r.results.enumerated() where res.target == "t\(k)" && res.outcome == .succeeded { t.results[k] += 1 }
                        case .failure: t.errors += 1
                        }
                        return t.reports == n
                    }
                    if done { c.resume() }
                }
            }
        }
        let t = tally.withLock { $0 }
        XCTAssertEqual(t.reports, n, "one report per publish")
        XCTAssertEqual(t.errors, 0)
        XCTAssertEqual(t.results, [n, n, n, n, n], "every target of every alert, exactly once, in order")
        XCTAssertEqual(servers.map(\.requestCount), [n, n, n, n, n], "every request reached its server")
        await assertDrained(publisher)
        let stats = publisher.reactor.stats()
        XCTAssertTrue(stats.isIdleAndEmpty && stats.released, "\(stats)")
        XCTAssertEqual(stats.submitted, 5 * n)
    }

    /// Every vendor type against MockTarget's validating simulators, which answer a malformed payload, a missing
    /// header or a bad signature with the vendor's own error, so a formatter regression fails here.
    func testVendorTargetsAgainstLoopbackVendorsIncludingRootlyResolveByStoredID() async throws {
        let hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let server = try MockTarget(routes: [
            "/v2/enqueue": VendorSimulators.pagerDuty(), "/v1/alerts": VendorSimulators.rootly(), "/slack": VendorSimulators.slack(),
            "/am": VendorSimulators.alertmanagerReceiver(), "/hook": VendorSimulators.signedWebhook(secret: hookSecret),
        ])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "pd", type: .pagerduty, url: server.baseURL, secret: Secret("R0123456789abcdef0123456789abcde")),
                Target(name: "rootly", type: .rootly, url: server.baseURL, secret: Secret("k")),
                Target(name: "slack", type: .slack, url: server.url("/slack")),
                Target(name: "am", type: .alertmanager, url: server.url("/am")),
                Target(name: "hook", type: .webhook, url: server.url("/hook"), secret: Secret(hookSecret)),
            ]))
        let fired = try await publisher.publish(Samples.firingFull)
        XCTAssertTrue(fired.allSucceeded, "\(fired.results)")
        XCTAssertEqual(fired.results.map(\.httpStatus), [202, 201, 200, 200, 200])
        XCTAssertEqual(fired.results[1].detail, "r-1", "the id Rootly gave")
        let resolved = try await publisher.publish(Samples.resolved)
        XCTAssertTrue(resolved.allSucceeded, "\(resolved.results)")
        XCTAssertEqual(resolved.results[0...2].map(\.action), ["resolve", "resolve", "post"])
        XCTAssertEqual(
            server.requests.map(\.path).sorted(),
            ["/am", "/am", "/hook", "/hook", "/slack", "/slack", "/v1/alerts", "/v1/alerts/r-1/resolve", "/v2/enqueue", "/v2/enqueue"])
        // Resolving again: the id was forgotten after the resolve, so the formatter reports missing state.
        let again = try await publisher.publish(Samples.resolved, options: .init(selection: .named(["rootly", "pd"])))
        XCTAssertEqual(again.results[0].errorKind, .missingState)
        XCTAssertEqual(again.results[1].outcome, .succeeded)
        await assertDrained(publisher)
    }
}
