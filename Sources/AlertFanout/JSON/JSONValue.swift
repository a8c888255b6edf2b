// JSONValue: an ordered JSON tree — objects keep their key order so vendor payloads are byte-exact.

/// A JSON value. Objects are ordered lists of members, so a payload serialises in the order it was built
/// (the order the vendor documents), and parsing keeps the input's order.
public enum JSONValue: Sendable, Hashable {
    /// JSON `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number kept as its JSON text (`42`, `-1.5e3`), so integers of any size round-trip exactly.
    case number(String)
    /// A string, unescaped.
    case string(String)
    /// An array, in order.
    case array([JSONValue])
    /// An object: its members (name, value) in order. A repeated name is kept; lookups find the last one.
    case object([(String, JSONValue)])

    /// Structural equality: arrays and object members compared in order; numbers equal when their text is, or
    /// when both read as the same `Double` (so `1` equals `1.0`).
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y || Double(x) == Double(y)
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Hashes consistently with `==`: a number by its `Double` value, an object by its members in order.
    public func hash(into h: inout Hasher) {
        switch self {
        case .null: h.combine(0)
        case .bool(let b): h.combine(b)
        case .number(let n): h.combine(Double(n) ?? 0)
        case .string(let s): h.combine(s)
        case .array(let a): h.combine(a)
        case .object(let o):
            h.combine(o.count)
            for (k, v) in o {
                h.combine(k)
                h.combine(v)
            }
        }
    }

    /// A number from any integer, written exactly.
    public static func int<I: BinaryInteger>(_ v: I) -> JSONValue { .number(String(v)) }

    /// A number from a `Double`: a whole value below 1e15 in magnitude is written without a fraction (`3`, not
    /// `3.0`), others as Swift prints them; NaN and infinities, which JSON cannot hold, become `null`.
    public static func double(_ v: Double) -> JSONValue {
        if v.isNaN || v.isInfinite { return .null }
        if v == v.rounded(), abs(v) < 1e15 { return .number(String(Int64(v))) }
        return .number(String(v))
    }

    /// Milliseconds from seconds, rounded to the microsecond and written with up to three decimals, trailing
    /// zeros dropped (`151.826`, `0.5`, `2`): the text `.double` writes for such a value, made with integer
    /// arithmetic (reports write two of these per target; printing a `Double` costs more than the rest of it);
    /// ``JSONWriter/milliseconds(_:)`` writes the same text.
    public static func milliseconds(_ seconds: Double) -> JSONValue {
        let micros = (seconds * 1000 * 1000).rounded()
        guard micros.isFinite, abs(micros) < 1e15 else { return .double(micros / 1000) }
        var w = JSONWriter(capacity: 24)
        w.milliseconds(seconds)
        return .number(String(decoding: w.bytes, as: UTF8.self))
    }

    /// An object from string pairs, in the given order.
    public static func strings(_ pairs: [(String, String)]) -> JSONValue {
        .object(pairs.map { ($0.0, .string($0.1)) })
    }

    /// The value of the object member named `key` (the last one when the name repeats); nil when there is none
    /// or this is not an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.last(where: { $0.0 == key })?.1 }
        return nil
    }

    /// The string, when this is a string.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    /// A string, or a number's text (config values such as `name: 123` or an all-digit key written unquoted).
    public var textValue: String? {
        switch self {
        case .string(let s): return s
        case .number(let n): return n
        default: return nil
        }
    }
    /// The Boolean, when this is `true` or `false`.
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    /// The members (name, value) in order, when this is an object.
    public var objectValue: [(String, JSONValue)]? { if case .object(let o) = self { return o } else { return nil } }
    /// The number as a `Double`, when this is a number.
    public var doubleValue: Double? { if case .number(let n) = self { return Double(n) } else { return nil } }
    /// The number as an `Int` when it is a whole number that fits: integer text, or a whole value below 9e15 in
    /// magnitude written with a fraction or exponent (`2.0`, `1e3`); nil otherwise.
    public var intValue: Int? {
        if case .number(let n) = self { return Int(n) ?? Double(n).flatMap { $0 == $0.rounded() && abs($0) < 9e15 ? Int($0) : nil } }
        return nil
    }
    /// True when this is `null`.
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
