// Alert: an alert compatible with Alertmanager's (labels, annotations, status, times, fingerprint) plus an optional classification.

/// Whether an alert is firing or resolved (Alertmanager's alert `status`).
public enum AlertStatus: String, Sendable, Hashable, CaseIterable {
    /// The alert's condition holds.
    case firing
    /// The alert's condition has ended (`endsAt` says when).
    case resolved
}

/// How an upstream classifier rated the alert.
public struct Classification: Sendable, Hashable {
    /// The severity a classifier gives an alert.
    public enum Severity: String, Sendable, Hashable, CaseIterable {
        /// A severity, from most to least urgent: `critical`, `warning`, `info`, or `noise` for an alert judged
        /// not worth anyone's attention (Rootly marks it as noise; PagerDuty gets `info`).
        case critical, warning, info, noise
    }

    /// The rated severity.
    public var severity: Severity
    /// 0…1.
    public var confidence: Double
    /// The classifier's explanation, when it gave one.
    public var reasoning: String?
    /// Suggested actions, in order (possibly none).
    public var recommendations: [String]

    /// A classification. `confidence` is not checked here (decoded input must be within 0…1).
    public init(severity: Severity, confidence: Double, reasoning: String? = nil, recommendations: [String] = []) {
        self.severity = severity
        self.confidence = confidence
        self.reasoning = reasoning
        self.recommendations = recommendations
    }
}

/// One alert. Labels identify it (the fingerprint is computed from them); annotations describe it.
public struct Alert: Sendable, Hashable {
    /// The identifying labels (name → value); `alertname` names the alert.
    public var labels: [String: String]
    /// The descriptive annotations (`summary`, `description`, `runbook_url`, …).
    public var annotations: [String: String]
    /// Firing or resolved.
    public var status: AlertStatus
    /// When the alert started firing.
    public var startsAt: Timestamp
    /// nil while the alert has no end (Alertmanager sends Go's zero time for that).
    public var endsAt: Timestamp?
    /// A link back to what raised the alert (a Prometheus graph, say); empty when unknown.
    public var generatorURL: String
    /// 16 lowercase hex digits; computed from the labels (`Alert.fingerprint(of:)`) when not given.
    public var fingerprint: String
    /// The upstream classifier's rating, when there is one.
    public var classification: Classification?

    /// An alert; `fingerprint` defaults to the one computed from `labels`. Nothing is validated here
    /// (``AlertInput`` validates decoded input).
    public init(
        labels: [String: String], annotations: [String: String] = [:], status: AlertStatus = .firing,
        startsAt: Timestamp, endsAt: Timestamp? = nil, generatorURL: String = "", fingerprint: String? = nil,
        classification: Classification? = nil
    ) {
        self.labels = labels
        self.annotations = annotations
        self.status = status
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.generatorURL = generatorURL
        self.fingerprint = fingerprint ?? Alert.fingerprint(of: labels)
        self.classification = classification
    }

    /// `labels["alertname"]`, or "alert" when absent.
    public var name: String { labels["alertname"] ?? "alert" }

    /// Alertmanager's fingerprint: FNV-1a 64 over the label names in byte order, each name and value followed by
    /// the byte 0xFF, printed as 16 lowercase hex digits (prometheus/common `model.LabelSet.Fingerprint`).
    ///
    /// | labels | fingerprint |
    /// |---|---|
    /// | `{}` | `cbf29ce484222325` |
    /// | `{first-label="first-label-value"}` | `476b44f5db3e21f9` |
    /// | `{alertname="test"}` | `1f56cb8f931d1bd4` |
    public static func fingerprint(of labels: [String: String]) -> String {
        var h: UInt64 = 14_695_981_039_346_656_037
        @inline(__always) func feed(_ b: UInt8) {
            h ^= UInt64(b)
            h = h &* 1_099_511_628_211
        }
        for (name, value) in sorted(labels) {
            for b in name.utf8 { feed(b) }
            feed(0xFF)
            for b in value.utf8 { feed(b) }
            feed(0xFF)
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Labels sorted by name (byte order), as Alertmanager serialises them.
    public var sortedLabels: [(String, String)] { Alert.sorted(labels) }
    /// Annotations sorted by name (byte order).
    public var sortedAnnotations: [(String, String)] { Alert.sorted(annotations) }

    static func sorted(_ d: [String: String]) -> [(String, String)] {
        // Byte order, compared on the UTF-8 views in place (no array per comparison).
        var pairs = d.map { ($0.key, $0.value) }
        pairs.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        return pairs
    }
}
