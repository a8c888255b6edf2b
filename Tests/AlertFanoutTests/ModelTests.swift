import FanoutCore
import XCTest

// ModelTests: timestamps, fingerprints, JSON parsing and serialisation, and alert input decoding with field-named errors.
@testable import AlertFanout

final class ModelTests: XCTestCase {
    func testTimestampsParseAndPrintLikeAlertmanager() throws {
        let cases: [(String, String)] = [
            ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
            ("2024-05-01T12:00:00.500Z", "2024-05-01T12:00:00.5Z"),
            ("2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.123456789Z"),
            ("2018-05-22T20:00:32.729840058-04:00", "2018-05-23T00:00:32.729840058Z"),
            ("2024-05-01t12:00:00+0530", "2024-05-01T06:30:00Z"),
            ("2024-02-29 23:59:59Z", "2024-02-29T23:59:59Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
        ]
        for (input, printed) in cases {
            XCTAssertEqual(Timestamp.parse(input)?.rfc3339, printed, input)
        }
        XCTAssertEqual(Timestamp.parse("0001-01-01T00:00:00Z"), .goZero)
        XCTAssertEqual(Timestamp.parse("1970-01-01T00:00:00Z")?.seconds, 0)
        XCTAssertEqual(Timestamp.parse("2024-05-01T12:00:00.5Z")?.rfc3339Millis, "2024-05-01T12:00:00.500Z")
        for bad in [
            "", "2024-05-01", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zjunk", "yesterday",
        ] {
            XCTAssertNil(Timestamp.parse(bad), bad)
        }
    }

    func testFingerprintsMatchPrometheusTestVectors() {
        // prometheus/common model/signature_test.go.
        XCTAssertEqual(Alert.fingerprint(of: [:]), "cbf29ce484222325")
        XCTAssertEqual(Alert.fingerprint(of: ["name": "garland, briggs", "fear": "love is not enough"]), String(5_799_056_148_416_392_346, radix: 16))
        XCTAssertEqual(Alert.fingerprint(of: ["first-label": "first-label-value"]), "476b44f5db3e21f9")
        XCTAssertEqual(Alert.fingerprint(of: ["first-label": "first-label-value", "second-label": "second-label-value"]), "2c59c33dd8453b1d")
        XCTAssertEqual(
            Alert.fingerprint(of: ["first-label": "first-label-value", "second-label": "second-label-value", "third-label": "third-label-value"]),
            "c01c58139d52b4b9")
        XCTAssertEqual(Alert.fingerprint(of: ["alertname": "test"]), "1f56cb8f931d1bd4")
    }

    func testJSONRoundTripsAndReportsWhereItIsWrong() throws {
        let text = #"{"b":1,"a":[true,false,null,-1.5e3,"x\"\\\/\n\u00e9\ud83d\ude00"],"c":{}}"#
        let v = try JSONValue.parse(text)
        XCTAssertEqual(v.objectValue?.map(\.0), ["b", "a", "c"], "key order is kept")
        XCTAssertEqual(v.jsonText, #"{"b":1,"a":[true,false,null,-1.5e3,"x\"\\/\né😀"],"c":{}}"#)
        XCTAssertEqual(JSONValue.string("\u{1}\t").jsonText, #""\u0001\t""#)
        XCTAssertEqual(JSONValue.string("\"a\u{7F}\\").jsonText, #""\"a\u007f\\""#, "escapes at both ends")
        let every = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self) + "é😀"
        XCTAssertEqual(try JSONValue.parse(JSONValue.string(every).jsonText), .string(every), "every ASCII character round-trips")
        let errors: [(String, String)] = [
            ("{\"a\":1,}", "member name"), ("[1 2]", "',' or ']'"), ("{\"a\" 1}", "':'"), ("\"abc", "unterminated"),
            ("01", "after the JSON value"), ("{\"a\":tru}", "'true'"), ("\"\\ud800\"", "surrogate"), ("", "end of input"),
        ]
        for (input, fragment) in errors {
            XCTAssertThrowsError(try JSONValue.parse(input), input) { e in
                XCTAssertTrue("\(e)".contains(fragment), "\(input): \(e)")
            }
        }
        // A string without escapes and one with: both refuse control characters and bytes that are not UTF-8.
        for bytes: [UInt8] in [[0x22, 0x61, 0x0A, 0x22], [0x22, 0x5C, 0x6E, 0x0A, 0x22]] {
            XCTAssertThrowsError(try JSONValue.parse(bytes)) { XCTAssertTrue("\($0)".contains("control character"), "\($0)") }
        }
        for bytes: [UInt8] in [[0x22, 0x61, 0xFF, 0x22], [0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22]] {
            XCTAssertThrowsError(try JSONValue.parse(bytes)) { XCTAssertTrue("\($0)".contains("not valid UTF-8"), "\($0)") }
        }
        XCTAssertEqual(try JSONValue.parse(Array(#""a\"b\u00e9c""#.utf8)), .string("a\"béc"))
        XCTAssertThrowsError(try JSONValue.parse("{\n  \"a\": [1,\n  x]\n}")) { e in
            XCTAssertTrue("\(e)".contains("line 3, column 3"), "\(e)")
        }
    }

    let now = Timestamp.parse("2024-05-01T12:00:00Z")!

    /// Writing an array item by item gives the array's indented text, byte for byte.
    func testPrettyLinesAreThePrettyArray() throws {
        let items: [JSONValue] = [
            .object([("a", .int(1)), ("b", .array([.string("x\n"), .null]))]), .array([]), .object([]), .string("é"),
            .object([("nested", .object([("deep", .array([.bool(true)]))]))]),
        ]
        for n in 0...items.count {
            var bytes: [UInt8] = []
            JSONValue.writePrettyLines(items.prefix(n)) { bytes.append(contentsOf: $0) }
            XCTAssertEqual(String(decoding: bytes, as: UTF8.self), JSONValue.array(Array(items.prefix(n))).prettyText() + "\n", "\(n) items")
        }
    }

    /// The writer's text, compact and indented, for a tree with every kind of value, escapes, empty containers
    /// and nesting — written out in full, so a change of layout shows here.
    func testJSONWriterTextIsTheDocumentedLayout() throws {
        let tree: JSONValue = .object([
            ("s", .string("a\"b\\c\n\u{1}é/")), ("n", .int(-42)), ("f", .number("1.5e3")), ("t", .bool(true)), ("z", .null),
            ("empty", .object([])), ("list", .array([.array([]), .object([("k", .int(0))]), .string("x")])),
        ])
        XCTAssertEqual(tree.jsonText, #"{"s":"a\"b\\c\n\u0001é/","n":-42,"f":1.5e3,"t":true,"z":null,"empty":{},"list":[[],{"k":0},"x"]}"#)
        XCTAssertEqual(
            tree.prettyText(),
            """
            {
              "s": "a\\"b\\\\c\\n\\u0001é/",
              "n": -42,
              "f": 1.5e3,
              "t": true,
              "z": null,
              "empty": {},
              "list": [
                [],
                {
                  "k": 0
                },
                "x"
              ]
            }
            """)
        XCTAssertEqual(try JSONValue.parse(tree.prettyText()), tree)
        // Deeper than one copy of the indent: 40 levels.
        var deep: JSONValue = .int(1)
        for _ in 0..<40 { deep = .array([deep]) }
        var lines = (0..<40).map { String(repeating: "  ", count: $0) + "[" }
        lines.append(String(repeating: "  ", count: 40) + "1")
        lines += (0..<40).reversed().map { String(repeating: "  ", count: $0) + "]" }
        XCTAssertEqual(deep.prettyText(), lines.joined(separator: "\n"))
        // Deeper than one copy of the indent, with commas at every depth, against a plain recursive printer.
        func reference(_ v: JSONValue, _ d: Int) -> String {
            guard case .array(let items) = v, !items.isEmpty else { return v.jsonText }
            let pad = { (n: Int) in String(repeating: "  ", count: n) }
            return "[\n" + items.map { pad(d + 1) + reference($0, d + 1) }.joined(separator: ",\n") + "\n" + pad(d) + "]"
        }
        var wide: JSONValue = .array([])
        for level in 0..<45 { wide = .array([.int(level), wide, .int(-level)]) }
        XCTAssertEqual(wide.prettyText(), reference(wide, 0))
        // Integers at the ends of Int, written without a String in between.
        for v in [0, 7, -1, 10, 99, 100, Int.max, Int.min] { XCTAssertEqual(JSONValue.int(v).jsonText, String(v)) }
        var w = JSONWriter()
        for v in [Int.max, Int.min, 0] {
            w.bytes.removeAll()
            w.int(v)
            XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), String(v))
        }
    }

    /// A publish report written straight to text is its tree's text, for a full report, a failed publish with
    /// its report, and one without; the tree (`json`) reads back with every field.
    func testReportsWriteTheirTreesText() throws {
        let report = PublishReport(
            alertName: "Disk \"full\"", fingerprint: "abc", status: "firing",
            results: [
                TargetResult(
                    target: "pd", type: "pagerduty", outcome: .succeeded, httpStatus: 202, attempts: 1, durationSeconds: 0.0123456, deadlineSeconds: 2,
                    action: "trigger", detail: "dedup-1"),
                TargetResult(
                    target: "hook", type: "webhook", outcome: .failed, errorKind: .httpStatus, httpStatus: 503, message: "HTTP 503\nretry", attempts: 3,
                    retryable: true, durationSeconds: 1.5),
                TargetResult(target: "off", type: "slack", outcome: .skipped, skipReason: .disabled),
            ],
            durationSeconds: 1.5004, deadlineSeconds: 10)
        let expected: JSONValue = .object([
            ("alert", .string("Disk \"full\"")), ("fingerprint", .string("abc")), ("status", .string("firing")), ("duration_ms", .number("1500.4")),
            ("deadline_ms", .number("10000")), ("succeeded", .int(1)), ("failed", .int(1)), ("skipped", .int(1)), ("partial_success", .bool(true)),
            (
                "results",
                .array([
                    .object([
                        ("target", .string("pd")), ("type", .string("pagerduty")), ("outcome", .string("succeeded")), ("action", .string("trigger")),
                        ("http_status", .int(202)), ("attempts", .int(1)), ("duration_ms", .number("12.346")), ("deadline_ms", .number("2000")),
                        ("detail", .string("dedup-1")),
                    ]),
                    .object([
                        ("target", .string("hook")), ("type", .string("webhook")), ("outcome", .string("failed")), ("http_status", .int(503)),
                        ("error_kind", .string("http_status")), ("message", .string("HTTP 503\nretry")), ("attempts", .int(3)), ("retryable", .bool(true)),
                        ("duration_ms", .number("1500")),
                    ]),
                    .object([
                        ("target", .string("off")), ("type", .string("slack")), ("outcome", .string("skipped")), ("skip_reason", .string("disabled")),
                        ("attempts", .int(0)), ("duration_ms", .number("0")),
                    ]),
                ])
            ),
        ])
        XCTAssertEqual(report.json.jsonText, expected.jsonText)
        var pretty = JSONWriter(pretty: true)
        report.write(to: &pretty)
        XCTAssertEqual(String(decoding: pretty.bytes, as: UTF8.self), expected.prettyText())

        let failed: Result<PublishReport, PublishError> = .failure(.allFailed(report))
        let withError = JSONValue.object([("error", .string(PublishError.allFailed(report).description))] + expected.objectValue!)
        XCTAssertEqual(failed.json.jsonText, withError.jsonText)
        XCTAssertEqual(Result<PublishReport, PublishError>.failure(.noEnabledTargets).json.jsonText, #"{"error":"no enabled targets to publish to"}"#)
        var lines: [UInt8] = []
        JSONValue.writePrettyLines([.success(report), failed], to: { lines.append(contentsOf: $0) }) { w, r in r.write(to: &w) }
        XCTAssertEqual(String(decoding: lines, as: UTF8.self), JSONValue.array([expected, withError]).prettyText() + "\n")
    }

    /// Milliseconds are written as `.double` writes the microsecond-rounded value, without printing a Double.
    func testMillisecondsMatchTheDoubleText() {
        var rng = SystemRandomNumberGenerator()
        var values: [Double] = [0, 0.0000004, 0.0000005, 0.001, 0.0015, 0.1, 0.15182600000001, 1, 2.5, 10, 59.9999999, 3600.123456, 1e9, 2e12, -0.0004, -1.25]
        let scales: [Double] = [1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1e3, 1e4, 1e5, 1e6]
        for _ in 0..<20_000 { values.append(Double.random(in: 0..<1, using: &rng) * scales.randomElement(using: &rng)!) }
        for v in values {
            XCTAssertEqual(JSONValue.milliseconds(v).jsonText, JSONValue.double((v * 1000 * 1000).rounded() / 1000).jsonText, "\(v) s")
        }
        XCTAssertEqual(JSONValue.milliseconds(0.151826).jsonText, "151.826")
        XCTAssertEqual(JSONValue.milliseconds(0.0001).jsonText, "0.1")
        XCTAssertEqual(JSONValue.milliseconds(0.000007).jsonText, "0.007")
        XCTAssertEqual(JSONValue.milliseconds(.nan).jsonText, "null")
    }

    func testDecodesOneAlertAnArrayAndAnAlertmanagerPayload() throws {
        let one = try AlertInput.decode(
            json: Array(
                #"{"labels":{"alertname":"A","severity":"critical"},"annotations":{"summary":"s"},"classification":{"severity":"warning","confidence":0.5,"recommendations":["r1"]}}"#
                    .utf8), now: now)
        XCTAssertEqual(one.alerts.count, 1)
        XCTAssertEqual(one.alerts[0].status, .firing)
        XCTAssertEqual(one.alerts[0].startsAt, now, "startsAt defaults to now")
        XCTAssertEqual(one.alerts[0].fingerprint, Alert.fingerprint(of: ["alertname": "A", "severity": "critical"]))
        XCTAssertEqual(one.alerts[0].classification?.severity, .warning)

        let array = try AlertInput.decode(
            json: Array(#"[{"labels":{"alertname":"A"}},{"labels":{"alertname":"B"},"endsAt":"2024-05-01T11:00:00Z","startsAt":"2024-05-01T10:00:00Z"}]"#.utf8),
            now: now)
        XCTAssertEqual(array.alerts.map(\.status), [.firing, .resolved], "an alert whose end has passed is resolved")

        let am = """
            {"receiver":"web\\\\.hook","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X","job":"p"},
             "annotations":{},"startsAt":"2024-05-01T11:59:00.1Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://p:9090/g",
             "fingerprint":"0123456789abcdef"}],"groupLabels":{"alertname":"X"},"commonLabels":{},"commonAnnotations":{},
             "externalURL":"http://am:9093","version":"4","groupKey":"{}:{alertname=\\"X\\"}","truncatedAlerts":0}
            """
        let batch = try AlertInput.decode(json: Array(am.utf8), now: now)
        XCTAssertEqual(batch.alerts.count, 1)
        XCTAssertNil(batch.alerts[0].endsAt, "Go's zero time means no end")
        XCTAssertEqual(batch.alerts[0].fingerprint, "0123456789abcdef", "a given fingerprint is kept")
        XCTAssertEqual(batch.groupKey, #"{}:{alertname="X"}"#)
        XCTAssertEqual(batch.externalURL, "http://am:9093")
        XCTAssertEqual(batch.groupLabels, ["alertname": "X"])
    }

    func testDecodingErrorsNameEveryFieldAndProblem() {
        let input = #"""
            {"version":"3","alerts":[
              {"labels":{"alertname":7,"bad-name":"x"},"status":"open","startsAt":"yesterday","fingerprint":"XYZ"},
              {"annotations":[],"classification":{"severity":"huge","confidence":2}},
              {"labels":{"a":"b"},"startsAt":"2024-05-01T12:00:00Z","endsAt":"2024-05-01T11:00:00Z"},
              "nope"
            ]}
            """#
        XCTAssertThrowsError(try AlertInput.decode(json: Array(input.utf8), now: now)) { e in
            let text = "\(e)"
            for fragment in [
                "version: unsupported Alertmanager webhook version \"3\"",
                "alerts[0].labels.alertname: must be a string, not a number",
                "alerts[0].labels.bad-name: label names must match",
                "alerts[0].status: must be \"firing\" or \"resolved\", not \"open\"",
                "alerts[0].startsAt: \"yesterday\" is not an RFC 3339 time",
                "alerts[0].fingerprint: must be 16 lowercase hex digits",
                "alerts[1].labels: is required",
                "alerts[1].annotations: must be an object of string values, not an array",
                "alerts[1].classification.severity: must be one of critical, warning, info, noise",
                "alerts[1].classification.confidence: must be a number from 0 to 1, not 2",
                "alerts[2].endsAt: is before startsAt",
                "alerts[3]: an alert must be an object, not a string",
            ] {
                XCTAssertTrue(text.contains(fragment), "missing '\(fragment)' in:\n\(text)")
            }
        }
        XCTAssertThrowsError(try AlertInput.decode(json: Array("{\"labels\":".utf8), now: now)) { e in
            XCTAssertTrue("\(e)".contains("invalid JSON at line 1"), "\(e)")
        }
        XCTAssertThrowsError(try AlertInput.decode(json: Array("[]".utf8), now: now))
        XCTAssertThrowsError(try AlertInput.decode(json: Array("42".utf8), now: now))
    }
}
