// AlertmanagerFormatter: Alertmanager's webhook envelope (version "4"), so existing receivers work unchanged.
import CurlReactor

#if canImport(Glibc)
    import Glibc
#endif

/// The payload Alertmanager's webhook notifier sends: its `Message` (prometheus/alertmanager
/// `notify/webhook/webhook.go`) over `template/template.go` `Data()`, members in Go's marshalling order:
/// `receiver`, `status`, `alerts`, `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`,
/// `version` ("4"), `groupKey`, `truncatedAlerts`. Each alert carries `status`, `labels`, `annotations`,
/// `startsAt`, `endsAt` (Go's zero time `0001-01-01T00:00:00Z` while firing), `generatorURL` and `fingerprint`.
/// The same JSON structure, not the same bytes: Go's encoder escapes `&<>` as `\u0026\u003c\u003e` and ends
/// with a newline, Alertmanager sends the receiver through `regexp.QuoteMeta`, and its label-set strings
/// (`strconv.Quote`) also escape non-printable Unicode, which ours keep as is.
///
/// - A received group (`request(forBatch:target:)`) is forwarded whole, as one envelope: its alerts,
///   `groupKey`, `groupLabels` and `truncatedAlerts`; `status` is firing when any alert fires
///   (`types.Alerts.Status()`), and `commonLabels`/`commonAnnotations` are the pairs every alert shares,
///   computed as `Data()` does.
/// - A single alert (`request(for:target:context:)`) is its own group, as Alertmanager sends it with
///   `group_by: ['...']` (`dispatch/dispatch.go` `getGroupLabels`): `groupLabels` = `commonLabels` = its labels,
///   `groupKey` = `{}:` + its label set (`aggrGroup.GroupKey()`, root route key `{}`). No label is invented
///   (an alert without `alertname` has none in its group either), and it never carries the key of a group it
///   was received in, so a receiver keyed on `groupKey` never sees a group's alerts come and go.
/// - `externalURL` is never empty (Alertmanager's `cmd/alertmanager/main.go` falls back to
///   `http://<hostname>:<port>`): the received one, else the target's `external_url`, else `http://<hostname>`.
///
/// Responses: 2xx is success. Alertmanager's webhook notifier retries only 5xx and transport errors
/// (`notify/util.go` `Retrier.Check`: "5xx responses are considered to be always retried"; webhook.go adds no
/// `RetryCodes`). We also retry 408, 425 and 429: a deliberate divergence, harmless for receivers that
/// throttle. Other statuses are permanent.
public struct AlertmanagerFormatter: AlertFormatter {
    /// The host named in the fallback `externalURL`.
    public let hostname: String

    /// `hostname` defaults to this machine's (tests pass their own, so goldens do not depend on the machine).
    public init(hostname: String = AlertmanagerFormatter.localHostname) {
        self.hostname = hostname
    }

    /// This machine's host name (`gethostname`), or `localhost` when it has none.
    public static let localHostname: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }()

    /// One alert as its own group (see the type's documentation). The batch it arrived in, if any, only
    /// lends its `externalURL`.
    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        let labels = alert.sortedLabels
        return envelope(
            [alert], groupLabels: labels, groupKey: "{}:" + AlertmanagerFormatter.labelSetString(labels),
            truncatedAlerts: 0, externalURL: context.batch?.externalURL, target: target)
    }

    /// A received Alertmanager notification forwarded whole, as one envelope (see the type's documentation).
    /// Without a received `groupKey` (input that was not an Alertmanager payload) the key is built from the
    /// group labels, as Alertmanager builds it.
    public func request(forBatch batch: AlertBatch, target: Target) -> OutboundRequest {
        let groupLabels = Alert.sorted(batch.groupLabels)
        let groupKey = batch.groupKey.flatMap { $0.isEmpty ? nil : $0 } ?? "{}:" + AlertmanagerFormatter.labelSetString(groupLabels)
        return envelope(
            batch.alerts, groupLabels: groupLabels, groupKey: groupKey, truncatedAlerts: batch.truncatedAlerts,
            externalURL: batch.externalURL, target: target)
    }

    /// The received group as one envelope, as `request(forBatch:target:)` builds it; never nil, never throws.
    public func request(forGroup batch: AlertBatch, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest? {
        request(forBatch: batch, target: target)
    }

    func envelope(
        _ alerts: [Alert], groupLabels: [(String, String)], groupKey: String, truncatedAlerts: Int,
        externalURL received: String?, target: Target
    ) -> OutboundRequest {
        let externalURL = received.flatMap { $0.isEmpty ? nil : $0 } ?? target.externalURL ?? "http://\(hostname)"
        let body: JSONValue = .object([
            ("receiver", .string(target.receiver ?? target.name)),
            ("status", .string(alerts.contains { $0.status == .firing } ? "firing" : "resolved")),
            ("alerts", .array(alerts.map(AlertmanagerFormatter.alertJSON))),
            ("groupLabels", .strings(groupLabels)),
            ("commonLabels", .strings(AlertmanagerFormatter.common(alerts.map(\.labels)))),
            ("commonAnnotations", .strings(AlertmanagerFormatter.common(alerts.map(\.annotations)))),
            ("externalURL", .string(externalURL)),
            ("version", .string("4")),
            ("groupKey", .string(groupKey)),
            ("truncatedAlerts", .int(truncatedAlerts)),
        ])
        var headers = [HTTPHeader("Content-Type", "application/json")]
        headers += target.headers.map { HTTPHeader($0.0, $0.1) }
        return OutboundRequest(url: target.url, headers: headers, body: body.serialized(), idempotent: true, action: "notify")
    }

    /// 2xx is delivered; 408, 425, 429 and 5xx are retryable, the rest permanent; the message is a body excerpt.
    /// A 2xx is delivered, whatever its body says.
    public var readsSuccessDetails: Bool { false }

    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        if (200...299).contains(status) { return .delivered(detail: nil) }
        let text = bodyExcerpt(body)
        return defaultVerdict(status: status, message: text.isEmpty ? "HTTP \(status)" : text, retryAfter: retryAfter)
    }

    /// `template.go` `Data()`: start from the first alert's pairs and drop every pair another alert does not
    /// share (Go reads a missing name as ""). No alerts: nothing in common.
    static func common(_ sets: [[String: String]]) -> [(String, String)] {
        guard var common = sets.first else { return [] }
        for set in sets.dropFirst() where !common.isEmpty {
            common = common.filter { (set[$0.key] ?? "") == $0.value }
        }
        return Alert.sorted(common)
    }

    static func alertJSON(_ a: Alert) -> JSONValue {
        .object([
            ("status", .string(a.status.rawValue)),
            ("labels", a.labelsJSON),
            ("annotations", a.annotationsJSON),
            ("startsAt", .string(a.startsAt.rfc3339)),
            ("endsAt", .string((a.status == .firing ? nil : a.endsAt)?.rfc3339 ?? Timestamp.goZero.rfc3339)),
            ("generatorURL", .string(a.generatorURL)),
            ("fingerprint", .string(a.fingerprint)),
        ])
    }

    /// Prometheus' `LabelSet.String()`: `{a="x", b="y"}` with Go-quoted values.
    static func labelSetString(_ labels: [(String, String)]) -> String {
        "{" + labels.map { "\($0.0)=\(goQuote($0.1))" }.joined(separator: ", ") + "}"
    }

    static func goQuote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16)
                    out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
