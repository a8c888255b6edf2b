// FormatterGoldenTests: every formatter's bytes against committed golden files, plus URLs, headers and limits.
import CurlReactor
import Foundation
import XCTest

@testable import AlertFanout

final class FormatterGoldenTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Compares with `Fixtures/<name>.json`; `UPDATE_GOLDENS=1 swift test` rewrites them (then review the diff).
    func assertGolden(_ body: [UInt8], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = fixtures.appendingPathComponent(name + ".json")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDENS"] == "1" {
            try Data(body + [0x0A]).write(to: path)
            return
        }
        let expected = try Data(contentsOf: path)
        let actual = Data(body + [0x0A])
        XCTAssertEqual(
            String(decoding: actual, as: UTF8.self), String(decoding: expected, as: UTF8.self),
            "golden \(name).json differs", file: file, line: line)
        XCTAssertNoThrow(try JSONValue.parse(body), "output must be valid JSON", file: file, line: line)
    }

    func context(rootlyID: String? = "01HX-rootly-alert") -> FormatContext {
        FormatContext(now: Samples.now, rootlyAlertID: rootlyID)
    }

    func testEveryFormatterMatchesItsGoldens() throws {
        for type in TargetType.allCases {
            let target = Samples.targets[type]!
            // The Alertmanager fallback externalURL names this machine: a fixed host keeps the goldens stable.
            let formatter: any AlertFormatter = type == .alertmanager ? AlertmanagerFormatter(hostname: Samples.hostname) : Formatters.formatter(for: type)
            for (name, alert) in Samples.alerts {
                let req = try formatter.request(for: alert, target: target, context: context())
                try assertGolden(req.body, "\(type.rawValue)_\(name)")
                XCTAssertEqual(req.method, "POST")
                XCTAssertTrue(String(decoding: req.body, as: UTF8.self).utf8.count == req.body.count)
            }
        }
    }

    func testPagerDutyURLSeverityAndLimits() throws {
        let f = PagerDutyFormatter()
        let t = Samples.targets[.pagerduty]!
        let trigger = try f.request(for: Samples.firingFull, target: t, context: context())
        XCTAssertEqual(trigger.url, "https://events.pagerduty.com/v2/enqueue")
        XCTAssertEqual(trigger.action, "trigger")
        XCTAssertTrue(trigger.idempotent)
        let json = try JSONValue.parse(trigger.body)
        XCTAssertEqual(json["dedup_key"]?.stringValue, Samples.firingFull.fingerprint)
        XCTAssertEqual(json["payload"]?["severity"]?.stringValue, "critical")
        XCTAssertEqual(json["payload"]?["component"]?.stringValue, "storage")
        let long = try JSONValue.parse(f.request(for: Samples.unicodeLong, target: t, context: context()).body)
        let summary = try XCTUnwrap(long["payload"]?["summary"]?.stringValue)
        XCTAssertLessThanOrEqual(summary.unicodeScalars.count, 1024)
        XCTAssertTrue(summary.hasSuffix("…"))
        XCTAssertEqual(long["payload"]?["severity"]?.stringValue, "warning")
        XCTAssertEqual(long["payload"]?["source"]?.stringValue, "支付")
        // Whole graphemes only: the ZWJ sequence is never cut in the middle.
        XCTAssertFalse(summary.dropLast().unicodeScalars.last == "\u{200D}")
        let resolve = try JSONValue.parse(f.request(for: Samples.resolved, target: t, context: context()).body)
        XCTAssertEqual(resolve["event_action"]?.stringValue, "resolve")
        XCTAssertEqual(resolve["dedup_key"]?.stringValue, Samples.firingFull.fingerprint, "resolve reuses the trigger's dedup key")
        XCTAssertNil(resolve["payload"])
        var base = t
        base.url = "https://events.pagerduty.com/v2/enqueue"
        XCTAssertEqual(try f.request(for: Samples.minimal, target: base, context: context()).url, "https://events.pagerduty.com/v2/enqueue")
    }

    func testSlackStaysWithinBlockKitLimitsAndEscapes() throws {
        let f = SlackFormatter()
        let t = Samples.targets[.slack]!
        for (_, alert) in Samples.alerts {
            let json = try JSONValue.parse(f.request(for: alert, target: t, context: context()).body)
            let blocks = try XCTUnwrap(json["blocks"]?.arrayValue)
            XCTAssertLessThanOrEqual(blocks.count, 50)
            XCTAssertFalse(json["text"]?.stringValue?.isEmpty ?? true, "a text fallback is always present")
            for b in blocks {
                switch b["type"]?.stringValue {
                // Slack does not name the unit of its "characters": UTF-16 code units are the strictest reading.
                case "header": XCTAssertLessThanOrEqual(b["text"]!["text"]!.stringValue!.utf16.count, 150)
                case "section":
                    if let text = b["text"]?["text"]?.stringValue { XCTAssertLessThanOrEqual(text.utf16.count, 3000) }
                    if let fields = b["fields"]?.arrayValue {
                        XCTAssertLessThanOrEqual(fields.count, 10)
                        for fl in fields { XCTAssertLessThanOrEqual(fl["text"]!.stringValue!.utf16.count, 500) }
                    }
                case "context": XCTAssertLessThanOrEqual(b["elements"]!.arrayValue!.count, 10)
                default: XCTFail("unexpected block \(b)")
                }
            }
        }
        let text = try f.request(for: Samples.firingFull, target: t, context: context()).bodyText
        XCTAssertTrue(text.contains("&amp; &lt;growing&gt;"))
        XCTAssertFalse(text.contains("<growing>"))
        XCTAssertEqual(SlackFormatter.escape("a&b<c>d&amp;"), "a&amp;b&lt;c&gt;d&amp;amp;")
    }

    func testRootlyCreateResolveAndMissingState() throws {
        let f = RootlyFormatter()
        let t = Samples.targets[.rootly]!
        let create = try f.request(for: Samples.firingFull, target: t, context: context())
        XCTAssertEqual(create.url, "https://api.rootly.com/v1/alerts")
        XCTAssertTrue(create.headers.contains(HTTPHeader("Content-Type", "application/vnd.api+json")))
        XCTAssertTrue(create.headers.contains(HTTPHeader("Authorization", "Bearer rootly-test-key")))
        let resolve = try f.request(for: Samples.resolved, target: t, context: context(rootlyID: "abc/1"))
        XCTAssertEqual(resolve.url, "https://api.rootly.com/v1/alerts/abc%2F1/resolve")
        XCTAssertThrowsError(try f.request(for: Samples.resolved, target: t, context: context(rootlyID: nil))) { e in
            XCTAssertEqual((e as? FormatError)?.kind, .missingState)
        }
        XCTAssertEqual(f.verdict(status: 201, body: Array(#"{"data":{"id":"a1b2","type":"alerts"}}"#.utf8), retryAfter: nil), .delivered(detail: "a1b2"))
        XCTAssertEqual(
            f.verdict(status: 422, body: Array(#"{"errors":[{"title":"Invalid","detail":"summary can't be blank"}]}"#.utf8), retryAfter: nil),
            .permanent(message: "Invalid: summary can't be blank"))
    }

    func testAlertmanagerForwardsAReceivedGroupAsOneEnvelope() throws {
        let f = AlertmanagerFormatter(hostname: Samples.hostname)
        let t = Samples.targets[.alertmanager]!
        let batch = AlertBatch(
            alerts: [Samples.firingFull], receiver: "upstream", groupKey: "{}/{severity=\"critical\"}:{alertname=\"DiskFull\"}",
            groupLabels: ["alertname": "DiskFull"], externalURL: "http://alertmanager.local:9093", truncatedAlerts: 2)
        let json = try JSONValue.parse(f.request(forBatch: batch, target: t).body)
        XCTAssertEqual(json["groupKey"]?.stringValue, batch.groupKey)
        XCTAssertEqual(json["groupLabels"], .strings([("alertname", "DiskFull")]))
        XCTAssertEqual(json["externalURL"]?.stringValue, "http://alertmanager.local:9093")
        XCTAssertEqual(json["truncatedAlerts"]?.intValue, 2)
        XCTAssertEqual(json["receiver"]?.stringValue, "team-x")
        XCTAssertEqual(json["alerts"]?.arrayValue?.first?["endsAt"]?.stringValue, "0001-01-01T00:00:00Z")
        XCTAssertEqual(AlertmanagerFormatter.labelSetString([("alertname", "a \"q\"")]), #"{alertname="a \"q\""}"#)
    }

    func testWebhookSignatureMatchesTheStandardWebhooksTestVector() throws {
        // Published test vector of the Standard Webhooks reference library (libraries/go/webhook_test.go).
        let sig = try WebhookFormatter.signature(
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: 1_614_265_330, body: Array(#"{"test": 2432232314}"#.utf8))
        XCTAssertEqual(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    func testWebhookHeadersAndSignatureOverTheExactBody() throws {
        let f = WebhookFormatter()
        let t = Samples.targets[.webhook]!
        let req = try f.request(for: Samples.firingFull, target: t, context: context())
        let h = Dictionary(req.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let id = try XCTUnwrap(h["webhook-id"])
        XCTAssertEqual(h["Idempotency-Key"], id)
        XCTAssertTrue(id.hasPrefix("msg_") && id.count == 36)
        XCTAssertEqual(h["webhook-timestamp"], String(Samples.now.seconds))
        XCTAssertEqual(
            h["webhook-signature"], try WebhookFormatter.signature(secret: t.secret!.reveal(), id: id, timestamp: Samples.now.seconds, body: req.body))
        // The id is stable for retries of one notification and differs between firing and resolved.
        XCTAssertEqual(try f.request(for: Samples.firingFull, target: t, context: context()).headers, req.headers)
        XCTAssertNotEqual(WebhookFormatter.messageID(Samples.firingFull), WebhookFormatter.messageID(Samples.resolved))
        // msg_ + the first 32 hex digits of SHA-256("fingerprint:status:startsAt"), computed elsewhere (Python hashlib).
        XCTAssertEqual(WebhookFormatter.messageID(Samples.firingFull), "msg_2d2a4bb1b767f05ed692435eaa5c581a")
        XCTAssertEqual(WebhookFormatter.messageID(Samples.resolved), "msg_7fed3ff5ee1209ee93d87398c69a4e07")
        var unsigned = t
        unsigned.secret = nil
        XCTAssertFalse(try f.request(for: Samples.minimal, target: unsigned, context: context()).headers.contains { $0.name == "webhook-signature" })
    }

    func testVerdictsClassifyVendorResponses() {
        let pd = PagerDutyFormatter()
        XCTAssertEqual(
            pd.verdict(status: 202, body: Array(#"{"status":"success","message":"Event processed","dedup_key":"k1"}"#.utf8), retryAfter: nil),
            .delivered(detail: "k1"))
        XCTAssertEqual(
            pd.verdict(
                status: 400,
                body: Array(
                    #"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#
                        .utf8), retryAfter: nil),
            .permanent(message: "Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)"))
        XCTAssertEqual(pd.verdict(status: 429, body: [], retryAfter: "30"), .retryable(message: "HTTP 429", retryAfter: "30"))
        let slack = SlackFormatter()
        XCTAssertEqual(slack.verdict(status: 200, body: Array("ok".utf8), retryAfter: nil), .delivered(detail: nil))
        XCTAssertEqual(slack.verdict(status: 400, body: Array("invalid_payload".utf8), retryAfter: nil), .permanent(message: "invalid_payload"))
        XCTAssertEqual(slack.verdict(status: 410, body: Array("channel_is_archived".utf8), retryAfter: nil), .permanent(message: "channel_is_archived"))
        XCTAssertEqual(slack.verdict(status: 429, body: Array("rate_limited".utf8), retryAfter: "1"), .retryable(message: "rate_limited", retryAfter: "1"))
        // Standard Webhooks "Delivery success and failure": only 410 stops; 3xx and every other status are retried.
        let hook = WebhookFormatter()
        XCTAssertEqual(hook.verdict(status: 204, body: [], retryAfter: nil), .delivered(detail: nil))
        XCTAssertEqual(hook.verdict(status: 503, body: [], retryAfter: nil), .retryable(message: "HTTP 503", retryAfter: nil))
        XCTAssertEqual(hook.verdict(status: 504, body: [], retryAfter: "7"), .retryable(message: "HTTP 504", retryAfter: "7"))
        XCTAssertEqual(
            hook.verdict(status: 301, body: [], retryAfter: nil),
            .retryable(message: "HTTP 301 (redirect not followed: update the target URL)", retryAfter: nil))
        XCTAssertEqual(hook.verdict(status: 404, body: [], retryAfter: nil), .retryable(message: "HTTP 404", retryAfter: nil))
        XCTAssertEqual(hook.verdict(status: 400, body: Array("nope".utf8), retryAfter: nil), .retryable(message: "nope", retryAfter: nil))
        guard case .gone(let goneMessage) = hook.verdict(status: 410, body: [], retryAfter: nil) else { return XCTFail("410 must stop deliveries") }
        XCTAssertTrue(goneMessage.hasPrefix("HTTP 410 Gone"), goneMessage)
        // Alertmanager targets keep Alertmanager's reading (5xx retried; we also retry 408/425/429), 4xx permanent.
        let am = AlertmanagerFormatter()
        XCTAssertEqual(am.verdict(status: 500, body: Array("boom".utf8), retryAfter: nil), .retryable(message: "boom", retryAfter: nil))
        XCTAssertEqual(am.verdict(status: 429, body: [], retryAfter: "3"), .retryable(message: "HTTP 429", retryAfter: "3"))
        XCTAssertEqual(am.verdict(status: 410, body: [], retryAfter: nil), .permanent(message: "HTTP 410"))
        // Rootly: a 429 is waited out (Retry-After), never a lost alert.
        XCTAssertEqual(
            RootlyFormatter().verdict(status: 429, body: Array(#"{"errors":[{"title":"Request Limit Exceeded"}]}"#.utf8), retryAfter: "12"),
            .retryable(message: "Request Limit Exceeded", retryAfter: "12"))
    }
}
