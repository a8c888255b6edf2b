// FanoutCLITests: the built `fanout` executable run as a user would — publish against loopback servers, demo, bad input.
import Foundation
import MockTarget
import XCTest

final class FanoutCLITests: XCTestCase {
    /// The `fanout` binary built next to this test bundle.
    var fanout: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
    }

    struct Run { var status: Int32; var out: String; var err: String }

    func run(_ args: [String], stdin: String? = nil, env: [String: String] = [:]) throws -> Run {
        let p = Process()
        p.executableURL = fanout
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
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
        let targets = try targetsFile("""
        targets:
          - {name: ok, type: webhook, url: '\(server.url("/ok"))', secret: '${HOOK_SECRET}'}
          - {name: broken, type: webhook, url: '\(server.url("/status/400?body=nope"))'}
          - {name: off, type: slack, url: 'https://hooks.slack.com/services/x', enabled: false}
        """)
        let alerts = #"[{"labels":{"alertname":"DiskFull"}},{"labels":{"alertname":"Other"},"status":"resolved"}]"#
        let partial = try run(["publish", "--targets", targets, "--alerts", "-"], stdin: alerts, env: ["HOOK_SECRET": "s3cret-value"])
        XCTAssertEqual(partial.status, 1, partial.err)
        XCTAssertTrue(partial.out.contains("alert DiskFull"), partial.out)
        XCTAssertTrue(partial.out.contains("alert Other"), partial.out)
        XCTAssertEqual(partial.out.components(separatedBy: "disabled").count - 1, 2, "the disabled target is reported for each alert")
        XCTAssertFalse(partial.out.contains("s3cret-value"))
        XCTAssertEqual(server.requests.filter { $0.path == "/ok" }.count, 2)

        let json = try run(["publish", "--targets", targets, "--alerts", "-", "--target", "ok", "--json"], stdin: alerts, env: ["HOOK_SECRET": "x"])
        XCTAssertEqual(json.status, 0, json.err)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        XCTAssertEqual(parsed?.count, 2)
        XCTAssertEqual((parsed?.first?["results"] as? [[String: Any]])?.first?["outcome"] as? String, "succeeded")

        let none = try run(["publish", "--targets", targets, "--alerts", "-", "--target", "broken"], stdin: alerts, env: ["HOOK_SECRET": "x"])
        XCTAssertEqual(none.status, 2, "an alert reached no target")
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
        ]
        for (args, stdin, fragment) in cases {
            let r = try run(args, stdin: stdin)
            XCTAssertEqual(r.status, 64, "\(args): \(r.err)")
            XCTAssertTrue(r.err.contains(fragment), "\(args): expected '\(fragment)' in \(r.err)")
        }
    }

    func testDemoRunsWithoutConfiguration() throws {
        let r = try run(["demo", "-d", "1s", "--rate", "20", "--resolve-after", "200ms"])
        XCTAssertEqual(r.status, 0, r.out + r.err)
        for fragment in ["pagerduty", "slack", "rootly", "am-receiver", "flaky-hook", "fan-out", "overhead",
                         "every target of every alert reported exactly once: yes", "servers saw every request: yes"] {
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
        for name in ["alertfanout_publishes_total", "alertfanout_target_requests_total", "alertfanout_breaker_state",
                     "alertfanout_reactor_requests_completed_total", "alertfanout_publish_duration_seconds_bucket"] {
            XCTAssertTrue(text.contains(name), "\(name) missing")
        }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: promtool!)
        check.arguments = ["check", "metrics"]
        let input = Pipe(), out = Pipe()
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
