// CLIPromiseTests: README promises about the `fanout` command that no other test held it to — secrets never
// reach stdout, stderr, debug logs or the metrics file; `--metrics-port` serves while a command runs; Ctrl-C
// ends `fanout load` with a report of what was done; `fanout load merge` from the command line;
// `fanout measure stragglers`.
import CurlReactor
import Dispatch
import Foundation
import MockTarget
import TestSupport
import XCTest

final class CLIPromiseTests: XCTestCase {
    override func setUpWithError() throws {
        let fanout = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: fanout.path), "fanout is not built next to the tests")
    }

    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
    }

    /// Every vendor answers with an error that echoes what it was sent (URL path and body): the Slack webhook's
    /// secret path, the PagerDuty routing key, the Rootly token. None of them may appear on standard output (tables
    /// or `--json`), on standard error at debug level, or in the metrics file.
    func testSecretsNeverReachOutputLogsOrMetrics() throws {
        let echo = MockBehavior.custom { req in
            .text(
                "rejected \(req.uri) \(String(decoding: req.body, as: UTF8.self)) \(req.headers.map { "\($0.0)=\($0.1)" }.joined(separator: " "))", status: 400)
        }
        let server = try MockTarget(routes: ["/services": echo, "/v2/enqueue": echo, "/v1/alerts": echo, "/hook": echo])
        defer { server.stop() }
        let slackSecret = "XoXoSlackSecretPath0123456789"
        let pdKey = "R0123456789abcdef0123456789abcde"
        let rootlyToken = "rootly_tokenSECRET0123456789abcdef"
        let hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let targets = temporaryPath("targets.yaml")
        try """
        targets:
          - {name: slack, type: slack, url: '\(server.url("/services/T000/B000/\(slackSecret)"))'}
          - {name: pd, type: pagerduty, url: '\(server.baseURL)', routing_key: '\(pdKey)'}
          - {name: rootly, type: rootly, url: '\(server.baseURL)', api_key: '\(rootlyToken)'}
          - {name: hook, type: webhook, url: '\(server.url("/hook"))', secret: '\(hookSecret)'}
        """.write(toFile: targets, atomically: true, encoding: .utf8)
        let metrics = temporaryPath("metrics.prom")
        let alerts = #"[{"labels":{"alertname":"DiskFull","severity":"critical"}}]"#
        for extra in [[], ["--json"]] {
            let r = try runFanout(
                ["publish", "--targets", targets, "--alerts", "-", "--log-level", "debug", "--metrics-file", metrics] + extra, stdin: alerts)
            XCTAssertEqual(r.status, 2, "every target refused the alert: \(r.err)")
            let file = try String(contentsOfFile: metrics, encoding: .utf8)
            XCTAssertTrue(r.out.contains("rejected"), "the vendors' messages are reported: \(r.out)")
            XCTAssertTrue(r.err.contains("debug"), "debug logging was on")
            XCTAssertTrue(file.contains("alertfanout_target_requests_total"))
            for (what, text) in [("stdout", r.out), ("stderr", r.err), ("metrics file", file)] {
                for secret in [slackSecret, pdKey, rootlyToken, hookSecret, String(hookSecret.dropFirst(6))] {
                    XCTAssertFalse(text.contains(secret), "\(secret) appears on \(what) \(extra):\n\(text)")
                }
            }
        }
        XCTAssertEqual(
            Set(server.requests.map(\.path)), ["/services/T000/B000/\(slackSecret)", "/v2/enqueue", "/v1/alerts", "/hook"],
            "each vendor was reached: the secrets were really sent and echoed")
    }

    /// `--metrics-port` serves the Prometheus text at /metrics on 127.0.0.1 while the command runs, with the
    /// reactor's counters; a bad port is refused before anything runs.
    func testMetricsPortServesWhileTheCommandRuns() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let port = try unusedPort()
        let finished = TestLock<(status: Int32, out: String, err: String)?>(nil)
        let url = server.url("/m")
        DispatchQueue.global().async {
            let r = try? runFanout(["load", "run", url, "--rate", "50", "-d", "4s", "--no-progress", "--metrics-port", String(port)])
            finished.withLock { $0 = r ?? (-1, "", "could not start") }
        }
        let reactor = try CurlReactor()
        var scraped = ""
        for _ in 0..<200 where finished.withLock({ $0 }) == nil {
            if case .success(let r) = await reactor.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/metrics", timeout: .seconds(2))), r.status == 200 {
                let text = String(decoding: r.body, as: UTF8.self)
                if text.contains("alertfanout_reactor_requests_completed_total") {
                    scraped = text
                    break
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await reactor.shutdown()
        XCTAssertTrue(scraped.contains("# TYPE alertfanout_reactor_requests_completed_total counter"), scraped)
        try await waitUntil(seconds: 30) { finished.withLock { $0 } != nil }
        let r = try XCTUnwrap(finished.withLock { $0 })
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("metrics at http://127.0.0.1:\(port)/metrics"), r.err)

        let bad = try runFanout(["load", "run", url, "-n", "1", "--metrics-port", "70000"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.err.contains("--metrics-port must be 1...65535"), bad.err)
    }

    /// Ctrl-C (SIGINT) stops sending, lets the requests in flight finish and prints what was done: the JSON
    /// result counts exactly the requests the server answered, with the open loop's schedule lag, and exits 0.
    func testCtrlCStopsALoadRunAndReportsWhatWasDone() throws {
        let server = try MockTarget()
        defer { server.stop() }
        let pid = TestLock<Int32>(0)
        let watcher = DispatchQueue(label: "sigint")
        watcher.async {
            // Once the run is under way, interrupt it.
            let end = Date().addingTimeInterval(30)
            while server.requestCount < 40 && Date() < end { usleep(10_000) }
            let p = pid.withLock { $0 }
            if p > 0 { kill(p, SIGINT) }
        }
        let r = try runFanout(["load", "run", server.url("/c?delay_ms=20"), "--rate", "100", "-d", "60s", "--json"], seconds: 40) { p in
            pid.withLock { $0 = p }
        }
        XCTAssertEqual(r.status, 0, r.err)
        let total = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], r.out)
        XCTAssertEqual(total["interrupted"] as? Bool, true)
        let requests = try XCTUnwrap(total["requests"] as? Int)
        XCTAssertGreaterThanOrEqual(requests, 40)
        XCTAssertLessThan(requests, 6000, "stopped long before the 60 s at 100/s")
        XCTAssertEqual(requests, server.requestCount, "every request sent is reported, none in flight was dropped")
        XCTAssertEqual(total["errors"] as? Int, 0, "the requests in flight finished within the grace period")
        let lag = try XCTUnwrap(total["schedule_lag_us"] as? [String: Any], "an open-loop run reports its schedule lag")
        XCTAssertEqual(lag["count"] as? Int, requests)
    }

    /// `fanout load merge` reads the `--json` results of runs made side by side and adds them up exactly; a file
    /// that is not a result is named in the error.
    func testLoadMergeFromTheCommandLine() throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        var files: [String] = []
        for (n, path) in [(100, "/a"), (150, "/b")] {
            let r = try runFanout(["load", "run", server.url(path), "-n", String(n), "-c", "4", "--json"])
            XCTAssertEqual(r.status, 0, r.err)
            let file = temporaryPath("run.json")
            try r.out.write(toFile: file, atomically: true, encoding: .utf8)
            files.append(file)
        }
        let merged = try runFanout(["load", "merge", "--json"] + files)
        XCTAssertEqual(merged.status, 0, merged.err)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(merged.out.utf8)) as? [String: Any], merged.out)
        XCTAssertEqual(json["requests"] as? Int, 250)
        XCTAssertEqual(json["runs"] as? Int, 2)
        XCTAssertEqual((json["urls"] as? [[String: Any]])?.count, 2)
        let table = try runFanout(["load", "merge"] + files)
        XCTAssertEqual(table.status, 0, table.err)
        XCTAssertTrue(table.out.contains("2 runs"), table.out)

        let junk = temporaryPath("junk.json")
        try "{\"not\": \"a result\"}".write(toFile: junk, atomically: true, encoding: .utf8)
        let bad = try runFanout(["load", "merge", files[0], junk])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.err.contains(junk), bad.err)
        let missing = try runFanout(["load", "merge", temporaryPath("none.json")])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.err.contains("none.json"), missing.err)
    }

    /// `fanout load -t 2`: two reactors side by side share -c and -n, and the result is one run whose counts are
    /// what the server saw; more reactors than connections is a usage error.
    func testLoadWithTwoReactorsIsOneRun() throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let r = try runFanout(["load", "run", server.url("/t"), "-n", "301", "-c", "5", "-t", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.err)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], r.out)
        XCTAssertEqual(json["requests"] as? Int, 301)
        XCTAssertEqual(json["errors"] as? Int, 0)
        XCTAssertEqual(json["concurrency"] as? Int, 5)
        XCTAssertEqual(json["runs"] as? Int, 1)
        XCTAssertEqual(server.requestCount, 301)
        let text = try runFanout(["load", "run", server.url("/t"), "-n", "10", "-c", "2", "-t", "2"])
        XCTAssertEqual(text.status, 0, text.err)
        XCTAssertTrue(text.out.contains("2 reactors"), text.out)
        let bad = try runFanout(["load", "run", server.url("/t"), "-c", "2", "-t", "3"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.err.contains("-t 3"), bad.err)
    }

    /// `fanout measure stragglers` runs both variants on loopback servers it starts itself and prints their
    /// percentiles. One response in ten takes 100 ms, so with a fixed timeout the slowest publish waited for one.
    func testMeasureStragglersComparesFixedAndAdaptiveDeadlines() throws {
        let r = try runFanout(
            [
                "measure", "stragglers", "--targets", "2", "--alerts", "80", "--concurrency", "4", "--latency", "5ms", "--every", "10", "--factor", "20",
                "--timeout", "2s",
            ], seconds: 120)
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.out.split(separator: "\n").map(String.init)
        let fixed = try XCTUnwrap(lines.first { $0.contains("fixed 2 s timeout") }, r.out)
        XCTAssertNotNil(lines.first { $0.contains("adaptive deadlines") }, r.out)
        let max = try XCTUnwrap(Double(fixed.components(separatedBy: "max ").last?.split(separator: " ").first ?? ""), fixed)
        XCTAssertGreaterThanOrEqual(max, 100, "a fixed timeout waits for the 100 ms straggler: \(fixed)")
        let bad = try runFanout(["measure", "stragglers", "--every", "1"])
        XCTAssertEqual(bad.status, 64, bad.err)
    }

    /// `fanout measure overhead --burst N` publishes N alerts at once, as often as the rate allows, to loopback
    /// servers it starts itself, and says how many were fully delivered.
    func testMeasureOverheadPublishesInBursts() throws {
        let r = try runFanout(["measure", "overhead", "--latencies", "20,40", "--rate", "60", "--burst", "5", "-d", "1s"], seconds: 120)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("60 alerts in bursts of 5 at 60/s to 2 targets"), r.out)
        XCTAssertTrue(r.out.contains("completion minus the slowest target (40 ms)"), r.out)
        XCTAssertTrue(r.out.contains("; 0 not fully delivered;"), r.out)
        let bad = try runFanout(["measure", "overhead", "--burst", "0"])
        XCTAssertEqual(bad.status, 64, bad.err)
        XCTAssertTrue(bad.err.contains("--burst"), bad.err)
    }
}
