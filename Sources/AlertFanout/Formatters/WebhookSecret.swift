// WebhookSecret: Standard Webhooks signing secrets — read the way the reference verifiers read them — and their base64.

/// A Standard Webhooks symmetric secret, read the way the specification's reference libraries read it: an
/// optional `whsec_` prefix is stripped and the rest is *always* base64 (standard-webhooks
/// `libraries/python/standardwebhooks/webhooks.py` `Webhook.__init__`, `libraries/javascript/src/index.ts`,
/// `libraries/go/webhook.go` `NewWebhook`). A receiver using those verifiers with the same string therefore
/// checks our signatures with the same key bytes.
///
/// The specification (`spec/standard-webhooks.md`, "Symmetric") asks for "At least 24 bytes (192 bits, 512
/// maximum)"; the minimum is enforced here, the maximum (its unit is not stated) is not.
///
/// Only the standard alphabet is accepted (`A–Z a–z 0–9 + /`, `=` padding only at the end, padded or not):
/// Go and JavaScript reject other characters, and Python's decoder silently drops them, so a url-safe `-`/`_`
/// secret would give different keys in different receivers.
public enum WebhookSecret {
    /// The specification's minimum key length, in decoded bytes.
    public static let minimumBytes = 24

    /// Why a string is not a valid Standard Webhooks secret. Never holds the secret's value.
    public enum Problem: Error, Sendable, Hashable, CustomStringConvertible {
        /// Not standard base64 after the optional `whsec_` prefix.
        case notBase64
        /// Decodes to fewer than ``WebhookSecret/minimumBytes`` bytes; `bytes` is how many it decodes to.
        case tooShort(bytes: Int)

        /// Why the secret is refused, without its value.
        public var description: String {
            switch self {
            case .notBase64:
                return
                    "must be a Standard Webhooks secret: base64 (A–Z a–z 0–9 + /, '=' only at the end), optionally prefixed with whsec_; receivers using the official verifiers base64-decode it"
            case .tooShort(let n):
                return
                    "decodes to \(n) byte\(n == 1 ? "" : "s"); Standard Webhooks secrets must be at least \(WebhookSecret.minimumBytes) random bytes (for example whsec_ followed by the output of: head -c 32 /dev/urandom | base64)"
            }
        }
    }

    /// The HMAC key bytes of `secret`, or why it is not a valid Standard Webhooks secret.
    public static func key(_ secret: String) -> Result<[UInt8], Problem> {
        let text = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        guard let key = base64Decode(text) else { return .failure(.notBase64) }
        return key.count >= minimumBytes ? .success(key) : .failure(.tooShort(bytes: key.count))
    }
}

/// Standard base64: alphabet `A–Z a–z 0–9 + /`, optional `=` padding (at most two, only at the end, and then
/// the whole length is a multiple of 4). Nil for anything else, url-safe `-`/`_` and whitespace included.
func base64Decode(_ text: String) -> [UInt8]? {
    var body = Substring(text)
    var pad = 0
    while body.last == "=" && pad < 2 {
        body.removeLast()
        pad += 1
    }
    if pad > 0 && text.utf8.count % 4 != 0 { return nil }
    var values: [UInt8] = []
    values.reserveCapacity(body.utf8.count)
    for c in body.utf8 {
        switch c {
        case 0x41...0x5A: values.append(c - 0x41)
        case 0x61...0x7A: values.append(c - 0x61 + 26)
        case 0x30...0x39: values.append(c - 0x30 + 52)
        case 0x2B: values.append(62)
        case 0x2F: values.append(63)
        default: return nil  // '=' before the end, '-', '_', whitespace, anything else
        }
    }
    guard values.count % 4 != 1 else { return nil }
    var out: [UInt8] = []
    var i = 0
    while i < values.count {
        let chunk = values[i..<min(i + 4, values.count)]
        var n: UInt32 = 0
        for (k, v) in chunk.enumerated() { n |= UInt32(v) << (18 - 6 * k) }
        out.append(UInt8(n >> 16 & 0xFF))
        if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xFF)) }
        if chunk.count > 3 { out.append(UInt8(n & 0xFF)) }
        i += 4
    }
    return out
}
