// OutboxServiceTests: `fanout serve` with the SQLite outbox — 202 once stored, delivered by the dispatcher through real
// libcurl to MockTargets: outages outlived, TTL to dead letters and replay, group-aware Slack, rate limits that wait.
import AlertFanout
import CurlReactor
import FanoutCore
import FanoutServer
import FanoutStore
import Foundation
import MockTarget
import TestSupport
import XCTest

final class OutboxServiceTests: XCTestCase {
    func tempStore() throws -> SQLiteStore {
        try SQLiteStore(path: FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString).db").path)
    }

    func testWebhookAnswers202OnceStoredAndEveryDeliveryArrives() async throws {
        let a = try MockTarget()
        let slack = try MockTarget(routes: ["/services": VendorSimulators.slack()])
        let am = try MockTarget()
        defer {
            a.stop()
            slack.stop()
            am.stop()
        }
        let h = try await ServerHarness.start(
            """
            targets:
              - {name: hook, type: webhook, url: '\(a.url("/hook"))'}
              - {name: slack, type: slack, url: '\(slack.url("/services/T0/B0/x"))', rate_limit: 100/s}
              - {name: am, type: alertmanager, url: '\(am.url("/am"))'}
            """, store: try tempStore())
        let names = (0..<5).map { "Alert\($0)" }
        let reply = await h.call("POST", "/webhook", body: alertmanagerPayload(names))
        XCTAssertEqual(reply.status, 202, reply.text)
        XCTAssertEqual(reply.json?["deliveries"]?.intValue, 7, "5 webhook deliveries, one Slack message, one envelope")
        try await waitUntil(seconds: 10) { a.requestCount == 5 && slack.requestCount == 1 && am.requestCount == 1 }
        try await waitUntil(seconds: 10) { await h.stats()["deliveries"]?["pending"]?.intValue == 0 }
        let s = await h.stats()
        XCTAssertEqual(s["deliveries"]?["delivered"]?.intValue, 7, "\(s)")
        // Group-aware: one Slack message listing the five alerts, one Alertmanager envelope as received.
        let message = try JSONValue.parse(slack.requests[0].body)
        XCTAssertTrue(message["blocks"]?.arrayValue?.first?["text"]?["text"]?.stringValue?.contains("5 firing") ?? false, "\(message)")
        let envelope = try JSONValue.parse(am.requests[0].body)
        XCTAssertEqual(envelope["alerts"]?.arrayValue?.count, 5)
        XCTAssertEqual(envelope["groupKey"]?.stringValue, #"{}:{alertname="x"}"#, "the received group key is kept")
        try await h.stop()
    }

    func testATargetDownLongerThanTheDeadlineGetsEverythingWhenItReturns() async throws {
        let t = try MockTarget(routes: ["/flaky": .text("down", status: 503)])
        defer { t.stop() }
        let h = try await ServerHarness.start(
            """
            server: {publish_deadline: 300ms}
            targets:
              - {name: flaky, type: webhook, url: '\(t.url("/flaky"))'}
            """, store: try tempStore(), policy: DeliveryPolicy(backoffBaseSeconds: 0.05, backoffCapSeconds: 0.3, skipDelaySeconds: 0.2),
            resilience: ResilienceConfig(breaker: .init(cooldownSeconds: 0.5)))
        for i in 0..<10 {
            let r = await h.call("POST", "/webhook", body: alertmanagerPayload(["Down\(i)"]))
            XCTAssertEqual(r.status, 202)
        }
        // Down for well past one publish deadline (the breaker opens, probes, opens again): nothing is lost.
        try await waitUntil(seconds: 10) { t.requestCount >= 6 }
        let during = await h.stats()
        XCTAssertEqual(during["deliveries"]?["pending"]?.intValue, 10, "\(during)")
        XCTAssertEqual(during["deliveries"]?["dead"]?.intValue, 0)
        t.route("/flaky", .text("ok"))
        try await waitUntil(seconds: 15) { await h.stats()["deliveries"]?["delivered"]?.intValue == 10 }
        let bodies = t.requests.filter { $0.path == "/flaky" }.compactMap { try? JSONValue.parse($0.body) }
        let delivered = Set(bodies.compactMap { $0["data"]?["labels"]?["alertname"]?.stringValue })
        XCTAssertEqual(delivered.count, 10)
        try await h.stop()
    }

    func testTTLExpiryEndsInTheDeadLetterListAndReplayDelivers() async throws {
        let t = try MockTarget(routes: ["/t": .text("nope", status: 503)])
        defer { t.stop() }
        let h = try await ServerHarness.start(
            """
            server: {publish_deadline: 200ms}
            targets:
              - {name: t, type: webhook, url: '\(t.url("/t"))'}
            """, store: try tempStore(), policy: DeliveryPolicy(ttlSeconds: 1, backoffBaseSeconds: 0.05, backoffCapSeconds: 0.2, skipDelaySeconds: 0.1),
            resilience: ResilienceConfig(breaker: .init(cooldownSeconds: 0.2)))
        let r = await h.call("POST", "/webhook", body: alertmanagerPayload(["Expiring"]))
        XCTAssertEqual(r.status, 202)
        try await waitUntil(seconds: 10) { await h.stats()["deliveries"]?["dead"]?.intValue == 1 }
        let dlq = await h.call("GET", "/api/v2/publishing/dlq?target=t")
        let letter = try XCTUnwrap(dlq.json?["dead_letters"]?.arrayValue?.first, dlq.text)
        XCTAssertTrue(letter["last_error"]?.stringValue?.contains("delivery_ttl") ?? false, dlq.text)
        XCTAssertEqual(letter["last_status"]?.intValue, 503)
        let metrics = await h.call("GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"alertfanout_outbox_deliveries_total{target="t",result="dead"} 1"#), metrics)

        t.route("/t", .text("ok"))
        let id = try XCTUnwrap(letter["id"]?.intValue)
        let replay = await h.call("POST", "/api/v2/publishing/dlq/\(id)/replay")
        XCTAssertEqual(replay.status, 200, replay.text)
        XCTAssertEqual(replay.json?["replayed"]?.intValue, 1)
        try await waitUntil(seconds: 10) { await h.stats()["deliveries"]?["delivered"]?.intValue == 1 }
        let missing = await h.call("POST", "/api/v2/publishing/dlq/999999/replay")
        XCTAssertEqual(missing.status, 404)
        try await h.stop()
    }

    func testRateLimitedDeliveriesWaitForTheirTokenInsteadOfBeingDropped() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let h = try await ServerHarness.start(
            """
            server: {publish_deadline: 200ms}
            targets:
              - {name: slow-vendor, type: webhook, url: '\(t.url("/v"))', rate_limit: {requests: 20, per: 1s, burst: 2}}
            """, store: try tempStore())
        let r = await h.call("POST", "/webhook", body: alertmanagerPayload((0..<30).map { "Storm\($0)" }))
        XCTAssertEqual(r.status, 202)
        try await waitUntil(seconds: 15) { await h.stats()["deliveries"]?["delivered"]?.intValue == 30 }
        XCTAssertEqual(t.requestCount, 30, "every alert delivered once, none dropped")
        let s = await h.stats()
        XCTAssertEqual(s["deliveries"]?["dead"]?.intValue, 0, "\(s)")
        try await h.stop()
    }

    func testRootlyResolveAcrossARestartUsesTheStoredID() async throws {
        let rootly = try MockTarget(routes: ["/v1/alerts": VendorSimulators.rootly()])
        defer { rootly.stop() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString).db").path
        let yaml = "targets:\n  - {name: rootly, type: rootly, url: '\(rootly.baseURL)', api_key: k}\n"
        let first = try await ServerHarness.start(yaml, store: try SQLiteStore(path: path))
        _ = await first.call("POST", "/webhook", body: alertmanagerPayload(["Outage"]))
        try await waitUntil(seconds: 10) { await first.stats()["deliveries"]?["delivered"]?.intValue == 1 }
        try await first.stop()
        // A new process (new publisher, empty memory) on the same file.
        let second = try await ServerHarness.start(yaml, store: try SQLiteStore(path: path))
        _ = await second.call("POST", "/webhook", body: alertmanagerPayload(["Outage"], status: "resolved"))
        try await waitUntil(seconds: 10) { rootly.requestCount == 2 }
        XCTAssertTrue(rootly.requests[1].path.hasSuffix("/resolve"), "\(rootly.requests.map(\.path))")
        try await waitUntil(seconds: 10) { await second.stats()["deliveries"]?["pending"]?.intValue == 0 }
        let s = await second.stats()
        XCTAssertEqual(s["deliveries"]?["dead"]?.intValue, 0, "\(s)")
        try await second.stop()
    }

    func testAStoreThatFailsAnswers503AndReadinessFails() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ro-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir.appendingPathComponent("o.db").path)
        let h = try await ServerHarness.start("targets:\n  - {name: t, type: webhook, url: '\(t.url("/t"))'}\n", store: store)
        await store.close()  // the database goes away
        let r = await h.call("POST", "/webhook", body: alertmanagerPayload(["Lost?"]))
        XCTAssertEqual(r.status, 503, "never a 2xx for what was not stored: \(r.text)")
        let ready = await h.call("GET", "/-/ready")
        XCTAssertEqual(ready.status, 503, ready.text)
        XCTAssertEqual(t.requestCount, 0)
        try await h.stop()
    }
}
