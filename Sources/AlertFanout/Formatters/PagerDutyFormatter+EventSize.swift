// PagerDutyFormatter+EventSize: keeping a trigger event within the Events API's 512 KB by cutting the largest details.

extension PagerDutyFormatter {
    /// PagerDuty: "Events API payloads are limited to 512 KB" (PagerDuty developer-docs, Events API v2 overview,
    /// "Size Limits"). Read as 512 000 bytes, the smaller reading, as Alertmanager does (`notify/pagerduty/
    /// pagerduty.go` `maxEventSize`); measured on the whole serialized body.
    public static let maxEventBytes = 512_000

    /// Room kept for the `truncated` note when values are cut (the note lists at most `maxNamesInNote` names
    /// of at most 64 characters each).
    static let noteReserveBytes = 8192
    static let maxNamesInNote = 10

    /// The `custom_details` strings that may be cut: label and annotation values, the classification's
    /// reasoning and recommendations. Names and the order of members never change.
    struct CutDetails {
        var labels: [(String, String)]
        var annotations: [(String, String)]
        var classification: Classification?

        init(_ alert: Alert) {
            labels = alert.sortedLabels
            annotations = alert.sortedAnnotations
            classification = alert.classification
        }

        /// JSON sizes of every value that may be cut.
        var sizes: [Int] {
            var s = labels.map { jsonSize($0.1) } + annotations.map { jsonSize($0.1) }
            if let c = classification { s += [c.reasoning.map(jsonSize) ?? 0] + c.recommendations.map(jsonSize) }
            return s
        }

        /// Cuts every value whose JSON size exceeds `cap` bytes to at most `cap`; returns the cut values' names.
        mutating func cut(to cap: Int) -> [String] {
            var names: [String] = []
            func shrink(_ v: inout String, _ name: String) {
                guard jsonSize(v) > cap else { return }
                v = PagerDutyFormatter.truncated(v, toJSONBytes: cap)
                names.append(name)
            }
            for i in labels.indices { shrink(&labels[i].1, "labels." + labels[i].0) }
            for i in annotations.indices { shrink(&annotations[i].1, "annotations." + annotations[i].0) }
            if var c = classification {
                if var r = c.reasoning {
                    shrink(&r, "classification.reasoning")
                    c.reasoning = r
                }
                for i in c.recommendations.indices { shrink(&c.recommendations[i], "classification.recommendations[\(i)]") }
                classification = c
            }
            return names
        }
    }

    /// What the `truncated` member says: the cap, and which values were cut (at most `maxNamesInNote` named).
    static func truncationNote(cap: Int, cut: [String]) -> String {
        var names = cut.prefix(maxNamesInNote).map { truncate($0, maxScalars: 64) }
        if cut.count > maxNamesInNote { names.append("and \(cut.count - maxNamesInNote) more") }
        return "values longer than \(cap) bytes were cut to fit PagerDuty's 512 KB event limit: " + names.joined(separator: ", ")
    }

    /// The largest C with Σ max(0, sᵢ − C) ≥ `excess`: cutting every value above C down to C removes at least
    /// `excess` bytes and leaves the smaller values alone ("water-filling"). 0 when even that is not enough.
    ///
    /// | sizes | excess | C |
    /// |---|---|---|
    /// | 600 000, 200 000, 100 | 300 000 | 300 000 |
    /// | 600 000, 200 000, 100 | 500 000 | 150 000 |
    /// | 10, 10 | 30 | 0 |
    static func waterLevel(sizes: [Int], excess: Int) -> Int {
        guard excess > 0 else { return sizes.max() ?? 0 }
        let s = sizes.sorted(by: >)
        var sum = 0
        for k in s.indices {
            sum += s[k]
            let next = k + 1 < s.count ? s[k + 1] : 0
            if sum - (k + 1) * next >= excess { return max(0, (sum - excess) / (k + 1)) }
        }
        return 0
    }

    /// Whole characters of `s` while its JSON size stays within `maxJSONBytes` with a closing "…" (3 bytes);
    /// "" when not even that fits.
    static func truncated(_ s: String, toJSONBytes maxJSONBytes: Int) -> String {
        if jsonSize(s) <= maxJSONBytes { return s }
        let budget = maxJSONBytes - 2 - 3
        guard budget >= 0 else { return "" }
        var out = ""
        var used = 0
        for ch in s {
            var n = 0
            for b in ch.utf8 { n += jsonByteSize(b) }
            if used + n > budget { break }
            out.append(ch)
            used += n
        }
        return out + "…"
    }
}

/// Bytes `s` takes as a JSON string, quotes included, as `JSONWriter` writes it.
func jsonSize(_ s: String) -> Int {
    var n = 2
    for b in s.utf8 { n += jsonByteSize(b) }
    return n
}

/// Bytes one UTF-8 byte takes in `JSONWriter`'s string output (`\"`, `\\`, `\n`… 2; other controls and
/// DEL `\u00XX` 6; everything else as is).
@inline(__always)
func jsonByteSize(_ b: UInt8) -> Int {
    switch b {
    case 0x22, 0x5C, 0x0A, 0x0D, 0x09, 0x08, 0x0C: return 2
    case 0x00..<0x20, 0x7F: return 6
    default: return 1
    }
}
