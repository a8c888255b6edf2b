import CurlReactor
import Dispatch
import FanoutCore
import InMemoryLogging
import Logging
import MockTarget
import TestSupport
import XCTest

// ResilienceLoopbackTests: breakers, Retry-After, adaptive deadlines and the retry budget against real loopback servers.
@testable import AlertFanout

final class ResilienceLoopbackTests: XCTestCase {
    func testAFlappingTargetOpensItsBreakerAdmitsOneProbeAndRecovers() async throws {
        let server = try MockTarget(routes: [
            "/flappy": .sequence([
                .text("down", status: 503), .text("down", status: 503), .text("down", status: 503),
                .text("ok", delay: .milliseconds(150)),  // the probe stays out while the second publish asks
            ])
        ])
        defer { server.stop() }
        let resilience = ResilienceConfig(
            breaker: .init(consecutiveFailures: 3, cooldownSeconds: 0.3, successesToClose: 1),
            retry: .init(maxAttempts: 1))
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [Target(name: "flappy", type: .webhook, url: server.url("/flappy"))]),
            resilience: resilience)
        let options = PublishOptions(strategy: .publishToAll)
        for i in 0..<3 {
            do {
                _ = try await publisher.publish(Samples.numbered(i), options: options)
                XCTFail("503 expected")
            } catch {}
        }
        XCTAssertEqual(publisher.guards["flappy"].breaker.state.name, "open")
        do {
            _ = try await publisher.publish(Samples.numbered(3), options: options)
            XCTFail("the open breaker skips the target")
        } catch .noHealthyTargets(let r) {
            XCTAssertEqual(r.results[0].skipReason, .circuitOpen)
        }
        XCTAssertEqual(server.requestCount, 3, "nothing sent while open")
        try await Task.sleep(for: .milliseconds(350))
        // Two publishes at once after the cooldown: exactly one probe goes out.
        let a4 = Samples.numbered(4)
        let a5 = Samples.numbered(5)
        async let a = try? publisher.publish(a4, options: options)
        async let b = try? publisher.publish(a5, options: options)
        let (ra, rb) = await (a, b)
        XCTAssertEqual([ra, rb].compactMap { $0 }.count, 1, "one probe succeeded, the other publish was skipped")
        XCTAssertEqual(server.requestCount, 4, "exactly one half-open probe")
        XCTAssertEqual(publisher.guards["flappy"].breaker.state, .closed, "the successful probe closed it")
        let after = try await publisher.publish(Samples.numbered(6), options: options)
        XCTAssertEqual(after.results[0].outcome, .succeeded)
        await assertDrained(publisher)
    }

    func test429WithRetryAfterIsRetriedAfterAboutASecond() async throws {
        let server = try MockTarget(routes: ["/limited": .sequence([.retryAfter(status: 429, value: "1"), .text("ok")])])
        defer { server.stop() }
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: [Target(name: "limited", type: .webhook, url: server.url("/limited"))]))
        let report = try await publisher.publish(Samples.numbered(0), options: .init(deadline: .seconds(5)))
        XCTAssertEqual(report.results[0].outcome, .succeeded)
        XCTAssertEqual(report.results[0].attempts, 2)
        XCTAssertGreaterThanOrEqual(report.results[0].durationSeconds, 1.0, "waited for Retry-After")
        XCTAssertEqual(server.requestCount, 2)
        // A Retry-After longer than what is left of the deadline is not waited for.
        let slow = try MockTarget(routes: ["/later": .retryAfter(status: 503, value: "30")])
        defer { slow.stop() }
        let p2 = try FanoutPublisher(targets: TargetsConfig(targets: [Target(name: "later", type: .webhook, url: slow.url("/later"))]))
        do {
            _ = try await p2.publish(Samples.numbered(1), options: .init(deadline: .seconds(2)))
            XCTFail()
        } catch .allFailed(let r) {
            XCTAssertEqual(r.results[0].attempts, 1)
            XCTAssertTrue(r.results[0].message?.contains("Retry-After 30 s exceeds") ?? false, "\(r.results[0])")
        }
        await assertDrained(publisher)
        await assertDrained(p2)
    }

    func testTheDeadlineTightensAndAStragglerNoLongerHoldsThePublish() async throws {
        // 25 quick answers teach the target's latency; then one request hangs; the retry is quick again.
        var script = [MockBehavior](repeating: .text("ok", delay: .milliseconds(10)), count: 25)
        script.append(.hang)
        script.append(.text("ok", delay: .milliseconds(10)))
        let server = try MockTarget(routes: ["/t": .sequence(script)])
        defer { server.stop() }
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: [Target(name: "t", type: .webhook, url: server.url("/t"), timeoutSeconds: 5)]))
        var deadlines: [Double] = []
        for i in 0..<25 {
            let r = try await publisher.publish(Samples.numbered(i))
            deadlines.append(r.results[0].deadlineSeconds ?? -1)
        }
        XCTAssertEqual(deadlines.first ?? 0, 5, accuracy: 0.01, "the configured timeout until the latency is known")
        XCTAssertLessThan(deadlines.last!, 0.2, "learned: \(deadlines.suffix(3))")
        let straggler = try await publisher.publish(Samples.numbered(99))
        XCTAssertEqual(straggler.results[0].outcome, .succeeded)
        XCTAssertEqual(straggler.results[0].attempts, 2, "the hung attempt was cut at its adaptive deadline and retried")
        XCTAssertLessThan(straggler.results[0].deadlineSeconds ?? 5, 1.0, "the attempts got the learned deadline, not the 5 s timeout")
        await assertDrained(publisher)
    }

    func testTheRetryBudgetCapsLoadOnAFailingTarget() async throws {
        let server = try MockTarget(routes: ["/down": .text("unavailable", status: 503)], recordRequests: false)
        defer { server.stop() }
        let resilience = ResilienceConfig(
            retry: .init(maxAttempts: 3, baseSeconds: 0.001, capSeconds: 0.002),
            budgetRatio: 0.2, budgetFloorPerSecond: 1, budgetMaxTokens: 10, breakersEnabled: false)
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "test", factory: { _ in logs })
        logger.logLevel = .notice
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [Target(name: "down", type: .webhook, url: server.url("/down"))]),
            resilience: resilience, logger: logger)
        let n = 100
        let started = ContinuousClock.now
        for i in 0..<n {
            _ = try? await publisher.publish(Samples.numbered(i), options: .init(strategy: .publishToAll))
        }
        let seconds = (ContinuousClock.now - started).seconds
        let sent = server.requestCount
        XCTAssertGreaterThan(sent, n, "some retries happened")
        XCTAssertLessThanOrEqual(
            Double(sent), Double(n) * 1.2 + 10 + seconds * 1 + 2, "≤ 20 % extra plus the floor and saved tokens (no budget would allow \(3 * n))")
        let denied = logs.entries.count { $0.message.description.contains("retry budget is spent") }
        XCTAssertGreaterThan(denied, 0, "every refused retry is logged")
        await assertDrained(publisher)
    }

    func testRateLimitedTargetsWaitForATokenOrAreSkippedWhenItCannotComeInTime() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let slack = Target(name: "slack", type: .slack, url: server.url("/slack"))  // Slack's default: 1/s, burst 3
        let publisher = try FanoutPublisher(targets: TargetsConfig(targets: [slack]))
        var outcomes: [String] = []
        for i in 0..<5 {
            do {
                let r = try await publisher.publish(Samples.numbered(i), options: .init(deadline: .milliseconds(1500)))
                outcomes.append("\(r.results[0].outcome.rawValue):\(Int(r.durationSeconds.rounded()))")
            } catch {
                outcomes.append("error:\(error)")
            }
        }
        XCTAssertEqual(Array(outcomes.prefix(3)), ["succeeded:0", "succeeded:0", "succeeded:0"], "the burst")
        XCTAssertEqual(outcomes[3], "succeeded:1", "waited about a second for a token")
        XCTAssertEqual(outcomes[4], "succeeded:1")
        await assertDrained(publisher)

        // A token that cannot come within the deadline: skipped as rate_limited (retryable), never sent.
        let fresh = try FanoutPublisher(targets: TargetsConfig(targets: [slack]))
        for i in 0..<3 { _ = try await fresh.publish(Samples.numbered(10 + i), options: .init(deadline: .milliseconds(1500))) }
        let before = server.requestCount
        do {
            let r = try await fresh.publish(Samples.numbered(20), options: .init(deadline: .milliseconds(300)))
            XCTFail("a publish whose only target was skipped is not a success: \(r)")
        } catch {
            let result = try XCTUnwrap(error.report?.results.first, "\(error)")
            XCTAssertEqual(result.outcome, .skipped)
            XCTAssertEqual(result.skipReason, .rateLimited)
            XCTAssertTrue(result.retryable)
        }
        XCTAssertEqual(server.requestCount, before, "nothing sent for the skipped alert")
        await assertDrained(fresh)
    }
}

final class ProbeAndSecrecyTests: XCTestCase {
    func testActiveProbesCannotFalseAlarmOnAuthenticatedEndpointsButSeeUnreachableOnes() async throws {
        let server = try MockTarget(routes: ["/auth": .text("unauthorized", status: 401), "/post-only": .text("method not allowed", status: 405)])
        defer { server.stop() }
        let closed = try MockTarget()
        let deadURL = closed.url("/gone")
        closed.stop()
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "auth", type: .webhook, url: server.url("/auth")),
                Target(name: "post-only", type: .webhook, url: server.url("/post-only")),
                Target(name: "dead", type: .webhook, url: deadURL),
            ]))
        publisher.startProbing(every: .milliseconds(200))
        // Until the probes have seen every target twice (the dead one refused at least twice).
        try await waitUntil {
            let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
            return server.requestCount >= 4 && publisher.guards.health("dead", now: now) == .unhealthy
        }
        let book = publisher.guards
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        XCTAssertEqual(book.health("auth", now: now), .unknown, "a 401 still proves the endpoint reachable")
        XCTAssertEqual(book.health("post-only", now: now), .unknown)
        XCTAssertEqual(book.health("dead", now: now), .unhealthy, "refused connections mark it unhealthy")
        XCTAssertTrue(server.requests.allSatisfy { $0.method == "HEAD" })
        XCTAssertGreaterThanOrEqual(server.requestCount, 2)
        await assertDrained(publisher)
    }

    func testSecretsEchoedByAVendorNeverReachTheReport() async throws {
        let secret = "R0123456789abcdef0123456789abcde"
        let server = try MockTarget(routes: ["/v2/enqueue": .text("bad key \(secret) rejected", status: 400)])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "pd", type: .pagerduty, url: server.baseURL, secret: Secret(secret))
            ]))
        do {
            _ = try await publisher.publish(Samples.firingFull)
            XCTFail()
        } catch .allFailed(let report) {
            let text = report.json.jsonText
            XCTAssertFalse(text.contains(secret), text)
            XCTAssertTrue(text.contains("bad key <redacted> rejected"), text)
        }
        await assertDrained(publisher)
    }
}
