import XCTest

// TargetsConfigTests: targets files in YAML and JSON, environment expansion, and every kind of mistake reported at once.
@testable import AlertFanout

final class TargetsConfigTests: XCTestCase {
    let env = [
        "PD_KEY": "R0123456789abcdef0123456789abcde", "ROOTLY_KEY": "rootly-secret-value", "SLACK_PATH": "T000/B000/XXXX",
        "HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ]

    func testAValidYAMLFileLoadsEveryTargetType() throws {
        let yaml = """
            targets:
              - name: pd-primary
                type: pagerduty
                routing_key: ${PD_KEY}
                timeout: 5s
                rate_limit: 120/min
              - name: slack-ops
                type: slack
                url: https://hooks.slack.com/services/${SLACK_PATH}
                enabled: false
              - name: rootly
                type: rootly
                api_key: ${ROOTLY_KEY}
                max_in_flight: 4
              - name: receiver
                type: alertmanager
                url: http://127.0.0.1:9095/hook
                receiver: team-x
              - name: hook
                type: webhook
                url: https://hooks.example.com/alert
                secret: ${HOOK_SECRET}
                headers:
                  X-Team: sre
                rate_limit: {requests: 10, per: 1s, burst: 20}
            """
        let config = try TargetsConfigLoader.load(text: yaml, file: "targets.yaml", environment: env)
        XCTAssertEqual(config.targets.map(\.name), ["pd-primary", "slack-ops", "rootly", "receiver", "hook"])
        let pd = try XCTUnwrap(config["pd-primary"])
        XCTAssertEqual(pd.url, "https://events.pagerduty.com", "PagerDuty's default URL")
        XCTAssertEqual(pd.secret?.reveal(), env["PD_KEY"])
        XCTAssertEqual(pd.timeoutSeconds, 5)
        XCTAssertEqual(pd.rateLimit, RateLimit(requests: 120, periodSeconds: 60))
        XCTAssertEqual(config["slack-ops"]?.enabled, false, "an explicit false stays false")
        XCTAssertEqual(config["slack-ops"]?.url, "https://hooks.slack.com/services/T000/B000/XXXX")
        XCTAssertEqual(config["slack-ops"]?.effectiveRateLimit?.perSecond, 1, "Slack's default: 1 message/s")
        XCTAssertEqual(config["rootly"]?.url, "https://api.rootly.com")
        XCTAssertEqual(config["rootly"]?.maxInFlight, 4)
        XCTAssertEqual(config["receiver"]?.receiver, "team-x")
        XCTAssertEqual(config["hook"]?.headers.first?.0, "X-Team")
        XCTAssertEqual(config["hook"]?.rateLimit?.burst, 20)
        XCTAssertEqual(config.enabled.count, 4)
        XCTAssertEqual("\(pd.secret!)", "<redacted>")
    }

    func testJSONFilesWorkToo() throws {
        let json = #"{"targets":[{"name":"a","type":"webhook","url":"http://localhost:8080/x"}]}"#
        let config = try TargetsConfigLoader.load(text: json, environment: [:])
        XCTAssertEqual(config.targets.first?.enabled, true, "enabled defaults to true")
    }

    func testEveryMistakeIsReportedWithTargetAndField() {
        let yaml = """
            targets:
              - name: Bad_Name
                type: pagerduty
                routing_key: short
              - name: dup
                type: slack
                url: http://hooks.slack.com/services/x
              - name: dup
                type: teams
                url: https://example.com
              - name: rootly
                type: rootly
              - name: hook
                type: webhook
                url: ftp://example.com/x
                routng_key: x
                timeout: soon
                max_in_flight: 0
                rate_limit: fast
                enabled: "yes please"
                headers:
                  "Bad Header": v
              - name: env
                type: webhook
                url: https://example.com/${MISSING_VAR}
                secret: ${ALSO_MISSING}
              - name: pd2
                type: pagerduty
                routing_key: R0123456789abcdef0123456789abcde
                api_key: nope
              - type: slack
                url: https://hooks.slack.com/services/y
            extra: 1
            """
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: yaml, file: "targets.yaml", environment: env)) { e in
            let text = "\(e)"
            for fragment in [
                "targets.yaml:",
                "targets[0] (Bad_Name).name: 'Bad_Name' must be a DNS label",
                "targets[0] (Bad_Name).routing_key: must be PagerDuty's 32-character integration key (got 5 characters)",
                "targets[1] (dup).url: must use https; plain http is allowed only for loopback hosts or with 'insecure: true'",
                "targets[2] (dup).type: 'teams' is not one of pagerduty, slack, rootly, webhook, alertmanager",
                "targets[3] (rootly).api_key: is required for rootly targets",
                "targets[4] (hook).url: must use https (or http for loopback), not 'ftp'",
                "targets[4] (hook).routng_key: unknown key (did you mean 'routing_key'?)",
                "targets[4] (hook).timeout: must be a positive duration",
                "targets[4] (hook).max_in_flight: must be a whole number of at least 1",
                "targets[4] (hook).rate_limit: must look like '1/s'",
                "targets[4] (hook).enabled: must be true or false",
                "targets[4] (hook).headers.Bad Header: is not a valid header name",
                "targets[5] (env).url: environment variable MISSING_VAR is not set",
                "targets[5] (env).secret: environment variable ALSO_MISSING is not set",
                "targets[6] (pd2).api_key: does not apply to pagerduty targets (they use 'routing_key')",
                "targets[7].name: is required",
                "extra: unknown top-level key",
            ] {
                XCTAssertTrue(text.contains(fragment), "missing '\(fragment)' in:\n\(text)")
            }
        }
        // Duplicate names are caught when both targets are otherwise valid.
        let dup = "targets:\n  - {name: a, type: webhook, url: 'https://x.example/'}\n  - {name: a, type: webhook, url: 'https://y.example/'}\n"
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: dup, environment: [:])) { e in
            XCTAssertTrue("\(e)".contains("targets[1] (a).name: duplicates the name of targets[0]"), "\(e)")
        }
    }

    func testSecretsNeverAppearInErrors() {
        let yaml = """
            targets:
              - name: pd
                type: pagerduty
                routing_key: ${ROOTLY_KEY}
                url: not a url
              - name: r
                type: rootly
                api_key: super-secret-literal
                url: http://example.com/${ROOTLY_KEY}
            """
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: yaml, environment: env)) { e in
            let text = "\(e)"
            XCTAssertFalse(text.contains("rootly-secret-value"), text)
            XCTAssertFalse(text.contains("super-secret-literal"), text)
            XCTAssertTrue(text.contains("targets[0] (pd).routing_key"), text)
        }
    }

    func testYAMLScalarsFollowTheCoreSchema() throws {
        // YAML 1.1 would read `off` and `no` as booleans and an unquoted all-digit key as a number.
        let yaml = """
            targets:
              - name: off
                type: webhook
                url: https://example.com/a
              - name: no
                type: pagerduty
                routing_key: 12345678901234567890123456789012
                enabled: false
            """
        let config = try TargetsConfigLoader.load(text: yaml, environment: [:])
        XCTAssertEqual(config.targets.map(\.name), ["off", "no"])
        XCTAssertEqual(config["no"]?.secret?.reveal(), "12345678901234567890123456789012")
        XCTAssertEqual(config["no"]?.enabled, false)
    }

    func testSyntaxErrorsAndShapes() {
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: "targets: [\n  {name: a", environment: [:])) { e in
            XCTAssertTrue("\(e)".contains("not valid YAML"), "\(e)")
        }
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: "{\"targets\": [}", environment: [:])) { e in
            XCTAssertTrue("\(e)".contains("invalid JSON at line 1"), "\(e)")
        }
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: "hello", environment: [:])) { e in
            XCTAssertTrue("\(e)".contains("expected a top-level 'targets:' list"), "\(e)")
        }
        XCTAssertThrowsError(try TargetsConfigLoader.load(text: "targets: []", environment: [:])) { e in
            XCTAssertTrue("\(e)".contains("the list is empty"), "\(e)")
        }
        XCTAssertNoThrow(
            try TargetsConfigLoader.load(text: "targets:\n  - {name: a, type: webhook, url: 'http://example.com/', insecure: true}", environment: [:]))
    }
}
