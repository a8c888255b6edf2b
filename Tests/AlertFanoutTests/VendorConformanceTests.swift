import FanoutCore
import Foundation
import XCTest

// VendorConformanceTests: what each vendor's own specification and reference code require of our payloads (issue 13).
@testable import AlertFanout

final class VendorConformanceTests: XCTestCase {
    func context(batch: AlertBatch? = nil) -> FormatContext { FormatContext(now: Samples.now, batch: batch, rootlyAlertID: "r-1") }

    // MARK: 1. Standard Webhooks secrets

    func testWebhookSecretWithoutPrefixIsStillBase64() throws {
        // The reference libraries strip an optional whsec_ and always base64-decode, so both spellings sign alike.
        let body = Array(#"{"test": 2432232314}"#.utf8)
        for secret in ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            XCTAssertEqual(
                try WebhookFormatter.signature(secret: secret, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body),
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", secret)
        }
    }

    func testWebhookSecretsAreStandardBase64OfAtLeast24Bytes() {
        let key25 = Array(1...25).map(UInt8.init)
        XCTAssertEqual(try WebhookSecret.key("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ==").get(), key25, "padded")
        XCTAssertEqual(try WebhookSecret.key("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ").get(), key25, "unpadded, as Python reads it")
        XCTAssertEqual(try WebhookSecret.key("whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ").get(), key25)
        XCTAssertEqual(WebhookSecret.key("whsec_AAAAAAAAAAAAAAAAAAAAAA=="), .failure(.tooShort(bytes: 16)))
        XCTAssertEqual(WebhookSecret.key("whsec_"), .failure(.tooShort(bytes: 0)))
        for bad in [
            "s3cret-value", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "MfKQ9r8G=KYqrTwjUPD8ILPZIo2LaLaS",
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ=", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYG", "AAAA===",
        ] {
            XCTAssertEqual(WebhookSecret.key(bad), .failure(.notBase64), bad)
        }
        XCTAssertThrowsError(try WebhookFormatter.signature(secret: "s3cret-value", id: "msg_x", timestamp: 1, body: [])) { e in
            XCTAssertFalse("\(e)".contains("s3cret-value"))
        }
    }

    func testLoaderRejectsNonBase64AndShortWebhookSecretsWithoutShowingThem() {
        for (secret, needle) in [("s3cret-value", "base64"), ("whsec_AAAAAAAAAAAAAAAAAAAAAA==", "at least 24")] {
            let yaml = "targets: [{name: h, type: webhook, url: 'https://x.example', secret: '\(secret)'}]"
            XCTAssertThrowsError(try TargetsConfigLoader.load(text: yaml, environment: [:]), secret) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains("targets[0] (h).secret") && text.contains(needle), text)
                let bare = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
                XCTAssertFalse(text.contains(bare), "the secret itself is never printed: \(text)")
            }
        }
        XCTAssertNoThrow(
            try TargetsConfigLoader.load(
                text: "targets: [{name: h, type: webhook, url: 'https://x.example', secret: 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'}]",
                environment: [:]))
    }

    // MARK: 2. Webhook body timestamp

    func testWebhookBodyIsByteIdenticalAcrossAttempts() throws {
        let f = WebhookFormatter()
        let t = Samples.targets[.webhook]!
        for (alert, eventTime) in [(Samples.resolved, "2024-05-01T12:30:00Z"), (Samples.firingFull, "2024-05-01T12:00:00.123456789Z")] {
            let a = try f.request(for: alert, target: t, context: FormatContext(now: Samples.now))
            let b = try f.request(for: alert, target: t, context: FormatContext(now: Timestamp(seconds: Samples.now.seconds + 600)))
            XCTAssertEqual(a.body, b.body, "a retry sends the same bytes")
            XCTAssertEqual(try JSONValue.parse(a.body)["timestamp"]?.stringValue, eventTime, "when the event occurred")
            func header(_ r: OutboundRequest, _ n: String) -> String? { r.headers.first { $0.name == n }?.value }
            XCTAssertEqual(header(a, "webhook-id"), header(b, "webhook-id"))
            XCTAssertEqual(header(b, "webhook-timestamp"), String(Samples.now.seconds + 600), "the attempt's time stays per attempt")
            XCTAssertNotEqual(header(a, "webhook-signature"), header(b, "webhook-signature"))
        }
    }

    // MARK: 4. Rate-limit defaults

    /// The most requests a token bucket with this limit lets through in any `window` seconds, from full.
    func mostInAnyWindow(_ l: RateLimit, window: Double, span: Double = 300) -> Int {
        var bucket = TokenBucket(ratePerSecond: l.perSecond, burst: l.burst)
        var sent: [Double] = []
        var t = 0.0
        while t < span {
            if bucket.reserve(now: t, maxWait: 0) != nil { sent.append(t) }
            t += 0.01
        }
        var most = 0
        var lo = 0
        for hi in sent.indices {
            while sent[hi] - sent[lo] >= window { lo += 1 }
            most = max(most, hi - lo + 1)
        }
        return most
    }

    func testDefaultRateLimitsStayWithinTheVendorsSixtySecondWindows() {
        func limit(_ type: TargetType) -> RateLimit { Target(name: "t", type: type, url: "https://x.example", secret: Secret("k")).effectiveRateLimit! }
        XCTAssertEqual(limit(.rootly), RateLimit(requests: 45, periodSeconds: 60, burst: 5))
        XCTAssertLessThanOrEqual(mostInAnyWindow(limit(.rootly), window: 60), 50, "Rootly: 50 alerts per minute per source/API key")
        XCTAssertEqual(limit(.pagerduty), RateLimit(requests: 100, periodSeconds: 60, burst: 20))
        XCTAssertLessThanOrEqual(mostInAnyWindow(limit(.pagerduty), window: 60), 120, "PagerDuty: about 120 calls per 60 s window")
        XCTAssertEqual(limit(.slack), RateLimit(requests: 1, periodSeconds: 1, burst: 3), "Slack: 1 message/s per webhook, burst 3")
        XCTAssertNil(Target(name: "t", type: .webhook, url: "https://x.example").effectiveRateLimit, "generic webhooks have no default limit")
        var overridden = Target(name: "t", type: .rootly, url: "https://x.example", secret: Secret("k"))
        overridden.rateLimit = RateLimit(requests: 600, periodSeconds: 60)
        XCTAssertEqual(overridden.effectiveRateLimit?.requests, 600, "rate_limit: still wins")
    }

    // MARK: 5. PagerDuty event size

    func testPagerDutyEventAlwaysFitsTheEventsAPISizeLimit() throws {
        var a = Samples.firingFull
        a.annotations["dump"] = String(repeating: "x", count: 600_000)
        a.annotations["trace"] = String(repeating: "é\"", count: 100_000)  // escaping makes it larger on the wire
        let req = try PagerDutyFormatter().request(for: a, target: Samples.targets[.pagerduty]!, context: context())
        XCTAssertLessThanOrEqual(req.body.count, PagerDutyFormatter.maxEventBytes)
        XCTAssertGreaterThan(req.body.count, PagerDutyFormatter.maxEventBytes - PagerDutyFormatter.noteReserveBytes - 1024, "no more is cut than needed")
        let json = try JSONValue.parse(req.body)
        let d = try XCTUnwrap(json["payload"]?["custom_details"])
        XCTAssertTrue(d["annotations"]?["dump"]?.stringValue?.hasSuffix("…") ?? false)
        XCTAssertEqual(d["annotations"]?["summary"]?.stringValue, a.annotations["summary"], "small values are untouched")
        XCTAssertEqual(d["labels"], a.labelsJSON)
        let note = try XCTUnwrap(d["truncated"]?.stringValue)
        XCTAssertTrue(note.contains("annotations.dump") && note.contains("512 KB"), note)
        XCTAssertNotNil(json["links"], "links are kept when only details had to be cut")

        // Too big even without its details (a huge label name): Alertmanager's fallback.
        var b = Samples.minimal
        b.labels[String(repeating: "n", count: 600_000)] = "v"
        b.generatorURL = "https://prometheus.example/graph?x=" + String(repeating: "q", count: 600_000)
        let fallback = try PagerDutyFormatter().request(for: b, target: Samples.targets[.pagerduty]!, context: context())
        XCTAssertLessThanOrEqual(fallback.body.count, PagerDutyFormatter.maxEventBytes)
        let fj = try JSONValue.parse(fallback.body)
        XCTAssertNotNil(fj["payload"]?["custom_details"]?["error"]?.stringValue)
        XCTAssertNil(fj["links"])
        XCTAssertEqual(fj["dedup_key"]?.stringValue, b.fingerprint)
    }

    func testWaterLevelAndJSONSizesMatchTheirTables() {
        XCTAssertEqual(PagerDutyFormatter.waterLevel(sizes: [600_000, 200_000, 100], excess: 300_000), 300_000)
        XCTAssertEqual(PagerDutyFormatter.waterLevel(sizes: [600_000, 200_000, 100], excess: 500_000), 150_000)
        XCTAssertEqual(PagerDutyFormatter.waterLevel(sizes: [10, 10], excess: 30), 0)
        for s in ["", "plain", "q\"uo\\te\n\t\r\u{8}\u{c}", "\u{1}\u{7F}", "é👩‍💻"] {
            XCTAssertEqual(jsonSize(s), JSONValue.string(s).serialized().count, s)
        }
        let cut = PagerDutyFormatter.truncated("👩‍💻👩‍💻👩‍💻", toJSONBytes: 20)  // 11 bytes each, 2 quotes, 3 for "…"
        XCTAssertEqual(cut, "👩‍💻…", "whole graphemes only")
        XCTAssertLessThanOrEqual(jsonSize(cut), 20)
    }

    // MARK: 6. Alertmanager envelope

    func testSingleAlertEnvelopeIsSelfConsistent() throws {
        let f = AlertmanagerFormatter(hostname: Samples.hostname)
        for (name, a) in Samples.alerts {
            let j = try JSONValue.parse(f.request(for: a, target: Samples.targets[.alertmanager]!, context: context()).body)
            XCTAssertEqual(j["groupLabels"], a.labelsJSON, name)
            XCTAssertEqual(j["commonLabels"], a.labelsJSON, name)
            XCTAssertEqual(j["commonAnnotations"], a.annotationsJSON, name)
            XCTAssertEqual(j["groupKey"]?.stringValue, "{}:" + AlertmanagerFormatter.labelSetString(a.sortedLabels), name)
            XCTAssertEqual(j["externalURL"]?.stringValue, "http://alertfanout.test", name)
        }
        let empty = try JSONValue.parse(f.request(for: Samples.emptyLabels, target: Samples.targets[.alertmanager]!, context: context()).body)
        XCTAssertEqual(empty["groupKey"]?.stringValue, "{}:{}", "no alertname is invented")
        XCTAssertFalse(AlertmanagerFormatter.localHostname.isEmpty)
    }

    func testBatchSourcedSingleAlertDoesNotReuseTheGroupsKey() throws {
        var other = Samples.firingFull
        other.labels["instance"] = "db-2:9100"
        other.fingerprint = Alert.fingerprint(of: other.labels)
        let batch = AlertBatch(
            alerts: [Samples.firingFull, other], groupKey: "{}:{alertname=\"DiskFull\"}",
            groupLabels: ["alertname": "DiskFull"], externalURL: "http://am.local:9093")
        let f = AlertmanagerFormatter(hostname: Samples.hostname)
        var t = Samples.targets[.alertmanager]!
        let j = try JSONValue.parse(f.request(for: other, target: t, context: context(batch: batch)).body)
        XCTAssertEqual(j["groupKey"]?.stringValue, "{}:" + AlertmanagerFormatter.labelSetString(other.sortedLabels))
        XCTAssertEqual(j["groupLabels"], other.labelsJSON)
        XCTAssertEqual(j["externalURL"]?.stringValue, "http://am.local:9093", "the received externalURL comes first")
        // Then the target's external_url, then http://<hostname>; an empty received one does not count.
        t.externalURL = "https://fanout.example"
        var noURL = batch
        noURL.externalURL = ""
        XCTAssertEqual(
            try JSONValue.parse(f.request(for: other, target: t, context: context(batch: noURL)).body)["externalURL"]?.stringValue,
            "https://fanout.example")
        XCTAssertEqual(try JSONValue.parse(f.request(forBatch: noURL, target: t).body)["externalURL"]?.stringValue, "https://fanout.example")
    }

    func testForwardedBatchIsOneEnvelopeWithCommonLabels() throws {
        var second = Samples.resolved
        second.labels["instance"] = "db-2:9100"
        second.annotations["summary"] = "Disk / is fine again"
        second.fingerprint = Alert.fingerprint(of: second.labels)
        let batch = AlertBatch(
            alerts: [Samples.firingFull, second], groupKey: "{}/{severity=\"critical\"}:{alertname=\"DiskFull\"}",
            groupLabels: ["alertname": "DiskFull"], externalURL: "http://am.local:9093", truncatedAlerts: 3)
        let f = AlertmanagerFormatter(hostname: Samples.hostname)
        let req = f.request(forBatch: batch, target: Samples.targets[.alertmanager]!)
        let j = try JSONValue.parse(req.body)
        XCTAssertEqual(j["alerts"]?.arrayValue?.map { $0["fingerprint"]?.stringValue }, [Samples.firingFull.fingerprint, second.fingerprint])
        XCTAssertEqual(j["status"]?.stringValue, "firing", "firing while any alert fires")
        XCTAssertEqual(j["alerts"]?.arrayValue?.last?["status"]?.stringValue, "resolved")
        var common = Samples.firingFull.labels
        common["instance"] = nil
        XCTAssertEqual(j["commonLabels"], .strings(Alert.sorted(common)))
        XCTAssertEqual(
            j["commonAnnotations"], .strings([("description", "Only 3% left & <growing> \"fast\""), ("runbook_url", "https://runbooks.example.com/disk")]))
        XCTAssertEqual(j["groupLabels"], .strings([("alertname", "DiskFull")]))
        XCTAssertEqual(j["groupKey"]?.stringValue, batch.groupKey)
        XCTAssertEqual(j["truncatedAlerts"]?.intValue, 3)
        XCTAssertEqual(req.action, "notify")
        XCTAssertTrue(req.idempotent)
        let allResolved = AlertBatch(alerts: [Samples.resolved, second])
        let r = try JSONValue.parse(f.request(forBatch: allResolved, target: Samples.targets[.alertmanager]!).body)
        XCTAssertEqual(r["status"]?.stringValue, "resolved")
        XCTAssertEqual(r["groupKey"]?.stringValue, "{}:{}", "without a received key: the root route's key over no group labels")
        XCTAssertEqual(r["externalURL"]?.stringValue, "http://alertfanout.test")
        XCTAssertEqual(AlertmanagerFormatter.common([["a": "1", "b": ""], ["a": "1"]]).map(\.0), ["a", "b"], "Go reads a missing label as \"\"")
        XCTAssertTrue(AlertmanagerFormatter.common([]).isEmpty)
    }

    func testTruncatedAlertsIsDecodedAndExternalURLIsATargetKey() throws {
        let payload = #"{"version":"4","groupKey":"{}:{}","truncatedAlerts":5,"alerts":[{"labels":{"alertname":"A"}}]}"#
        XCTAssertEqual(try AlertInput.decode(json: Array(payload.utf8), now: Samples.now).truncatedAlerts, 5)
        XCTAssertThrowsError(try AlertInput.decode(json: Array(payload.replacingOccurrences(of: "5", with: "-1").utf8), now: Samples.now)) { e in
            XCTAssertTrue("\(e)".contains("truncatedAlerts"), "\(e)")
        }
        let ok = try TargetsConfigLoader.load(
            text: "targets: [{name: am, type: alertmanager, url: 'https://r.example/hook', external_url: 'https://fanout.example'}]",
            environment: [:])
        XCTAssertEqual(ok["am"]?.externalURL, "https://fanout.example")
        let bad = """
            targets:
              - {name: am, type: alertmanager, url: 'https://r.example/hook', external_url: 'ftp://x'}
              - {name: hook, type: webhook, url: 'https://h.example', external_url: 'https://fanout.example'}
            """
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: bad, environment: [:])) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("targets[0] (am).external_url: must be an http or https URL"), text)
            XCTAssertTrue(text.contains("targets[1] (hook).external_url: applies only to alertmanager targets"), text)
        }
    }

    // MARK: 7. Slack text

    func testSlackBoldNeverWrapsSpacesAndEntitiesAreNeverCut() throws {
        let f = SlackFormatter()
        let t = Samples.targets[.slack]!
        let long = try JSONValue.parse(f.request(for: Samples.unicodeLong, target: t, context: context()).body)
        let blocks = try XCTUnwrap(long["blocks"]?.arrayValue)
        let section = try XCTUnwrap(blocks[1]["text"]?["text"]?.stringValue)
        XCTAssertTrue(section.hasPrefix("*👩‍💻") && section.hasSuffix("Überlast*"), "trimmed before bolding: \(section.suffix(20))")
        XCTAssertEqual(try XCTUnwrap(blocks[0]["text"]?["text"]?.stringValue).utf16.count, 150, "🔥 counts two units")

        var amp = Samples.minimal
        amp.annotations["summary"] = String(repeating: "a", count: 2_982) + "&&&&"
        let ampJSON = try JSONValue.parse(f.request(for: amp, target: t, context: context()).body)
        for text in [ampJSON["text"]?.stringValue, ampJSON["blocks"]?.arrayValue?[1]["text"]?["text"]?.stringValue] {
            let text = try XCTUnwrap(text)
            XCTAssertLessThanOrEqual(text.utf16.count, 3000)
            XCTAssertTrue(text.hasSuffix("…") || text.hasSuffix("…*"), String(text.suffix(20)))
            XCTAssertTrue(
                text.split(separator: "&", omittingEmptySubsequences: false).dropFirst().allSatisfy { $0.hasPrefix("amp;") },
                "an entity is never cut: \(text.suffix(30))")
        }

        // Text with a newline or an asterisk, or only spaces, is never wrapped in literal asterisks.
        XCTAssertEqual(SlackFormatter.bold("  padded  ", limit: 100), "*padded*")
        XCTAssertEqual(SlackFormatter.bold("two\nlines", limit: 100), "two\nlines")
        XCTAssertEqual(SlackFormatter.bold("a * b", limit: 100), "a * b")
        XCTAssertEqual(SlackFormatter.bold("x < y", limit: 100), "*x &lt; y*")
        XCTAssertEqual(SlackFormatter.fit("a&b", limit: 6), "a…", "never `a&amp…` or `a&a…`")
        XCTAssertEqual(SlackFormatter.fit("a&b", limit: 7), "a&amp;b")
        var multi = Samples.minimal
        multi.annotations["summary"] = "First line \nsecond line"
        let m = try JSONValue.parse(f.request(for: multi, target: t, context: context()).body)
        XCTAssertEqual(m["blocks"]?.arrayValue?[1]["text"]?["text"]?.stringValue, "*First line*\nsecond line")
    }

    func testSlackKeepsAHugeAlertWellUnderItsTotalTextLimit() throws {
        var a = Samples.firingFull
        a.annotations["summary"] = String(repeating: "😀", count: 5000)
        a.annotations["description"] = String(repeating: "<&>", count: 5000)
        for i in 0..<20 { a.labels["label_\(i)"] = String(repeating: "ж", count: 3000) }
        a.classification?.reasoning = String(repeating: "r", count: 10_000)
        a.generatorURL = "https://prometheus.example/graph?g0.expr=" + String(repeating: "q", count: 5000)
        let j = try JSONValue.parse(SlackFormatter().request(for: a, target: Samples.targets[.slack]!, context: context()).body)
        var total = 0
        func add(_ v: JSONValue?) {
            guard let v else { return }
            switch v {
            case .string(let s): total += s.utf16.count
            case .array(let items): items.forEach(add)
            case .object(let members): for (k, value) in members where k == "text" || k == "fields" || k == "elements" { add(value) }
            default: break
            }
        }
        for b in j["blocks"]?.arrayValue ?? [] {
            add(b["text"])
            add(b["fields"])
            add(b["elements"])
        }
        XCTAssertLessThanOrEqual(total, 10_300, "Slack engineers quote about 12,000 characters of block text in total")
        for field in j["blocks"]?.arrayValue?[2]["fields"]?.arrayValue ?? [] {
            XCTAssertLessThanOrEqual(try XCTUnwrap(field["text"]?.stringValue).utf16.count, 500)
        }
        XCTAssertEqual(j["blocks"]?.arrayValue?.last?["elements"]?.arrayValue?.count, 2, "the over-long source link is left out, the runbook kept")
    }
}
