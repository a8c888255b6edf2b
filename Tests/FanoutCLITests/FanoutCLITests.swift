// FanoutCLITests: the built `fanout` executable run as a user would — publish against loopback servers, demo, bad input.
import Foundation
import MockTarget
import TestSupport
import XCTest

final class FanoutCLITests: XCTestCase {
    /// The `fanout` binary built next to this test bundle.
    var fanout: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
    }

    struct Run {
        var status: Int32
        var out: String
        var err: String
    }

    func run(_ args: [String], stdin: String? = nil, env: [String: String] = [:]) throws -> Run {
        let r = try runFanout(args, stdin: stdin, env: env)
        return Run(status: r.status, out: r.out, err: r.err)
    }

    func targetsFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("targets-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: fanout.path), "fanout is not built next to the tests")
    }

    func testPublishReportsEveryTargetAndExitsByOutcome() throws {
        let server = try MockTarget()
        defer { server.stop() }
        let targets = try targetsFile(
            """
            targets:
              - {name: ok, type: webhook, url: '\(server.url("/ok"))', secret: '${HOOK_SECRET}'}
              - {name: broken, type: webhook, url: '\(server.url("/status/400?body=nope"))'}
              - {name: off, type: slack, url: '\(server.url("/slack-disabled"))', enabled: false}
            """)
        let alerts = #"[{"labels":{"alertname":"DiskFull"}},{"labels":{"alertname":"Other"},"status":"resolved"}]"#
        let partial = try run(
            ["publish", "--targets", targets, "--alerts", "-"], stdin: alerts, env: ["HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        XCTAssertEqual(partial.status, 1, partial.err)
        XCTAssertTrue(partial.out.contains("alert DiskFull"), partial.out)
        XCTAssertTrue(partial.out.contains("alert Other"), partial.out)
        XCTAssertEqual(partial.out.components(separatedBy: "disabled").count - 1, 2, "the disabled target is reported for each alert")
        XCTAssertFalse(partial.out.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        XCTAssertEqual(server.requests.filter { $0.path == "/ok" }.count, 2)

        let json = try run(
            ["publish", "--targets", targets, "--alerts", "-", "--target", "ok", "--json"], stdin: alerts,
            env: ["HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        XCTAssertEqual(json.status, 0, json.err)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        XCTAssertEqual(parsed?.count, 2)
        XCTAssertEqual((parsed?.first?["results"] as? [[String: Any]])?.first?["outcome"] as? String, "succeeded")

        let none = try run(
            ["publish", "--targets", targets, "--alerts", "-", "--target", "broken"], stdin: alerts,
            env: ["HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        XCTAssertEqual(none.status, 2, "an alert reached no target")

        let withDisabled = try run(
            ["publish", "--targets", targets, "--alerts", "-", "--target", "ok", "--target", "off"], stdin: alerts,
            env: ["HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        XCTAssertEqual(withDisabled.status, 0, "a disabled target is the operator's choice, not a partial delivery: \(withDisabled.out)")
        XCTAssertTrue(withDisabled.out.contains("disabled"), withDisabled.out)
        XCTAssertFalse(withDisabled.out.contains("partial"), withDisabled.out)
        XCTAssertEqual(server.requests.filter { $0.path.hasPrefix("/slack-disabled") }.count, 0, "the disabled target was never contacted")
    }

    /// Several alerts of one Alertmanager payload, to targets of different latencies and a Rootly target that
    /// cannot resolve (no stored id): every report follows input order and carries its own alert's results.
    func testPublishReportsFollowInputOrderEachWithItsOwnResults() throws {
        let server = try MockTarget()
        defer { server.stop() }
        let targets = try targetsFile(
            """
            targets:
              - {name: slow, type: webhook, url: '\(server.url("/slow?delay_ms=60"))'}
              - {name: fast, type: webhook, url: '\(server.url("/fast"))'}
              - {name: mid, type: webhook, url: '\(server.url("/mid?delay_ms=25"))'}
              - {name: rootly, type: rootly, url: '\(server.url(""))', api_key: k}
            """)
        let names = ["HighErrorRate", "DiskFull", "ManyLabels", "Latency", "Saturation", "Quorum"]
        let alerts = names.enumerated().map { i, n in
            #"{"status":"resolved","labels":{"alertname":"\#(n)","i":"\#(i)"},"startsAt":"2024-05-01T12:00:00Z","endsAt":"2024-05-01T12:05:00Z"}"#
        }
        let payload = #"{"version":"4","status":"resolved","receiver":"r","groupKey":"{}:{}","alerts":[\#(alerts.joined(separator: ","))]}"#
        for _ in 0..<3 {
            let json = try run(["publish", "--targets", targets, "--alerts", "-", "--json"], stdin: payload)
            XCTAssertEqual(json.status, 1, json.err)
            let reports = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
            XCTAssertEqual(reports.map { $0["alert"] as? String }, names, "reports follow input order")
            for r in reports {
                let fingerprint = try XCTUnwrap(r["fingerprint"] as? String)
                let results = try XCTUnwrap(r["results"] as? [[String: Any]])
                XCTAssertEqual(results.map { $0["target"] as? String }, ["slow", "fast", "mid", "rootly"])
                let message = results[3]["message"] as? String ?? ""
                XCTAssertTrue(message.contains(fingerprint), "the Rootly result under \(r["alert"] ?? "?") names its own alert: \(message)")
            }
            let table = try run(["publish", "--targets", targets, "--alerts", "-"], stdin: payload)
            // Blocks start at the lines that begin with "alert NAME [fingerprint]".
            var blocks: [String] = []
            for line in table.out.split(separator: "\n") {
                if line.hasPrefix("alert ") { blocks.append(String(line.dropFirst(6))) } else if !blocks.isEmpty { blocks[blocks.count - 1] += "\n" + line }
            }
            XCTAssertEqual(blocks.map { String($0.prefix(while: { $0 != " " })) }, names, table.out)
            for block in blocks {
                let fingerprint = String(block.drop(while: { $0 != "[" }).dropFirst().prefix(16))
                XCTAssertTrue(block.contains("fingerprint \(fingerprint)"), "rows under a header belong to that alert:\n\(block)")
            }
        }
    }

    /// `--alerts-in-flight` bounds the alerts being published at once and keeps every report in its input slot;
    /// publishes that end inside `publish` (a Rootly resolve with no stored id fails before sending) start the
    /// next alert from a loop, not one nested call per alert.
    func testAlertsInFlightKeepsOrderAndEveryReport() throws {
        let server = try MockTarget()
        defer { server.stop() }
        let targets = try targetsFile(
            """
            targets:
              - {name: hook, type: webhook, url: '\(server.url("/hook?delay_ms=5"))'}
            """)
        let alerts = (0..<40).map { #"{"labels":{"alertname":"A\#($0)"}}"# }
        for window in ["1", "3", "1000"] {
            let out = try run(
                ["publish", "--targets", targets, "--alerts", "-", "--json", "--alerts-in-flight", window], stdin: "[\(alerts.joined(separator: ","))]")
            XCTAssertEqual(out.status, 0, out.err)
            let reports = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.out.utf8)) as? [[String: Any]])
            XCTAssertEqual(reports.map { $0["alert"] as? String }, (0..<40).map { "A\($0)" }, "window \(window)")
        }
        // A refused port: the first alerts fail (retried), the target's breaker opens, and every later alert is
        // skipped inside `publish` — with a window of 1, thousands of publishes end one inside another's completion.
        let refused = try targetsFile(
            """
            targets:
              - {name: down, type: webhook, url: 'http://127.0.0.1:1/x'}
            """)
        let many = (0..<3000).map { #"{"labels":{"alertname":"R\#($0)"}}"# }
        let out = try run(["publish", "--targets", refused, "--alerts", "-", "--json", "--alerts-in-flight", "1"], stdin: "[\(many.joined(separator: ","))]")
        XCTAssertEqual(out.status, 2, String(out.err.suffix(2000)))
        let reports = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.out.utf8)) as? [[String: Any]])
        XCTAssertEqual(reports.map { $0["alert"] as? String }, (0..<3000).map { "R\($0)" })
        let skipped = reports.filter { (($0["results"] as? [[String: Any]])?.first?["outcome"] as? String) == "skipped" }
        XCTAssertGreaterThan(skipped.count, 2900, "skipped without a request once the breaker opened")
        XCTAssertEqual(try run(["publish", "--targets", refused, "--alerts", "-", "--alerts-in-flight", "0"], stdin: "{}").status, 64)
        XCTAssertEqual(server.requestCount, 120, "40 alerts × 3 runs")
    }

    /// Alerts start only while few requests wait for a connection: 200 alerts to one slow target (64 connections
    /// to a host) go out in waves, and no alert sits in the reactor's queue behind several waves of others — each
    /// report's time is within about two answers, where starting them all at once gives the last ones four.
    func testAlertsStartAsTheConnectionsTakeTheirRequests() throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let targets = try targetsFile("targets:\n  - {name: slow, type: webhook, url: '\(server.url("/slow?delay_ms=300"))'}\n")
        let alerts = (0..<200).map { #"{"labels":{"alertname":"W\#($0)"}}"# }
        let out = try run(["publish", "--targets", targets, "--alerts", "-", "--json", "--deadline", "30s"], stdin: "[\(alerts.joined(separator: ","))]")
        XCTAssertEqual(out.status, 0, out.err)
        let reports = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.out.utf8)) as? [[String: Any]])
        XCTAssertEqual(reports.count, 200)
        let times = reports.compactMap { $0["duration_ms"] as? Double }
        let answer = try XCTUnwrap(times.min())
        XCTAssertGreaterThanOrEqual(answer, 300)
        // Two answers' time when alerts wait behind at most one wave (a little more under the thread sanitizer);
        // four when all 200 start at once (64 connections: waves 1 to 4).
        XCTAssertLessThan(try XCTUnwrap(times.max()), answer * 3.2, "an alert waited behind several waves: \(times.map { Int($0) })")
    }

    /// Reports are written as alerts finish, not at the end: the first alert's table is out while the second
    /// alert's request still waits for its answer; the tables end with one summary line.
    func testReportsAreWrittenAsAlertsFinish() throws {
        let server = try MockTarget()
        defer { server.stop() }
        server.route("/hook", .sequence([.respond(), .respond(delay: .seconds(3))]))
        let targets = try targetsFile("targets:\n  - {name: hook, type: webhook, url: '\(server.url("/hook"))'}\n")
        var seenWhileRunning = ""
        let out = try runFanout(
            ["publish", "--targets", targets, "--alerts", "-", "--alerts-in-flight", "1"],
            stdin: #"[{"labels":{"alertname":"First"}},{"labels":{"alertname":"Second"}}]"#,
            whileRunning: { sofar in
                if seenWhileRunning.isEmpty, sofar.contains("alert First") { seenWhileRunning = sofar }
            })
        XCTAssertEqual(out.status, 0, out.err)
        XCTAssertTrue(seenWhileRunning.contains("hook"), "the first table was written while the second alert waited: \(out.out)")
        XCTAssertFalse(seenWhileRunning.contains("alert Second"), seenWhileRunning)
        let lines = out.out.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.hasPrefix("alert ") }.map { $0.split(separator: " ")[1] }, ["First", "Second"])
        XCTAssertTrue(lines.last?.hasPrefix("2 alerts: 2 delivered — targets 2 ok in ") ?? false, out.out)
    }

    func testBadInputExitsWith64AndNamesTheFileAndField() throws {
        let good = try targetsFile("targets:\n  - {name: a, type: webhook, url: 'http://127.0.0.1:9/x'}\n")
        let badTargets = try targetsFile("targets:\n  - {name: a, type: pagerduty}\n")
        let cases: [([String], String?, String)] = [
            (["publish", "--targets", badTargets, "--alerts", "-"], "{}", "targets[0] (a).routing_key: is required"),
            (["publish", "--targets", good, "--alerts", "-"], #"{"labels":{"alertname":5}}"#, "labels.alertname: must be a string"),
            (["publish", "--targets", "/nonexistent.yaml", "--alerts", "-"], "{}", "does not exist"),
            (["publish", "--targets", good, "--alerts", "-", "--strategy", "nope"], "{}", "--strategy must be one of"),
            (["load", "ftp://127.0.0.1/", "-n", "1"], nil, "is not an http:// or https:// URL"),
            (["load", "http://127.0.0.1:9/", "-c", "0"], nil, "-c must be at least 1"),
            (["load", "http://256.1.1.1:99999/", "-n", "3"], nil, "'http://256.1.1.1:99999/' is not a usable URL"),
            (["load", "http://127.0.0.1:9/", "--max-error-percent", "101"], nil, "--max-error-percent must be between 0 and 100"),
        ]
        for (args, stdin, fragment) in cases {
            let r = try run(args, stdin: stdin)
            XCTAssertEqual(r.status, 64, "\(args): \(r.err)")
            XCTAssertTrue(r.err.contains(fragment), "\(args): expected '\(fragment)' in \(r.err)")
            // A problem in a file names the file, then the field.
            if args.contains(badTargets) { XCTAssertTrue(r.err.contains("\(badTargets): 1 problem"), r.err) }
            if args.contains("/nonexistent.yaml") { XCTAssertTrue(r.err.contains("/nonexistent.yaml"), r.err) }
        }
    }

    func testLoadExitsNonZeroWhenRequestsFailWithoutAResponse() throws {
        let refused = try run(["load", "http://127.0.0.1:1/", "-n", "3", "--no-progress"])
        XCTAssertEqual(refused.status, 1, "every request refused: \(refused.out)\(refused.err)")
        XCTAssertTrue(refused.out.contains("refused: 3"), refused.out)
        let tolerated = try run(["load", "http://127.0.0.1:1/", "-n", "3", "--no-progress", "--max-error-percent", "100"])
        XCTAssertEqual(tolerated.status, 0, tolerated.out + tolerated.err)
        let server = try MockTarget()
        defer { server.stop() }
        let statuses = try run(["load", server.url("/status/503"), "-n", "5", "-c", "2", "--no-progress"])
        XCTAssertEqual(statuses.status, 0, "an HTTP status is a response, not a failed request: \(statuses.out)")
        XCTAssertEqual(server.requestCount, 5)
    }

    func testDemoRunsWithoutConfiguration() throws {
        let r = try run(["demo", "-d", "1s", "--rate", "20", "--resolve-after", "200ms"])
        XCTAssertEqual(r.status, 0, r.out + r.err)
        for fragment in [
            "pagerduty", "slack", "rootly", "am-receiver", "flaky-hook", "fan-out", "overhead",
            "every target of every alert reported exactly once: yes", "servers saw every request: yes",
        ] {
            XCTAssertTrue(r.out.contains(fragment), "missing '\(fragment)' in:\n\(r.out)")
        }
    }
}

final class MetricsExpositionTests: XCTestCase {
    func testDemoMetricsFilePassesPromtool() throws {
        let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try XCTSkipIf(promtool == nil, "promtool is not installed (apt-get install prometheus; .ci/run installs it)")
        let fanout = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("m-\(UUID().uuidString).prom").path
        let demo = Process()
        demo.executableURL = fanout
        demo.arguments = ["demo", "-d", "1s", "--rate", "20", "--metrics-file", file]
        demo.standardOutput = FileHandle.nullDevice
        try demo.run()
        demo.waitUntilExit()
        XCTAssertEqual(demo.terminationStatus, 0)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        for name in [
            "alertfanout_publishes_total", "alertfanout_target_requests_total", "alertfanout_breaker_state",
            "alertfanout_reactor_requests_completed_total", "alertfanout_publish_duration_seconds_bucket",
        ] {
            XCTAssertTrue(text.contains(name), "\(name) missing")
        }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: promtool!)
        check.arguments = ["check", "metrics"]
        let input = Pipe()
        let out = Pipe()
        check.standardInput = input
        check.standardOutput = out
        check.standardError = out
        try check.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        XCTAssertEqual(check.terminationStatus, 0, "promtool: \(report)")
    }
}
