// AlertInput: decodes alerts from one alert object, an array of them, or an Alertmanager webhook payload (version "4").

/// One problem in an alert document: where (`alerts[1].labels.severity`) and what.
public struct InputProblem: Sendable, Hashable, CustomStringConvertible {
    /// Where: a path into the document (`alerts[1].labels.severity`); empty for the document as a whole.
    public var path: String
    /// What is wrong (`must be a string, not a number`).
    public var problem: String
    /// A problem at `path`.
    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }
    /// `path: problem`, or just the problem when the path is empty.
    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
}

/// Every problem found in an alert document, at once.
public struct AlertDecodingError: Error, Sendable, CustomStringConvertible {
    /// Every problem found, in document order.
    public var problems: [InputProblem]
    /// The number of problems, then one indented `- path: problem` line per problem.
    public var description: String {
        "invalid alert input (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Alerts read from input, with the Alertmanager envelope's fields when the input was a webhook payload.
public struct AlertBatch: Sendable {
    /// The alerts, in input order.
    public var alerts: [Alert]
    /// The envelope's `receiver`, when the input was an Alertmanager payload that named one.
    public var receiver: String?
    /// The envelope's `groupKey`, which identifies the alert group at the sending Alertmanager.
    public var groupKey: String?
    /// The envelope's `groupLabels` (the labels the group was formed by); empty when there are none.
    public var groupLabels: [String: String]
    /// The envelope's `externalURL`, a link back to the sending Alertmanager.
    public var externalURL: String?
    /// Alerts the sender left out of this notification (Alertmanager's `max_alerts`); 0 when none were.
    public var truncatedAlerts: Int

    /// A batch of `alerts` with the given envelope fields (all optional).
    public init(
        alerts: [Alert], receiver: String? = nil, groupKey: String? = nil, groupLabels: [String: String] = [:], externalURL: String? = nil,
        truncatedAlerts: Int = 0
    ) {
        self.alerts = alerts
        self.receiver = receiver
        self.groupKey = groupKey
        self.groupLabels = groupLabels
        self.externalURL = externalURL
        self.truncatedAlerts = truncatedAlerts
    }
}

/// Decodes alerts from JSON: one alert object, an array of them, or an Alertmanager webhook payload (version
/// "4", whose envelope fields are kept in the ``AlertBatch``). Every problem of the input is reported at once.
public enum AlertInput {
    /// Decodes JSON text. `now` fills `startsAt` when absent and decides the status of an alert that gives
    /// none (resolved when `endsAt` is set and not after `now`, firing otherwise).
    ///
    /// - Throws: ``AlertDecodingError`` listing every problem (invalid JSON is a single problem).
    public static func decode(json bytes: [UInt8], now: Timestamp) throws -> AlertBatch {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw AlertDecodingError(problems: [InputProblem("", error.description)])
        }
        return try decode(value, now: now)
    }

    /// Decodes an already parsed document, as `decode(json:now:)` does. Labels are required and must have valid
    /// names; an alert ending before it starts, a bad time or fingerprint, or a wrong type is a problem.
    ///
    /// - Throws: ``AlertDecodingError`` listing every problem; nothing is returned when there is any.
    public static func decode(_ value: JSONValue, now: Timestamp) throws -> AlertBatch {
        var problems: [InputProblem] = []
        var batch = AlertBatch(alerts: [])
        switch value {
        case .array(let items):
            if items.isEmpty { problems.append(InputProblem("", "the array holds no alerts")) }
            for (i, item) in items.enumerated() {
                if let a = alert(item, path: "[\(i)]", now: now, problems: &problems) { batch.alerts.append(a) }
            }
        case .object where value["alerts"] != nil:
            if let v = value["version"], v.stringValue != "4" {
                problems.append(InputProblem("version", "unsupported Alertmanager webhook version \(v.jsonText); only \"4\" is understood"))
            }
            batch.receiver = optionalString(value["receiver"], "receiver", &problems)
            batch.groupKey = optionalString(value["groupKey"], "groupKey", &problems)
            batch.externalURL = optionalString(value["externalURL"], "externalURL", &problems)
            batch.groupLabels = stringMap(value["groupLabels"], "groupLabels", &problems) ?? [:]
            if let t = value["truncatedAlerts"], !t.isNull {
                if let n = t.intValue, n >= 0 {
                    batch.truncatedAlerts = n
                } else {
                    problems.append(InputProblem("truncatedAlerts", "must be a whole number of at least 0, not \(t.jsonText)"))
                }
            }
            guard let items = value["alerts"]?.arrayValue else {
                problems.append(InputProblem("alerts", "must be an array of alerts, not \(value["alerts"]!.typeName)"))
                break
            }
            if items.isEmpty { problems.append(InputProblem("alerts", "holds no alerts")) }
            for (i, item) in items.enumerated() {
                if let a = alert(item, path: "alerts[\(i)]", now: now, problems: &problems) { batch.alerts.append(a) }
            }
        case .object:
            if let a = alert(value, path: "", now: now, problems: &problems) { batch.alerts.append(a) }
        default:
            problems.append(InputProblem("", "expected an alert object, an array of alerts or an Alertmanager webhook payload, not \(value.typeName)"))
        }
        if !problems.isEmpty { throw AlertDecodingError(problems: problems) }
        return batch
    }

    static func alert(_ v: JSONValue, path: @autoclosure () -> String, now: Timestamp, problems: inout [InputProblem]) -> Alert? {
        // Paths are made only for problems (an interpolation per field cost more than the field's check).
        func p(_ field: String) -> String {
            let base = path()
            return base.isEmpty ? field : "\(base).\(field)"
        }
        guard case .object = v else {
            problems.append(InputProblem(path(), "an alert must be an object, not \(v.typeName)"))
            return nil
        }
        let before = problems.count
        var labels: [String: String] = [:]
        if let l = v["labels"] {
            labels = stringMap(l, p("labels"), &problems) ?? [:]
            if l.objectValue?.isEmpty == true { problems.append(InputProblem(p("labels"), "at least one label is required")) }
            for name in labels.keys where !isLabelName(name) {
                problems.append(InputProblem(p("labels.\(name)"), "label names must match [a-zA-Z_][a-zA-Z0-9_]*"))
            }
        } else {
            problems.append(InputProblem(p("labels"), "is required (an object of label name to string value)"))
        }
        let annotations = v["annotations"].flatMap { $0.isNull ? nil : stringMap($0, p("annotations"), &problems) } ?? [:]
        let startsAt = time(v["startsAt"], p("startsAt"), &problems) ?? now
        var endsAt = time(v["endsAt"], p("endsAt"), &problems)
        if endsAt?.isGoZero == true { endsAt = nil }
        var status: AlertStatus
        if let s = v["status"], !s.isNull {
            if let raw = s.stringValue, let st = AlertStatus(rawValue: raw) {
                status = st
            } else {
                problems.append(InputProblem(p("status"), "must be \"firing\" or \"resolved\", not \(s.jsonText)"))
                status = .firing
            }
        } else {
            status = endsAt.map { $0 <= now } == true ? .resolved : .firing
        }
        if status == .resolved && endsAt == nil { endsAt = now }
        if let e = endsAt, e < startsAt {
            problems.append(InputProblem(p("endsAt"), "is before startsAt (\(e.rfc3339) < \(startsAt.rfc3339))"))
        }
        let generatorURL = optionalString(v["generatorURL"], p("generatorURL"), &problems) ?? ""
        var fingerprint = optionalString(v["fingerprint"], p("fingerprint"), &problems)
        if let f = fingerprint {
            if f.isEmpty {
                fingerprint = nil
            } else if f.utf8.count != 16 || !f.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) {
                problems.append(InputProblem(p("fingerprint"), "must be 16 lowercase hex digits, not \"\(f)\""))
            }
        }
        let classification = v["classification"].flatMap { $0.isNull ? nil : decodeClassification($0, p("classification"), &problems) }
        guard problems.count == before else { return nil }
        return Alert(
            labels: labels, annotations: annotations, status: status, startsAt: startsAt, endsAt: endsAt,
            generatorURL: generatorURL, fingerprint: fingerprint, classification: classification)
    }

    static func decodeClassification(_ v: JSONValue, _ path: @autoclosure () -> String, _ problems: inout [InputProblem]) -> Classification? {
        guard case .object = v else {
            problems.append(InputProblem(path(), "must be an object, not \(v.typeName)"))
            return nil
        }
        let before = problems.count
        var severity = Classification.Severity.info
        if let raw = v["severity"]?.stringValue, let s = Classification.Severity(rawValue: raw) {
            severity = s
        } else {
            problems.append(InputProblem(path() + ".severity", "must be one of critical, warning, info, noise, not \(v["severity"]?.jsonText ?? "missing")"))
        }
        var confidence = 1.0
        if let c = v["confidence"] {
            if let d = c.doubleValue, d >= 0, d <= 1 {
                confidence = d
            } else {
                problems.append(InputProblem(path() + ".confidence", "must be a number from 0 to 1, not \(c.jsonText)"))
            }
        }
        let reasoning = optionalString(v["reasoning"], path() + ".reasoning", &problems)
        var recs: [String] = []
        if let r = v["recommendations"], !r.isNull {
            if let items = r.arrayValue, items.allSatisfy({ $0.stringValue != nil }) {
                recs = items.compactMap(\.stringValue)
            } else {
                problems.append(InputProblem(path() + ".recommendations", "must be an array of strings"))
            }
        }
        guard problems.count == before else { return nil }
        return Classification(severity: severity, confidence: confidence, reasoning: reasoning, recommendations: recs)
    }

    static func stringMap(_ v: JSONValue?, _ path: @autoclosure () -> String, _ problems: inout [InputProblem]) -> [String: String]? {
        guard let v, !v.isNull else { return nil }
        guard let members = v.objectValue else {
            problems.append(InputProblem(path(), "must be an object of string values, not \(v.typeName)"))
            return nil
        }
        var out: [String: String] = [:]
        out.reserveCapacity(members.count)
        for (k, value) in members {
            if k.isEmpty {
                problems.append(InputProblem(path(), "has an empty name"))
                continue
            }
            guard let s = value.stringValue else {
                problems.append(InputProblem("\(path()).\(k)", "must be a string, not \(value.typeName)"))
                continue
            }
            out[k] = s
        }
        return out
    }

    static func optionalString(_ v: JSONValue?, _ path: @autoclosure () -> String, _ problems: inout [InputProblem]) -> String? {
        guard let v, !v.isNull else { return nil }
        guard let s = v.stringValue else {
            problems.append(InputProblem(path(), "must be a string, not \(v.typeName)"))
            return nil
        }
        return s
    }

    static func time(_ v: JSONValue?, _ path: @autoclosure () -> String, _ problems: inout [InputProblem]) -> Timestamp? {
        guard let s = optionalString(v, path(), &problems), !s.isEmpty else { return nil }
        guard let t = Timestamp.parse(s) else {
            problems.append(InputProblem(path(), "\"\(s)\" is not an RFC 3339 time (example: 2024-05-01T12:00:00Z)"))
            return nil
        }
        return t
    }

    static func isLabelName(_ s: String) -> Bool {
        guard let first = s.utf8.first, first == 0x5F || (0x41...0x5A).contains(first) || (0x61...0x7A).contains(first) else { return false }
        return s.utf8.allSatisfy { $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }
}
