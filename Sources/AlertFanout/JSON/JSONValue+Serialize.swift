// JSONValue+Serialize: compact, deterministic JSON text (RFC 8259; UTF-8 kept as is, `/` not escaped).

extension JSONValue {
    /// Compact JSON bytes.
    public func serialized() -> [UInt8] {
        var w = JSONWriter()
        w.value(self)
        return w.bytes
    }

    /// Compact JSON text.
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    /// Indented JSON text (two spaces), for people.
    public func prettyText() -> String {
        var w = JSONWriter(pretty: true, capacity: 1024)
        w.value(self)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// The indented text of an array of `items` — `JSONValue.array(items).prettyText()` plus a line break —
    /// written through `write` in chunks of about 64 KiB: a long array never exists as one tree nor as one
    /// string (`fanout publish --json` of thousands of alerts). `writeItem` writes one item as a value.
    public static func writePrettyLines<S: Sequence>(
        _ items: S, to write: (UnsafeBufferPointer<UInt8>) -> Void, item writeItem: (inout JSONWriter, S.Element) -> Void
    ) {
        var w = JSONWriter(pretty: true, capacity: 1 << 16 + 4096)
        w.beginArray()
        for item in items {
            writeItem(&w, item)
            if w.bytes.count >= 1 << 16 { w.drain(write) }
        }
        w.endArray()
        w.bytes.append(0x0A)
        w.drain(write)
    }

    /// ``writePrettyLines(_:to:item:)`` for items that are trees.
    public static func writePrettyLines<S: Sequence>(_ items: S, to write: (UnsafeBufferPointer<UInt8>) -> Void) where S.Element == JSONValue {
        writePrettyLines(items, to: write) { w, v in w.value(v) }
    }

    /// The tree of what `write` writes (for callers that want a ``JSONValue`` of something that writes itself).
    public init(writtenBy write: (inout JSONWriter) -> Void) {
        var w = JSONWriter()
        write(&w)
        do { self = try JSONValue.parse(w.bytes) } catch { preconditionFailure("JSONWriter wrote invalid JSON (\(error)): \(w.bytes)") }
    }
}
