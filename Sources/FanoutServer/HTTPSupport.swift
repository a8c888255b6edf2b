// HTTPSupport: JSON responses, bounded body reading and constant-time comparison for the service's handlers.
import AlertFanout
import Hummingbird
import NIOCore

/// A response with a JSON body.
func jsonResponse(_ status: HTTPResponse.Status, _ body: JSONValue, headers extra: HTTPFields = [:]) -> Response {
    jsonResponse(status, headers: extra) { $0.value(body) }
}

/// `status` with the compact JSON text `write` writes (one value) and a line break.
func jsonResponse(_ status: HTTPResponse.Status, headers extra: HTTPFields = [:], write: (inout JSONWriter) -> Void) -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    headers.append(contentsOf: extra)
    var w = JSONWriter(capacity: 1024)
    write(&w)
    w.bytes.append(0x0A)
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: w.bytes)))
}

/// `{"error": message}` with `status`.
func errorResponse(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
    jsonResponse(status, .object([("error", .string(message))]), headers: headers)
}

/// Why a request body could not be read.
enum BodyProblem: Error {
    case tooLarge(limit: Int)
}

/// The whole request body, refused past `limit` bytes (a declared Content-Length is checked before reading).
func readBody(_ request: Request, limit: Int) async throws -> [UInt8] {
    if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit { throw BodyProblem.tooLarge(limit: limit) }
    do {
        let buffer = try await request.body.collect(upTo: limit)
        return Array(buffer.readableBytesView)
    } catch is NIOTooManyBytesError {
        throw BodyProblem.tooLarge(limit: limit)
    }
}

/// Equal bytes, in time that depends only on the lengths (credentials are compared with this).
func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    var ai = a.makeIterator()
    for y in b {
        let x = ai.next() ?? 0
        diff |= x ^ y
    }
    return diff == 0
}

/// Standard base64 of `bytes` (for the expected Basic credentials).
func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let b0 = bytes[i]
        let b1 = i + 1 < bytes.count ? bytes[i + 1] : 0
        let b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
        out.append(table[Int(b0 >> 2)])
        out.append(table[Int((b0 & 3) << 4 | b1 >> 4)])
        out.append(i + 1 < bytes.count ? table[Int((b1 & 15) << 2 | b2 >> 6)] : 0x3D)
        out.append(i + 2 < bytes.count ? table[Int(b2 & 63)] : 0x3D)
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}
