// ByteEncoding: bytes as text — base64 (signatures) and lowercase hex (ids) — without per-byte allocations.

private let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

/// Standard base64 with padding.
func base64Encode(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 3 <= bytes.count {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out.append(base64Alphabet[Int(n >> 18 & 63)])
        out.append(base64Alphabet[Int(n >> 12 & 63)])
        out.append(base64Alphabet[Int(n >> 6 & 63)])
        out.append(base64Alphabet[Int(n & 63)])
        i += 3
    }
    let rest = bytes.count - i
    if rest == 1 {
        let n = UInt32(bytes[i]) << 16
        out += [base64Alphabet[Int(n >> 18 & 63)], base64Alphabet[Int(n >> 12 & 63)], 0x3D, 0x3D]
    } else if rest == 2 {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out += [base64Alphabet[Int(n >> 18 & 63)], base64Alphabet[Int(n >> 12 & 63)], base64Alphabet[Int(n >> 6 & 63)], 0x3D]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Lowercase hex, two digits per byte, after `prefix` (one allocation: message ids are made per alert).
func lowercaseHex(_ bytes: some Sequence<UInt8>, prefix: StaticString = "") -> String {
    let digits: StaticString = "0123456789abcdef"
    var out: [UInt8] = []
    out.reserveCapacity(prefix.utf8CodeUnitCount + 2 * bytes.underestimatedCount)
    out.append(contentsOf: UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
    for b in bytes {
        out.append(digits.utf8Start[Int(b >> 4)])
        out.append(digits.utf8Start[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
