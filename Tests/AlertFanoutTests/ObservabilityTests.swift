import FanoutCore
import Foundation
import InMemoryLogging
import Logging
import MetricsTestKit
import MockTarget
import XCTest

// ObservabilityTests: metrics match the reports exactly, no secret reaches a metric label or a log line, and the
// Grafana dashboard only uses metric names we emit.
@testable import AlertFanout

final class ObservabilityTests: XCTestCase {
    func testCountersMatchReportsAndNothingSecretLeaks() async throws {
        let pdKey = "R0123456789abcdef0123456789abcde"
        let rootlyKey = "rootly-very-secret"
        let hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let server = try MockTarget(routes: [
            "/v2/enqueue": .text(#"{"status":"success","message":"Event processed","dedup_key":"k"}"#, status: 202),
            // Error bodies that echo credentials (a proxy's or a vendor's error page can): reports, logs and
            // metrics must carry them redacted.
            "/v1/alerts": .custom { r in .text(#"{"errors":[{"title":"invalid token: \#(r.header("authorization") ?? "")"}]}"#, status: 422) },
            "/flaky": .flap(every: 2, failure: .text("busy", status: 503), success: .text("ok")),
            "/hook": .text("ok"),
            "/services/T000/B000/SLACKSECRETPATH": .flap(
                every: 2,
                failure: .custom { r in
                    .text("no_service: http://\(r.header("host") ?? "")\(r.path)", status: 404)
                }, success: .text("ok")),
        ])
        defer { server.stop() }
        let config = TargetsConfig(targets: [
            Target(name: "pd", type: .pagerduty, url: server.baseURL, secret: Secret(pdKey)),
            Target(name: "rootly", type: .rootly, url: server.baseURL, secret: Secret(rootlyKey)),
            Target(name: "flaky", type: .webhook, url: server.url("/flaky")),
            Target(name: "hook", type: .webhook, url: server.url("/hook"), secret: Secret(hookSecret)),
            Target(name: "slack", type: .slack, url: server.url("/services/T000/B000/SLACKSECRETPATH"), rateLimit: RateLimit(requests: 1000, periodSeconds: 1)),
            Target(name: "off", type: .webhook, url: server.url("/hook"), enabled: false),
        ])
        let metrics = TestMetrics()
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "test", factory: { _ in logs })
        logger.logLevel = .debug
        let publisher = try FanoutPublisher(targets: config, logger: logger, metrics: metrics)
        var reports: [PublishReport] = []
        var fingerprints: [String] = []
        for i in 0..<10 {
            var alert = Samples.firingFull
            alert.labels["i"] = String(i)
            alert.fingerprint = Alert.fingerprint(of: alert.labels)
            fingerprints.append(alert.fingerprint)
            reports.append(try await publisher.publish(alert, options: .init(strategy: .publishToAll)))
        }
        await assertDrained(publisher)

        // Publishes by result.
        let partial = reports.filter { !$0.allSucceeded }.count
        XCTAssertEqual(metrics.counterTotal(label: FanoutMetricNames.publishes, dimensions: [("result", "partial")]), Int64(partial))
        XCTAssertEqual(try metrics.expectTimer(FanoutMetricNames.publishDuration).values.count, 10)
        // Per-target results, retries and skips: exactly what the reports say.
        var expected: [String: Int64] = [:]
        var retries: [String: Int64] = [:]
        for r in reports {
            for t in r.results {
                expected["\(t.target)|\(t.outcome.rawValue)|\(t.errorKind?.rawValue ?? "none")", default: 0] += 1
                retries[t.target, default: 0] += Int64(max(0, t.attempts - 1))
            }
        }
        var seen: [String: Int64] = [:]
        for c in metrics.counters(label: FanoutMetricNames.targetRequests) {
            let d = Dictionary(uniqueKeysWithValues: c.dimensions)
            seen["\(d["target"]!)|\(d["outcome"]!)|\(d["error_kind"]!)"] = c.totalValue
        }
        XCTAssertEqual(seen, expected)
        XCTAssertEqual(seen["off|skipped|none"], 10)
        XCTAssertEqual((seen["rootly|failed|http_status"] ?? 0) + (seen["rootly|skipped|none"] ?? 0), 10, "failed until its breaker opened, then skipped")
        XCTAssertEqual(
            metrics.counterTotal(label: FanoutMetricNames.skips, dimensions: [("target", "rootly"), ("reason", "circuit_open")]),
            seen["rootly|skipped|none"] ?? 0)
        XCTAssertGreaterThan(metrics.counterTotal(label: FanoutMetricNames.breakerTransitions, dimensions: [("target", "rootly"), ("to", "open")]), 0)
        XCTAssertGreaterThan(retries["flaky"] ?? 0, 0, "the flaky target was retried")
        for (target, n) in retries where n > 0 {
            XCTAssertEqual(metrics.counterTotal(label: FanoutMetricNames.retries, dimensions: [("target", target)]), n)
        }
        XCTAssertEqual(metrics.counterTotal(label: FanoutMetricNames.skips, dimensions: [("target", "off"), ("reason", "disabled")]), 10)
        XCTAssertEqual(try metrics.expectGauge(FanoutMetricNames.breakerState, [("target", "pd")]).lastValue, 0)

        // Logs: one line per publish at warning (partial), per-target lines at debug, all with the fingerprint;
        // guard changes (breaker moves, health) get their own lines, with the target.
        let logLines = logs.entries
        let guardLines: Set<String> = ["circuit breaker moved", "target health changed", "waiting for a rate-limit token"]
        let entries = logLines.filter { !guardLines.contains($0.message.description) }
        XCTAssertEqual(entries.filter { $0.level == .warning }.count, partial)
        XCTAssertEqual(entries.filter { $0.level == .warning }.map(\.message.description), Array(repeating: "alert partially delivered", count: partial))
        XCTAssertEqual(entries.filter { $0.level == .debug && $0.message.description == "target result" }.count, 10 * config.targets.count)
        XCTAssertTrue(entries.allSatisfy { $0.metadata["alert.fingerprint"] != nil })
        let opened = logLines.filter { $0.message.description == "circuit breaker moved" && $0.metadata["to"] == "open" && $0.metadata["target"] == "rootly" }
        XCTAssertEqual(opened.first?.level, .warning, "a breaker opening is a warning")
        XCTAssertEqual(opened.first?.metadata["target"], "rootly")
        XCTAssertEqual(
            Int64(opened.count),
            metrics.counterTotal(label: FanoutMetricNames.breakerTransitions, dimensions: [("target", "rootly"), ("to", "open")]),
            "one line per move, one count per move")

        // No secret anywhere: metric labels, dimension values, log messages and metadata.
        var haystack: [String] = []
        for c in metrics.counters {
            haystack.append(c.label)
            haystack += c.dimensions.map { "\($0.0)=\($0.1)" }
        }
        for r in metrics.recorders {
            haystack.append(r.label)
            haystack += r.dimensions.map { "\($0.0)=\($0.1)" }
        }
        for t in metrics.timers {
            haystack.append(t.label)
            haystack += t.dimensions.map { "\($0.0)=\($0.1)" }
        }
        for e in logLines {
            haystack.append(e.message.description)
            haystack += e.metadata.map { "\($0.key)=\($0.value)" }
        }
        let all = haystack.joined(separator: "\n")
        for secret in [pdKey, rootlyKey, hookSecret, "SLACKSECRETPATH", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", server.baseURL] {
            XCTAssertFalse(all.contains(secret), "\(secret) leaked")
        }
        // The echoes happened (so the checks above could fail) and were redacted in the reports too.
        let messages = reports.flatMap(\.results).compactMap(\.message)
        XCTAssertTrue(messages.contains { $0.contains("<redacted>") }, "the Rootly error echoed its token: \(messages)")
        XCTAssertTrue(messages.contains { $0.contains("<slack url>") }, "the Slack error echoed its URL: \(messages)")
        for secret in [pdKey, rootlyKey, "SLACKSECRETPATH"] { XCTAssertFalse(messages.joined().contains(secret), "\(secret) in a report") }
        // Fingerprints are log metadata (every publish's is there), never metric labels.
        let logged = Set(entries.compactMap { $0.metadata["alert.fingerprint"].map { "\($0)" } })
        XCTAssertEqual(logged, Set(fingerprints))
        var labels: [String] = []
        for c in metrics.counters { labels += c.dimensions.map(\.1) }
        for r in metrics.recorders { labels += r.dimensions.map(\.1) }
        for t in metrics.timers { labels += t.dimensions.map(\.1) }
        for fp in fingerprints { XCTAssertFalse(labels.contains { $0.contains(fp) }, "fingerprint \(fp) in a metric label") }
    }

    func testTheDashboardUsesOnlyMetricsWeEmit() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/grafana/alertfanout-dashboard.json")
        let dash = try JSONValue.parse(Array(try Data(contentsOf: url)))
        let panels = try XCTUnwrap(dash["panels"]?.arrayValue)
        XCTAssertGreaterThanOrEqual(panels.count, 5)
        var used = Set<String>()
        for p in panels {
            for t in p["targets"]?.arrayValue ?? [] {
                let expr = t["expr"]?.stringValue ?? ""
                for m in expr.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }) where m.hasPrefix("alertfanout_") {
                    var name = String(m)
                    for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !FanoutMetricNames.all.contains(name) {
                        name.removeLast(suffix.count)
                    }
                    used.insert(name)
                }
            }
        }
        XCTAssertFalse(used.isEmpty)
        XCTAssertEqual(used.subtracting(FanoutMetricNames.all), [], "the dashboard names metrics that are not emitted")
        XCTAssertTrue(FanoutMetricNames.all.allSatisfy { FanoutMetricNames.help[$0] != nil }, "every metric has help text")
    }
}
