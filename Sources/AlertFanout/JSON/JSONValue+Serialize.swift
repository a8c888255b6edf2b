// JSONValue+Serialize: compact, deterministic JSON text (RFC 8259; UTF-8 kept as is, `/` not escaped).

extension JSONValue {
    /// Compact JSON bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    /// Compact JSON text.
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    /// The indented text of an array of `items` — `JSONValue.array(items).prettyText()` plus a line break —
    /// written item by item through `write`, one reused buffer: a long array never exists as one tree nor as
    /// one string (`fanout publish --json` of thousands of alerts).
    public static func writePrettyLines<S: Sequence>(_ items: S, to write: (UnsafeBufferPointer<UInt8>) -> Void) where S.Element == JSONValue {
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        var first = true
        for item in items {
            out.append(first ? 0x5B : 0x2C)
            first = false
            newline(into: &out, 1)
            item.writePretty(into: &out, indent: 1)
            out.withUnsafeBufferPointer(write)
            out.removeAll(keepingCapacity: true)
        }
        out.append(contentsOf: first ? "[]\n".utf8 : "\n]\n".utf8)
        out.withUnsafeBufferPointer(write)
    }

    /// Indented JSON text (two spaces), for people.
    public func prettyText() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        writePretty(into: &out, indent: 0)
        return String(decoding: out, as: UTF8.self)
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: n.utf8)
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let a):
            out.append(0x5B)
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(0x2C) }
                v.write(into: &out)
            }
            out.append(0x5D)
        case .object(let o):
            out.append(0x7B)
            for (i, (k, v)) in o.enumerated() {
                if i > 0 { out.append(0x2C) }
                JSONValue.writeString(k, into: &out)
                out.append(0x3A)
                v.write(into: &out)
            }
            out.append(0x7D)
        }
    }

    private func writePretty(into out: inout [UInt8], indent: Int) {
        switch self {
        case .array(let a) where !a.isEmpty:
            out.append(0x5B)
            var first = true
            for v in a {
                if !first { out.append(0x2C) }
                first = false
                JSONValue.newline(into: &out, indent + 1)
                v.writePretty(into: &out, indent: indent + 1)
            }
            JSONValue.newline(into: &out, indent)
            out.append(0x5D)
        case .object(let o) where !o.isEmpty:
            out.append(0x7B)
            var first = true
            for member in o {
                if !first { out.append(0x2C) }
                first = false
                JSONValue.newline(into: &out, indent + 1)
                JSONValue.writeString(member.0, into: &out)
                out.append(0x3A)
                out.append(0x20)
                member.1.writePretty(into: &out, indent: indent + 1)
            }
            JSONValue.newline(into: &out, indent)
            out.append(0x7D)
        default:
            write(into: &out)
        }
    }

    /// A line break and `level` two-space indents, copied from one buffer of spaces.
    private static func newline(into out: inout [UInt8], _ level: Int) {
        out.append(0x0A)
        var n = level * 2
        while n > 0 {
            let k = min(n, JSONValue.spaces.count)
            JSONValue.spaces.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<k])) }
            n -= k
        }
    }

    private static let spaces = [UInt8](repeating: 0x20, count: 64)

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        var s = s
        s.withUTF8 { bytes in
            // Runs that need no escape (almost every string) are copied whole.
            var start = 0
            for (i, c) in bytes.enumerated() where c < 0x20 || c == 0x22 || c == 0x5C || c == 0x7F {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                start = i + 1
                out.append(0x5C)
                switch c {
                case 0x22, 0x5C: out.append(c)
                case 0x0A: out.append(0x6E)
                case 0x0D: out.append(0x72)
                case 0x09: out.append(0x74)
                case 0x08: out.append(0x62)
                case 0x0C: out.append(0x66)
                default:
                    let hex = "0123456789abcdef".utf8
                    out.append(0x75)
                    out.append(0x30)
                    out.append(0x30)
                    out.append(hex[hex.index(hex.startIndex, offsetBy: Int(c >> 4))])
                    out.append(hex[hex.index(hex.startIndex, offsetBy: Int(c & 0xF))])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
        out.append(0x22)
    }
}
