// ServerTests: `fanout serve`'s HTTP API against a real listening server, delivering through real libcurl to MockTargets.
import AlertFanout
import CurlReactor
import FanoutServer
import Foundation
import MockTarget
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

final class ServerTests: XCTestCase {
    func testWebhookFansOutEveryAlertAndAnswers200ThenMetricsCountIt() async throws {
        let a = try MockTarget()
        let b = try MockTarget()
        defer {
            a.stop()
            b.stop()
        }
        let h = try await ServerHarness.start(
            """
            targets:
              - {name: hook-a, type: webhook, url: '\(a.url("/a?delay_ms=30"))'}
              - {name: hook-b, type: webhook, url: '\(b.url("/b"))'}
              - {name: off, type: webhook, url: '\(b.url("/off"))', enabled: false}
            """)
        let reply = await h.call("POST", "/webhook", body: alertmanagerPayload(["HighErrorRate", "DiskFull", "ManyLabels"]))
        XCTAssertEqual(reply.status, 200, reply.text)
        let json = try XCTUnwrap(reply.json)
        XCTAssertEqual(json["status"]?.stringValue, "delivered", "a disabled target does not make it partial")
        let reports = try XCTUnwrap(json["reports"]?.arrayValue)
        XCTAssertEqual(reports.map { $0["alert"]?.stringValue }, ["HighErrorRate", "DiskFull", "ManyLabels"])
        XCTAssertEqual(reports[0]["results"]?.arrayValue?.map { $0["outcome"]?.stringValue }, ["succeeded", "succeeded", "skipped"])
        XCTAssertEqual(a.requestCount, 3)
        XCTAssertEqual(b.requests.filter { $0.path == "/b" }.count, 3)
        XCTAssertEqual(b.requests.filter { $0.path == "/off" }.count, 0)

        let statsReply = await h.call("GET", "/api/v2/publishing/stats")
        let stats = try XCTUnwrap(statsReply.json)
        XCTAssertEqual(stats["alerts_accepted"]?.intValue, 3)
        XCTAssertEqual(stats["publishes"]?["success"]?.intValue, 3)
        XCTAssertEqual(stats["deliveries"]?["delivered"]?.intValue, 6)
        XCTAssertEqual(stats["deliveries"]?["pending"]?.intValue, 0)
        XCTAssertEqual(stats["deliveries"]?["dead"]?.intValue, 0)
        XCTAssertEqual(stats["skips"]?["disabled"]?.intValue, 3)

        let metrics = await h.call("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.text.contains(#"alertfanout_http_requests_total{route="/webhook",method="POST",status="200"} 1"#), metrics.text)
        XCTAssertTrue(metrics.text.contains("alertfanout_publishes_total"), "the publisher's metrics are served too")
        XCTAssertTrue(metrics.text.contains("alertfanout_alerts_accepted_total 3"), metrics.text)
        try await h.stop()
    }

    func testAnAlertThatReachedNoTargetAnswers502SoAlertmanagerRetries() async throws {
        let down = try MockTarget()
        defer { down.stop() }
        let h = try await ServerHarness.start(
            """
            targets:
              - {name: broken, type: webhook, url: '\(down.url("/status/503"))'}
            """)
        let reply = await h.call("POST", "/webhook", body: alertmanagerPayload(["A"]))
        XCTAssertEqual(reply.status, 502, reply.text)
        XCTAssertEqual(reply.json?["status"]?.stringValue, "failed")
        XCTAssertEqual(reply.json?["reports"]?.arrayValue?.first?["results"]?.arrayValue?.first?["http_status"]?.intValue, 503)
        let statsReply = await h.call("GET", "/api/v2/publishing/stats")
        let stats = try XCTUnwrap(statsReply.json)
        XCTAssertEqual(stats["deliveries"]?["dead"]?.intValue, 1)
        try await h.stop()
    }

    func testBadInputGetsAClearStatusAndMessage() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let h = try await ServerHarness.start(
            """
            server: {max_body_bytes: 4096}
            targets:
              - {name: hook, type: webhook, url: '\(t.url("/x"))'}
            """)
        let cases: [(String, String, Int, String)] = [
            ("/webhook", "{not json", 400, "not valid JSON"),
            ("/webhook", "[1,2]", 400, "expected an Alertmanager webhook payload"),
            ("/webhook", alertmanagerPayload(["A"], version: "3"), 400, #"version: must be \"4\""#),
            ("/webhook", #"{"version":"4"}"#, 400, "alerts: must be a list"),
            ("/webhook", #"{"version":"4","alerts":[{"labels":{"alertname":5}}]}"#, 400, "alerts[0].labels.alertname"),
            ("/api/v2/publishing/parallel", #"{"alerts":[{"labels":{"alertname":"A"}}],"targets":["nope"]}"#, 400, "targets: unknown nope (configured: hook)"),
            ("/api/v2/publishing/parallel", #"{"alert":{"labels":{"alertname":"A"}},"alerts":[]}"#, 400, "either alerts or alert"),
            ("/api/v2/publishing/parallel", #"{"alerts":[{"labels":{"alertname":"A"}}],"strategy":"sometimes"}"#, 400, "strategy: must be one of"),
            ("/api/v2/publishing/parallel/all", #"{"alerts":[],"strategy":"publish_to_all"}"#, 400, "strategy: is fixed"),
            ("/api/v2/publishing/parallel", #"{"colour":1}"#, 400, "colour: unknown field"),
        ]
        for (path, body, status, fragment) in cases {
            let r = await h.call("POST", path, body: body)
            XCTAssertEqual(r.status, status, "\(path) \(body): \(r.text)")
            XCTAssertTrue(r.text.contains(fragment), "\(path) \(body): expected '\(fragment)' in \(r.text)")
        }
        let big = await h.call("POST", "/webhook", body: alertmanagerPayload(Array(repeating: "Big", count: 100)))
        XCTAssertEqual(big.status, 413, big.text)
        XCTAssertTrue(big.text.contains("exceeds the limit of 4096 bytes"), big.text)
        let missing = await h.call("GET", "/nope")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(t.requestCount, 0, "nothing was delivered for bad input")
        // The server still works after all of that.
        let ok = await h.call("POST", "/webhook", body: alertmanagerPayload(["A"]))
        XCTAssertEqual(ok.status, 200, ok.text)
        try await h.stop()
    }

    func testAuthWithBearerTokenAndBasicCredentials() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("auth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "s3cret-token\n".write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        try "pa55".write(to: dir.appendingPathComponent("pw"), atomically: true, encoding: .utf8)
        let h = try await ServerHarness.start(
            """
            server:
              auth:
                bearer_token_file: \(dir.appendingPathComponent("token").path)
                basic_auth: {username: am, password_file: \(dir.appendingPathComponent("pw").path)}
            targets:
              - {name: hook, type: webhook, url: '\(t.url("/x"))'}
            """)
        let body = alertmanagerPayload(["A"])
        let none = await h.call("POST", "/webhook", body: body)
        XCTAssertEqual(none.status, 401)
        XCTAssertTrue(none.text.contains("credentials required"))
        let wrong = await h.call("POST", "/webhook", body: body, headers: [HTTPHeader("Authorization", "Bearer s3cret-tokeN")])
        XCTAssertEqual(wrong.status, 401)
        XCTAssertFalse(wrong.text.contains("s3cret"), "the token never appears in answers")
        let wrongBasic = await h.call(
            "GET", "/api/v2/publishing/targets", headers: [HTTPHeader("Authorization", "Basic " + Data("am:nope".utf8).base64EncodedString())])
        XCTAssertEqual(wrongBasic.status, 401)
        XCTAssertEqual(t.requestCount, 0)
        let bearer = await h.call("POST", "/webhook", body: body, headers: [HTTPHeader("Authorization", "Bearer s3cret-token")])
        XCTAssertEqual(bearer.status, 200, bearer.text)
        let basic = await h.call(
            "GET", "/api/v2/publishing/targets", headers: [HTTPHeader("Authorization", "Basic " + Data("am:pa55".utf8).base64EncodedString())])
        XCTAssertEqual(basic.status, 200, basic.text)
        let healthy = await h.call("GET", "/-/healthy")
        let ready = await h.call("GET", "/-/ready")
        XCTAssertEqual(healthy.status, 200, "liveness stays open")
        XCTAssertEqual(ready.status, 200, "readiness stays open")
        let metrics = await h.call("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200, "metrics are open unless protect_metrics")
        XCTAssertFalse(metrics.text.contains("s3cret-token") || metrics.text.contains("pa55"))
        XCTAssertTrue(metrics.text.contains(#"status="401""#), "401s are counted")
        try await h.stop()
    }

    func testParallelPublishingAPIWithTargetsAndStrategies() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let h = try await ServerHarness.start(
            """
            targets:
              - {name: one, type: webhook, url: '\(t.url("/one"))'}
              - {name: two, type: webhook, url: '\(t.url("/two?delay_ms=20"))'}
              - {name: bad, type: webhook, url: '\(t.url("/status/500"))'}
            """)
        let named = await h.call(
            "POST", "/api/v2/publishing/parallel", body: #"{"alerts":[{"labels":{"alertname":"A"}},{"labels":{"alertname":"B"}}],"targets":["two","one"]}"#)
        XCTAssertEqual(named.status, 200, named.text)
        let reports = try XCTUnwrap(named.json?["reports"]?.arrayValue)
        XCTAssertEqual(reports.map { $0["alert"]?.stringValue }, ["A", "B"])
        XCTAssertEqual(reports[0]["results"]?.arrayValue?.map { $0["target"]?.stringValue }, ["two", "one"], "results follow the requested order")
        XCTAssertEqual(t.requests.filter { $0.path.hasPrefix("/status") }.count, 0, "an unselected target is not contacted")

        let single = await h.call("POST", "/api/v2/publishing/parallel/all", body: #"{"alert":{"labels":{"alertname":"C"}}}"#)
        XCTAssertEqual(single.status, 200, single.text)
        XCTAssertEqual(single.json?["status"]?.stringValue, "partial", "bad answers 500")
        XCTAssertEqual(
            single.json?["reports"]?.arrayValue?.first?["results"]?.arrayValue?.map { $0["outcome"]?.stringValue }, ["succeeded", "succeeded", "failed"])

        let onlyBad = await h.call("POST", "/api/v2/publishing/parallel/healthy", body: #"{"alerts":[{"labels":{"alertname":"D"}}],"targets":["bad"]}"#)
        XCTAssertEqual(onlyBad.status, 502, onlyBad.text)
        try await h.stop()
    }

    func testTargetsAreRedactedAndHealthAndProbesReport() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let h = try await ServerHarness.start(
            """
            targets:
              - {name: slack-ops, type: slack, url: '\(t.url("/services/T000/B000/SLACKSECRET"))'}
              - {name: hook, type: webhook, url: 'http://user:pw-in-url@127.0.0.1:\(t.port)/h?token=qs-secret', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', timeout: 2s}
              - {name: gone, type: webhook, url: 'http://127.0.0.1:1/nothing'}
            """)
        let targets = await h.call("GET", "/api/v2/publishing/targets")
        XCTAssertEqual(targets.status, 200)
        for secret in ["SLACKSECRET", "pw-in-url", "qs-secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            XCTAssertFalse(targets.text.contains(secret), "\(secret) leaked: \(targets.text)")
        }
        let list = try XCTUnwrap(targets.json?["targets"]?.arrayValue)
        XCTAssertEqual(list.map { $0["name"]?.stringValue }, ["slack-ops", "hook", "gone"])
        XCTAssertEqual(list[1]["url"]?.stringValue, "http://127.0.0.1:\(t.port)/h")
        XCTAssertEqual(list[1]["has_secret"], .bool(true))
        XCTAssertEqual(list[1]["timeout_ms"]?.doubleValue, 2000)

        let healthReply = await h.call("GET", "/api/v2/publishing/targets/health")
        let health = try XCTUnwrap(healthReply.json?["targets"]?.arrayValue)
        XCTAssertEqual(health.map { $0["health"]?.stringValue }, ["unknown", "unknown", "unknown"])
        XCTAssertEqual(health.map { $0["breaker"]?.stringValue }, ["closed", "closed", "closed"])
        XCTAssertEqual(health[1]["deadline_ms"]?.doubleValue, 2000, "the configured timeout until the deadline is learned")

        let probe = await h.call("POST", "/api/v2/publishing/targets/health/hook/check")
        XCTAssertEqual(probe.status, 200, probe.text)
        XCTAssertEqual(probe.json?["reachable"], .bool(true))
        XCTAssertEqual(t.requests.last?.method, "HEAD")
        let refused = await h.call("POST", "/api/v2/publishing/targets/health/gone/check")
        XCTAssertEqual(refused.json?["reachable"], .bool(false), refused.text)
        XCTAssertEqual(refused.json?["error_kind"]?.stringValue, "refused")
        let unknown = await h.call("GET", "/api/v2/publishing/targets/health/nope")
        let unknownCheck = await h.call("POST", "/api/v2/publishing/targets/health/nope/check")
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(unknownCheck.status, 404)
        let one = await h.call("GET", "/api/v2/publishing/targets/health/hook")
        XCTAssertEqual(one.json?["target"]?.stringValue, "hook")
        try await h.stop()
    }

    func testReloadKeepsLearnedStateOfUnchangedTargetsAndRefusesABadFile() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        func config(_ secondPath: String) -> String {
            """
            targets:
              - {name: flaky, type: webhook, url: '\(t.url("/status/503"))'}
              - {name: moving, type: webhook, url: '\(t.url(secondPath))'}
            """
        }
        let h = try await ServerHarness.start(config("/status/503"))
        // Five failures in a row open both breakers (retries are attempts too).
        for _ in 0..<5 {
            _ = await h.call("POST", "/api/v2/publishing/parallel/all", body: #"{"alert":{"labels":{"alertname":"A"}}}"#)
        }
        func breakers() async -> [String?] {
            await h.call("GET", "/api/v2/publishing/targets/health").json?["targets"]?.arrayValue?.map { $0["breaker"]?.stringValue } ?? []
        }
        let tripped = await breakers()
        XCTAssertEqual(tripped, ["open", "open"])

        try h.rewrite("targets:\n  - {name: flaky, type: webhook}\n")
        let bad = await h.call("POST", "/-/reload")
        XCTAssertEqual(bad.status, 500, bad.text)
        XCTAssertTrue(bad.text.contains("targets[0] (flaky).url: is required for webhook targets"), bad.text)
        var metrics = await h.call("GET", "/metrics").text
        XCTAssertTrue(metrics.contains("alertfanout_config_last_reload_successful 0"), metrics)
        let unchanged = await breakers()
        XCTAssertEqual(unchanged, ["open", "open"], "a refused file keeps the running configuration and its state")

        try h.rewrite(config("/ok"))
        let good = await h.call("POST", "/-/reload")
        XCTAssertEqual(good.status, 200, good.text)
        XCTAssertEqual(good.json?["fresh_targets"], .array([.string("moving")]))
        let after = await breakers()
        XCTAssertEqual(after, ["open", "closed"], "the unchanged target keeps its breaker; the changed one starts fresh")
        metrics = await h.call("GET", "/metrics").text
        XCTAssertTrue(metrics.contains("alertfanout_config_last_reload_successful 1"), metrics)
        let publish = await h.call("POST", "/api/v2/publishing/parallel/all", body: #"{"alert":{"labels":{"alertname":"B"}}}"#)
        XCTAssertEqual(publish.status, 200, publish.text)
        XCTAssertEqual(publish.json?["reports"]?.arrayValue?.first?["results"]?.arrayValue?.map { $0["outcome"]?.stringValue }, ["skipped", "succeeded"])
        try await h.stop()
    }

    func testRootlyFiringThenResolvedThroughOneRunningServer() async throws {
        let rootly = try MockTarget(routes: ["/v1/alerts": VendorSimulators.rootly()])
        defer { rootly.stop() }
        let h = try await ServerHarness.start(
            """
            targets:
              - {name: rootly, type: rootly, url: '\(rootly.baseURL)', api_key: rootly-key}
            """)
        let fired = await h.call("POST", "/webhook", body: alertmanagerPayload(["Outage"]))
        XCTAssertEqual(fired.status, 200, fired.text)
        let resolved = await h.call("POST", "/webhook", body: alertmanagerPayload(["Outage"], status: "resolved"))
        XCTAssertEqual(resolved.status, 200, "the resolve finds the id the create stored: \(resolved.text)")
        let result = resolved.json?["reports"]?.arrayValue?.first?["results"]?.arrayValue?.first
        XCTAssertEqual(result?["action"]?.stringValue, "resolve")
        XCTAssertEqual(rootly.requests.map(\.path).count, 2)
        XCTAssertTrue(rootly.requests.last?.path.hasSuffix("/resolve") ?? false, "\(rootly.requests.map(\.path))")
        try await h.stop()
    }

    func testDrainAnswers503WhileAcceptedPublishesFinish() async throws {
        let slow = try MockTarget()
        defer { slow.stop() }
        let h = try await ServerHarness.start(
            """
            targets:
              - {name: slow, type: webhook, url: '\(slow.url("/s?delay_ms=600"))'}
            """)
        async let inFlight = h.call("POST", "/webhook", body: alertmanagerPayload(["Slow"]))
        try await waitUntil { slow.requestCount == 1 }
        async let stopped: Void = h.server.stop(grace: .seconds(10))
        try await waitUntil { h.service.isDraining }
        let ready = await h.call("GET", "/-/ready")
        XCTAssertEqual(ready.status, 503, "readiness fails while draining")
        let refused = await h.call("POST", "/webhook", body: alertmanagerPayload(["Late"]))
        XCTAssertEqual(refused.status, 503, "new requests are refused while draining")
        let first = await inFlight
        XCTAssertEqual(first.status, 200, "the accepted publish finished: \(first.text)")
        await stopped
        try await h.runTask.value
        await h.service.shutdown()
        await h.client.shutdown(.drain)
        XCTAssertEqual(slow.requestCount, 1, "the refused alert was never sent")
    }
}

final class ServerConnectionTests: XCTestCase {
    func testAClientThatGoesAwayDoesNotCancelAcceptedDeliveries() async throws {
        let slow = try MockTarget()
        defer { slow.stop() }
        let h = try await ServerHarness.start("targets:\n  - {name: slow, type: webhook, url: '\(slow.url("/s?delay_ms=400"))'}\n")
        // The client gives up after 100 ms, long before the delivery finishes.
        let r = await h.client.execute(
            HTTPRequest(
                method: "POST", url: h.url("/webhook"), body: Array(alertmanagerPayload(["Gone"]).utf8),
                timeout: .milliseconds(100)))
        XCTAssertEqual(r.failureKind, .deadline)
        try await waitUntil(seconds: 10) { h.service.publisher.activePublishes == 0 && slow.requestCount == 1 }
        let stats = await h.call("GET", "/api/v2/publishing/stats")
        XCTAssertEqual(stats.json?["deliveries"]?["delivered"]?.intValue, 1, "the accepted delivery completed: \(stats.text)")
        XCTAssertEqual(stats.json?["deliveries"]?["pending"]?.intValue, 0)
        try await h.stop()
    }

    func testASlowClientIsCutOffByTheIdleTimeout() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let h = try await ServerHarness.start("server: {idle_timeout: 300ms}\ntargets:\n  - {name: t, type: webhook, url: '\(t.url("/t"))'}\n")
        // Headers promise 200 bytes; one byte arrives, then nothing.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(h.port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
        let head = "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
        _ = head.withCString { send(fd, $0, strlen($0), 0) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let started = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 4096)
        var n = 1
        while n > 0 { n = recv(fd, &buffer, buffer.count, 0) }
        XCTAssertEqual(n, 0, "the server closed the connection (errno \(errno) would mean the 10 s receive timeout hit first)")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(9), "closed by the idle timeout, not by the test's own limit")
        XCTAssertEqual(t.requestCount, 0)
        let ok = await h.call("POST", "/webhook", body: alertmanagerPayload(["After"]))
        XCTAssertEqual(ok.status, 200, "the server keeps serving others")
        try await h.stop()
    }

    func testTheListenerServesTLS() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("srv-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/bin/sh")
        make.arguments = [
            "-c",
            """
            set -e; cd '\(dir)'
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out key.pem 2>/dev/null
            openssl req -x509 -new -key key.pem -out cert.pem -days 2 -subj '/CN=127.0.0.1' -addext 'subjectAltName=IP:127.0.0.1' 2>/dev/null
            """,
        ]
        try make.run()
        make.waitUntilExit()
        try XCTSkipIf(make.terminationStatus != 0, "openssl could not make a certificate")
        let h = try await ServerHarness.start(
            """
            server: {tls: {cert_file: \(dir)/cert.pem, key_file: \(dir)/key.pem}}
            targets:
              - {name: t, type: webhook, url: '\(t.url("/t"))'}
            """)
        let https = await h.client.execute(
            HTTPRequest(
                method: "POST", url: "https://127.0.0.1:\(h.port)/webhook",
                headers: [HTTPHeader("Content-Type", "application/json")],
                body: Array(alertmanagerPayload(["Tls"]).utf8), timeout: .seconds(10),
                connection: ConnectionOptions(caFile: "\(dir)/cert.pem")))
        XCTAssertEqual(try https.get().status, 200)
        XCTAssertEqual(t.requestCount, 1)
        let plain = await h.client.execute(HTTPRequest(url: h.url("/-/healthy"), timeout: .seconds(5)))
        XCTAssertNotEqual((try? plain.get())?.status, 200, "plain HTTP is not served on a TLS listener")
        try await h.stop()
    }
}

extension Result where Success == HTTPResponse, Failure == TransferError {
    var failureKind: TransferError.Kind? { if case .failure(let e) = self { return e.kind } else { return nil } }
}
