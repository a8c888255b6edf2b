// Alert: an alert compatible with Alertmanager's (labels, annotations, status, times, fingerprint) plus an optional classification.

public enum AlertStatus: String, Sendable, Hashable, CaseIterable {
    case firing
    case resolved
}

/// How an upstream classifier rated the alert.
public struct Classification: Sendable, Hashable {
    public enum Severity: String, Sendable, Hashable, CaseIterable {
        case critical, warning, info, noise
    }

    public var severity: Severity
    /// 0…1.
    public var confidence: Double
    public var reasoning: String?
    public var recommendations: [String]

    public init(severity: Severity, confidence: Double, reasoning: String? = nil, recommendations: [String] = []) {
        self.severity = severity
        self.confidence = confidence
        self.reasoning = reasoning
        self.recommendations = recommendations
    }
}

/// One alert. Labels identify it (the fingerprint is computed from them); annotations describe it.
public struct Alert: Sendable, Hashable {
    public var labels: [String: String]
    public var annotations: [String: String]
    public var status: AlertStatus
    public var startsAt: Timestamp
    /// nil while the alert has no end (Alertmanager sends Go's zero time for that).
    public var endsAt: Timestamp?
    public var generatorURL: String
    /// 16 lowercase hex digits; computed from the labels (`Alert.fingerprint(of:)`) when not given.
    public var fingerprint: String
    public var classification: Classification?

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
        for name in labels.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            for b in name.utf8 { feed(b) }
            feed(0xFF)
            for b in labels[name]!.utf8 { feed(b) }
            feed(0xFF)
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Labels sorted by name (byte order), as Alertmanager serialises them.
    public var sortedLabels: [(String, String)] { Alert.sorted(labels) }
    public var sortedAnnotations: [(String, String)] { Alert.sorted(annotations) }

    static func sorted(_ d: [String: String]) -> [(String, String)] {
        d.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }.map { ($0.key, $0.value) }
    }
}
