// AlertmanagerPeerTests: Debian's real Prometheus Alertmanager as the sender — its webhook_configs receiver, with a
// bearer token from http_config, POSTs to a running FanoutServer, which delivers to a loopback MockTarget.
import AlertFanout
import CurlReactor
import Foundation
import MockTarget
import TestSupport
import XCTest

final class AlertmanagerPeerTests: XCTestCase {
    static let binary = ["/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func testRealAlertmanagerDeliversFiringAndResolvedThroughTheService() async throws {
        let binary = try XCTUnwrap(Self.binary, "Debian's prometheus-alertmanager is not installed (tools/run test installs it)")
        let sink = try MockTarget()
        defer { sink.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("am-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokenFile = dir.appendingPathComponent("token").path
        try "am-to-fanout-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let h = try await ServerHarness.start(
            """
            server:
              auth: {bearer_token_file: \(tokenFile)}
            targets:
              - {name: sink, type: webhook, url: '\(sink.url("/sink"))'}
            """)
        // The receiver block is the one the README shows, with this test's addresses.
        let amPort = try freeLoopbackPort()
        let amConfig = dir.appendingPathComponent("alertmanager.yml").path
        try """
        route:
          receiver: fanout
          group_by: ['alertname']
          group_wait: 0s
          group_interval: 1s
          repeat_interval: 1h
        receivers:
          - name: fanout
            webhook_configs:
              - url: http://127.0.0.1:\(h.port)/webhook
                send_resolved: true
                http_config:
                  authorization:
                    type: Bearer
                    credentials_file: \(tokenFile)
        """.write(toFile: amConfig, atomically: true, encoding: .utf8)
        let am = Process()
        am.executableURL = URL(fileURLWithPath: binary)
        am.arguments = [
            "--config.file=\(amConfig)", "--storage.path=\(dir.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(amPort)", "--cluster.listen-address=", "--log.level=warn",
        ]
        let amLog = Pipe()
        am.standardOutput = amLog
        am.standardError = amLog
        try am.run()
        defer {
            if am.isRunning {
                am.terminate()
                am.waitUntilExit()
            }
        }
        let client = try CurlReactor()
        @Sendable func amCall(_ method: String, _ path: String, _ body: String? = nil) async -> Int {
            let r = await client.execute(
                HTTPRequest(
                    method: method, url: "http://127.0.0.1:\(amPort)\(path)",
                    headers: body == nil ? [] : [HTTPHeader("Content-Type", "application/json")],
                    body: body.map { Array($0.utf8) }, timeout: .seconds(5)))
            return (try? r.get().status) ?? 0
        }
        try await waitUntil(seconds: 20) { await amCall("GET", "/-/ready") == 200 }

        let firing =
            #"[{"labels":{"alertname":"DiskFull","instance":"db-1"},"annotations":{"summary":"disk full"}},{"labels":{"alertname":"DiskFull","instance":"db-2"},"annotations":{"summary":"disk full"}}]"#
        let posted = await amCall("POST", "/api/v2/alerts", firing)
        XCTAssertEqual(posted, 200)
        try await waitUntil(seconds: 20) { sink.requestCount >= 2 }
        let first = sink.requests.compactMap { try? JSONValue.parse($0.body) }
        XCTAssertEqual(Set(first.compactMap { $0["data"]?["labels"]?["instance"]?.stringValue }), ["db-1", "db-2"])

        let past = "2020-01-01T00:00:00Z"
        let resolved =
            #"[{"labels":{"alertname":"DiskFull","instance":"db-1"},"annotations":{"summary":"disk full"},"startsAt":"2019-12-31T00:00:00Z","endsAt":"\#(past)"},{"labels":{"alertname":"DiskFull","instance":"db-2"},"annotations":{"summary":"disk full"},"startsAt":"2019-12-31T00:00:00Z","endsAt":"\#(past)"}]"#
        _ = await amCall("POST", "/api/v2/alerts", resolved)
        try await waitUntil(seconds: 20) {
            sink.requests.compactMap { try? JSONValue.parse($0.body) }.filter { $0["data"]?["status"]?.stringValue == "resolved" }.count >= 2
        }
        let stats = await h.call("GET", "/api/v2/publishing/stats", headers: [HTTPHeader("Authorization", "Bearer am-to-fanout-token")])
        XCTAssertGreaterThanOrEqual(stats.json?["alerts_accepted"]?.intValue ?? 0, 4, stats.text)
        let metrics = await h.call("GET", "/metrics")
        XCTAssertFalse(metrics.text.contains(#"status="401""#), "Alertmanager's bearer token was accepted every time")
        am.terminate()
        am.waitUntilExit()
        await client.shutdown(.drain)
        try await h.stop()
    }
}

/// A port that was free on 127.0.0.1 a moment ago (bound to port 0, then released).
func freeLoopbackPort() throws -> Int {
    let server = try MockTarget()
    let port = server.port
    server.stop()
    return port
}

final class DeployExampleTests: XCTestCase {
    /// The receiver example under tools/deploy passes Alertmanager's own config check.
    func testShippedAlertmanagerExamplePassesAmtool() throws {
        let amtool = ["/usr/bin/amtool", "/usr/local/bin/amtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let tool = try XCTUnwrap(amtool, "amtool is not installed (Debian's prometheus-alertmanager; tools/run test installs it)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = root.appendingPathComponent("tools/deploy/alertmanager.yml").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["check-config", example]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("1 receivers"), text)
    }
}
