import FanoutCore
import MockTarget
import TestSupport
import XCTest

// DeliveryConformanceTests: how vendor answers change later deliveries (410 Gone, rate limits, retried bodies) — issue 13.
@testable import AlertFanout

final class DeliveryConformanceTests: XCTestCase {
    typealias C = FanoutMachine.Candidate

    func machine(_ candidates: [C], deadline: Double = 10, now: Double = 100) -> FanoutMachine {
        FanoutMachine(
            alertName: "A", fingerprint: "0123456789abcdef", status: "firing", candidates: candidates,
            options: .init(deadlineSeconds: deadline, defaultTimeoutSeconds: 4), now: now)
    }

    func report(_ actions: [FanoutMachine.Action]) -> PublishReport? {
        for a in actions { if case .complete(let r) = a { return r } }
        return nil
    }

    // MARK: 3. 410 Gone

    func testA410IsRememberedAndLaterPublishesSkipTheEndpoint() throws {
        var book = GuardBook()
        var rng = SplitMix64(seed: 3)
        let gone: FanoutMachine.AttemptOutcome = .rejected(
            status: 410, reading: .gone, message: "gone", retryAfterSeconds: nil, idempotent: true, action: "post")
        var first = machine([C(name: "hook", type: "webhook"), C(name: "ok", type: "webhook")])
        XCTAssertEqual(first.start(now: 100, book: &book).decisions.count, 2)
        XCTAssertTrue(first.attemptFinished(index: 0, outcome: gone, now: 100.1, book: &book, rng: &rng).decisions.isEmpty, "no retry after 410")
        let r1 = try XCTUnwrap(
            report(first.attemptFinished(index: 1, outcome: .delivered(status: 200, action: "post", detail: nil), now: 100.1, book: &book, rng: &rng).decisions)
        )
        XCTAssertEqual(r1.results[0].errorKind, .endpointGone)
        XCTAssertEqual(r1.results[0].attempts, 1)
        XCTAssertFalse(r1.results[0].retryable)
        XCTAssertTrue(book["hook"].endpointGone)

        var second = machine([C(name: "hook", type: "webhook"), C(name: "ok", type: "webhook")], now: 101)
        let start = second.start(now: 101, book: &book).decisions
        XCTAssertEqual(start, [.send(index: 1, attempt: 1, timeoutSeconds: 4)], "the gone endpoint is not sent to")
        let r2 = try XCTUnwrap(
            report(
                second.attemptFinished(index: 1, outcome: .delivered(status: 200, action: "post", detail: nil), now: 101.1, book: &book, rng: &rng).decisions))
        XCTAssertEqual(r2.results[0].outcome, .skipped)
        XCTAssertEqual(r2.results[0].skipReason, .endpointGone)
        XCTAssertFalse(r2.results[0].retryable)
        XCTAssertTrue(r2.results[0].message?.contains("410 Gone") ?? false)
        XCTAssertFalse(r2.allSucceeded, "unlike disabled, a gone endpoint is a delivery that did not happen")
        XCTAssertTrue(r2.isPartialSuccess)
    }

    func testARetryWaitingWhenAnotherPublishLearnsTheEndpointIsGoneIsNotSent() throws {
        var book = GuardBook()
        var rng = SplitMix64(seed: 5)
        var waiting = machine([C(name: "hook", type: "webhook")])
        _ = waiting.start(now: 100, book: &book).decisions
        let wait = waiting.attemptFinished(
            index: 0,
            outcome: .rejected(status: 503, reading: .retryable, message: "busy", retryAfterSeconds: nil, idempotent: true, action: "post"),
            now: 100.1, book: &book, rng: &rng
        ).decisions
        guard case .wait = wait.first else { return XCTFail("a 503 is retried: \(wait)") }
        book.markGone("hook")
        let r = try XCTUnwrap(report(waiting.timerFired(index: 0, now: 100.3, book: &book).decisions))
        XCTAssertEqual(r.results[0].httpStatus, 503, "the last real outcome is reported")
        XCTAssertEqual(r.results[0].attempts, 1)
    }

    func testA410EndpointIsContactedOnceThenSkipped() async throws {
        let server = try MockTarget(routes: ["/gone": .text("", status: 410), "/ok": .text("ok")])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "gone", type: .webhook, url: server.url("/gone")), Target(name: "ok", type: .webhook, url: server.url("/ok")),
            ]))
        let first = try await publisher.publish(Samples.numbered(0))
        XCTAssertEqual(first.results[0].outcome, .failed)
        XCTAssertEqual(first.results[0].errorKind, .endpointGone)
        XCTAssertEqual(first.results[0].httpStatus, 410)
        XCTAssertEqual(first.results[0].attempts, 1)
        XCTAssertFalse(first.results[0].retryable)
        let second = try await publisher.publish(Samples.numbered(1))
        XCTAssertEqual(second.results[0].skipReason, .endpointGone)
        XCTAssertEqual(second.results[1].outcome, .succeeded)
        XCTAssertTrue(second.isPartialSuccess)
        do {
            _ = try await publisher.publish(Samples.numbered(2), options: .init(selection: .named(["gone"])))
            XCTFail("only a gone target")
        } catch .noHealthyTargets(let r) {
            XCTAssertEqual(r.results[0].skipReason, .endpointGone)
        }
        XCTAssertEqual(server.requests.filter { $0.path == "/gone" }.count, 1)
        await assertDrained(publisher)
    }

    func testWebhook3xxAnd4xxAreRetriedLikeAnyOtherFailure() async throws {
        let server = try MockTarget(routes: [
            "/moved": .sequence([.text("", status: 301, headers: [("Location", "/elsewhere")]), .text("ok")]),
            "/missing": .sequence([.text("no such hook", status: 404), .text("ok")]),
        ])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "moved", type: .webhook, url: server.url("/moved")), Target(name: "missing", type: .webhook, url: server.url("/missing")),
            ]))
        let report = try await publisher.publish(Samples.numbered(0), options: .init(deadline: .seconds(5)))
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .succeeded])
        XCTAssertEqual(report.results.map(\.attempts), [2, 2])
        XCTAssertFalse(server.requests.contains { $0.path == "/elsewhere" }, "redirects are not followed")
        await assertDrained(publisher)
    }

    // MARK: 2. Retried bodies

    func testARetriedWebhookSendsTheSameBodySignedPerAttempt() async throws {
        let secret = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ"  // unpadded and unprefixed: still base64, as the reference verifiers read it
        let server = try MockTarget(routes: ["/hook": .sequence([.text("busy", status: 503), VendorSimulators.signedWebhook(secret: secret)])])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "hook", type: .webhook, url: server.url("/hook"), secret: Secret(secret))
            ]))
        let report = try await publisher.publish(Samples.resolved, options: .init(deadline: .seconds(5)))
        XCTAssertEqual(report.results[0].outcome, .succeeded, "\(report.results[0])")
        XCTAssertEqual(report.results[0].attempts, 2)
        let sent = server.requests
        XCTAssertEqual(sent.count, 2)
        XCTAssertEqual(sent[0].body, sent[1].body, "byte-identical under one webhook-id")
        XCTAssertEqual(sent[0].header("webhook-id"), sent[1].header("webhook-id"))
        XCTAssertEqual(try JSONValue.parse(sent[1].body)["timestamp"]?.stringValue, "2024-05-01T12:30:00Z")
        await assertDrained(publisher)
    }

    // MARK: 4. Rate limits

    func testARateLimitedSkipIsRetryable() throws {
        var book = GuardBook()
        let limit = RateLimit(requests: 45, periodSeconds: 60, burst: 1)
        let candidate = C(name: "rootly", type: "rootly", rateKey: "rootly:k", ratePerSecond: limit.perSecond, rateBurst: limit.burst)
        var first = machine([candidate], deadline: 1)
        XCTAssertEqual(first.start(now: 100, book: &book).decisions.count, 1, "the one token goes")
        var second = machine([candidate], deadline: 1)
        let r = try XCTUnwrap(report(second.start(now: 100, book: &book).decisions), "a 1.3 s wait does not fit what is left")
        XCTAssertEqual(r.results[0].skipReason, .rateLimited)
        XCTAssertTrue(r.results[0].retryable, "a rate limit delays a delivery, it does not refuse it")
    }

    // MARK: 5, 7. The vendor simulators accept what we send

    func testVendorSimulatorsAcceptOurLargestPayloads() async throws {
        let server = try MockTarget(routes: ["/v2/enqueue": VendorSimulators.pagerDuty(), "/slack": VendorSimulators.slack()])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "pd", type: .pagerduty, url: server.baseURL, secret: Secret("R0123456789abcdef0123456789abcde")),
                Target(name: "slack", type: .slack, url: server.url("/slack")),
            ]))
        var big = Samples.unicodeLong
        big.annotations["dump"] = String(repeating: "x", count: 700_000)
        let report = try await publisher.publish(big)
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .succeeded], "\(report.results.map { $0.message ?? "" })")
        await assertDrained(publisher)
    }
}
