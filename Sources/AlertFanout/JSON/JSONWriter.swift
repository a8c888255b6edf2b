// JSONWriter: JSON text written as it is described — no tree — compact or indented.

/// Writes JSON text from a sequence of calls, without building a ``JSONValue`` first: open and close
/// containers in order, give an object's members as ``key(_:)`` followed by one value, an array's elements as
/// values. The text is byte for byte what ``JSONValue/serialized()`` (compact) or ``JSONValue/prettyText()``
/// (`pretty`: two spaces per level, `"key": value`, empty containers as `{}` and `[]`) make of the same tree.
///
/// Long output need not stay in memory: ``bytes`` may be taken and emptied between values (``drain(_:)``); what
/// comes next does not depend on it. Calls out of order (a value where a key is due, closing what is not open)
/// are programming errors: they make invalid JSON, which the tests of each writer catch.
public struct JSONWriter: Sendable {
    /// The text written so far (since the last ``drain(_:)``).
    public var bytes: [UInt8]
    /// Indented output (`prettyText()`'s layout) rather than compact.
    public let pretty: Bool
    /// Open containers.
    private var depth = 0
    /// The innermost open container has no member or element yet.
    private var empty = true
    /// A key was written and its value is due.
    private var afterKey = false

    /// A writer with room for `capacity` bytes.
    public init(pretty: Bool = false, capacity: Int = 256) {
        self.pretty = pretty
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Hands the text written so far to `body` and empties ``bytes`` (keeping its capacity).
    public mutating func drain(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        bytes.withUnsafeBufferPointer(body)
        bytes.removeAll(keepingCapacity: true)
    }

    // MARK: - Containers

    /// Opens an object (as a value: after a key, as an array element, or at the top).
    public mutating func beginObject() { open(0x7B) }

    /// Closes the innermost object.
    public mutating func endObject() { close(0x7D) }

    /// Opens an array (as a value).
    public mutating func beginArray() { open(0x5B) }

    /// Closes the innermost array.
    public mutating func endArray() { close(0x5D) }

    /// An object member's name; its value comes next.
    public mutating func key(_ name: String) {
        separate()
        JSONWriter.appendString(name, to: &bytes)
        let colon = JSONWriter.closeQuoteColonSpace
        bytes.append(contentsOf: UnsafeBufferPointer(start: colon.utf8Start + 1, count: pretty ? 2 : 1))
        afterKey = true
    }

    /// An object member's name given as a literal that needs no escaping (letters, digits, `_`, `-`…: checked
    /// in debug builds), copied as is.
    public mutating func key(literal name: StaticString) {
        assert(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount).allSatisfy { $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C && $0 != 0x7F })
        separate()
        bytes.append(0x22)
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        let close = JSONWriter.closeQuoteColonSpace  // `": ` (pretty) or `":`, in one copy
        bytes.append(contentsOf: UnsafeBufferPointer(start: close.utf8Start, count: pretty ? 3 : 2))
        afterKey = true
    }

    // MARK: - Members named by literals

    /// `"name": "value"`.
    public mutating func member(_ name: StaticString, _ value: String) {
        key(literal: name)
        string(value)
    }

    /// `"name": value` for an integer.
    public mutating func member(_ name: StaticString, int value: Int) {
        key(literal: name)
        int(value)
    }

    /// `"name": true` or `false`.
    public mutating func member(_ name: StaticString, bool value: Bool) {
        key(literal: name)
        bool(value)
    }

    /// `"name": milliseconds` from seconds (``milliseconds(_:)``).
    public mutating func member(_ name: StaticString, milliseconds seconds: Double) {
        key(literal: name)
        milliseconds(seconds)
    }

    // MARK: - Values

    /// A string value, escaped as RFC 8259 requires (UTF-8 kept as is, `/` not escaped).
    public mutating func string(_ s: String) {
        beforeValue()
        JSONWriter.appendString(s, to: &bytes)
    }

    /// An integer value.
    public mutating func int(_ v: Int) {
        beforeValue()
        JSONWriter.appendDecimal(v, to: &bytes)
    }

    /// `true` or `false`.
    public mutating func bool(_ b: Bool) {
        beforeValue()
        bytes.append(contentsOf: (b ? "true" : "false").utf8)
    }

    /// `null`.
    public mutating func null() {
        beforeValue()
        bytes.append(contentsOf: "null".utf8)
    }

    /// A number given as its JSON text (``JSONValue/number(_:)``), written as is.
    public mutating func number(text: String) {
        beforeValue()
        bytes.append(contentsOf: text.utf8)
    }

    /// Milliseconds from seconds: the text of ``JSONValue/milliseconds(_:)`` (up to three decimals, trailing
    /// zeros dropped), written without a `String` in between.
    public mutating func milliseconds(_ seconds: Double) {
        let micros = (seconds * 1000 * 1000).rounded()
        guard micros.isFinite, abs(micros) < 1e15 else {
            value(.double(micros / 1000))
            return
        }
        beforeValue()
        let m = Int64(micros)
        let whole = m / 1000
        var frac = Int((m % 1000).magnitude)
        if m < 0 && whole == 0 { bytes.append(0x2D) }  // -0.xyz
        JSONWriter.appendDecimal(Int(whole), to: &bytes)
        guard frac != 0 else { return }
        var digits = 3
        while frac % 10 == 0 {
            frac /= 10
            digits -= 1
        }
        bytes.append(0x2E)
        var scale = 1
        for _ in 1..<digits { scale *= 10 }
        while scale > 0 {  // leading zeros of the fraction included (`0.007`)
            bytes.append(0x30 + UInt8(frac / scale % 10))
            scale /= 10
        }
    }

    /// An object of string members, in the given order (``JSONValue/strings(_:)``'s text).
    public mutating func strings(_ pairs: [(String, String)]) {
        beginObject()
        for i in pairs.indices {
            key(pairs[i].0)
            string(pairs[i].1)
        }
        endObject()
    }

    /// A whole tree as one value.
    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: null()
        case .bool(let b): bool(b)
        case .number(let n): number(text: n)
        case .string(let s): string(s)
        case .array(let a):
            beginArray()
            for e in a { value(e) }
            endArray()
        case .object(let o):
            beginObject()
            for member in o {
                key(member.0)
                value(member.1)
            }
            endObject()
        }
    }

    // MARK: - Internals

    private mutating func beforeValue() {
        if afterKey {
            afterKey = false
            return
        }
        guard depth > 0 else { return }  // the top-level value
        separate()
    }

    private mutating func open(_ bracket: UInt8) {
        beforeValue()
        bytes.append(bracket)
        depth += 1
        empty = true
    }

    private mutating func close(_ bracket: UInt8) {
        precondition(depth > 0 && !afterKey, "JSONWriter: closing with nothing open, or right after a key")
        depth -= 1
        if !empty && pretty { lineBreak(comma: false) }
        bytes.append(bracket)
        empty = false
    }

    /// Before a member or element: a comma unless it is the container's first, then (pretty) a line break and
    /// the current depth's indent.
    private mutating func separate() {
        let comma = !empty
        empty = false
        if pretty {
            lineBreak(comma: comma)
        } else if comma {
            bytes.append(0x2C)
        }
    }

    /// A line break and the current depth's indent, after a comma when `comma`: one copy from a literal for the
    /// usual depths.
    private mutating func lineBreak(comma: Bool) {
        let text = JSONWriter.commaLineBreakAndIndent
        let c = comma ? 1 : 0
        let wanted = c + 1 + depth * 2
        let k = min(wanted, text.utf8CodeUnitCount - 1 + c)
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start + 1 - c, count: k))
        var more = wanted - k
        while more > 0 {  // deeper than the literal's indent: further spaces from it
            let n = min(more, text.utf8CodeUnitCount - 2)
            bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start + 2, count: n))
            more -= n
        }
    }

    private static let commaLineBreakAndIndent: StaticString = ",\n                                                                "
    private static let closeQuoteColonSpace: StaticString = "\": "

    /// `v` in decimal.
    static func appendDecimal(_ v: Int, to out: inout [UInt8]) {
        if v < 0 { out.append(0x2D) }
        var m = v.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // up to 20 digits, most significant last
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = 0x30 + UInt8(m % 10)
                m /= 10
                n += 1
            } while m > 0
            while n > 0 {
                n -= 1
                out.append(d[n])
            }
        }
    }

    /// `s` as a JSON string: quotes, `\"` `\\` `\n` `\r` `\t` `\b` `\f`, other controls and DEL as `\u00XX`.
    static func appendString(_ s: String, to out: inout [UInt8]) {
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
