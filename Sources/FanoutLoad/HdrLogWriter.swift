// HdrLogWriter: writes an HdrHistogram interval log (format 1.3, V2 compressed histograms) readable by HdrHistogram tools.
import CZlib
import Foundation

/// One line per interval: `start,length,max,HISTF…` where the last field is the base64 of the zlib-compressed
/// V2 encoding (big-endian header, then counts as ZigZag LEB128 with runs of zeros as negative run lengths).
/// Values are microseconds; `Interval_Max` is in seconds (value / 1e6), as HdrHistogram's own log writer does.
public final class HdrLogWriter: @unchecked Sendable {
    private let handle: FileHandle

    /// Creates (truncating) the log at `path` and writes its header; `startEpochSeconds` is the run's start.
    public init(path: String, startEpochSeconds: Double) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw LoadError("cannot create --hdr-log file '\(path)'")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let header = """
            #[Histogram log format version 1.3]
            #[StartTime: \(String(format: "%.3f", startEpochSeconds)) (seconds since epoch)]
            #[Values are microseconds; Interval_Max is in seconds]
            "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"

            """
        handle.write(Data(header.utf8))
    }

    /// Appends one interval: its start (seconds after the run's start), length (seconds) and histogram.
    public func write(startOffset: Double, length: Double, histogram h: MicrosHistogram) {
        let line =
            String(format: "%.3f,%.3f,%.6f,", startOffset, length, Double(h.max) / 1e6)
            + HdrLogWriter.compressedBase64(h) + "\n"
        handle.write(Data(line.utf8))
    }

    /// Closes the file.
    public func close() { try? handle.close() }

    /// V2 encoding of `h`, zlib-compressed and base64-encoded.
    public static func compressedBase64(_ h: MicrosHistogram) -> String {
        var payload: [UInt8] = []
        // Counts per counts-array index, in index order (allValues steps through every index).
        var counts: [UInt64] = []
        for v in h.allValues() {
            counts.append(v.count)
            if v.value >= h.max { break }
        }
        if h.totalCount == 0 { counts = [] }
        var i = 0
        while i < counts.count {
            let c = counts[i]
            if c == 0 {
                var zeros = 1
                while i + zeros < counts.count, counts[i + zeros] == 0 { zeros += 1 }
                if zeros > 1 { putZigZag(&payload, -Int64(zeros)) } else { putZigZag(&payload, 0) }
                i += zeros
            } else {
                putZigZag(&payload, Int64(c))
                i += 1
            }
        }
        var raw: [UInt8] = []
        putInt32(&raw, 0x1c84_9313)  // V2 encoding cookie (word size 8, ZigZag LEB128 counts)
        putInt32(&raw, Int32(payload.count))
        putInt32(&raw, 0)  // normalizing index offset
        putInt32(&raw, 3)  // significant digits
        putInt64(&raw, 1)  // lowest discernible value
        putInt64(&raw, 3_600_000_000)  // highest trackable value
        putInt64(&raw, Int64(bitPattern: (1.0 as Double).bitPattern))  // integer to double conversion ratio
        raw += payload
        var destLen = compressBound(uLong(raw.count))
        var dest = [UInt8](repeating: 0, count: Int(destLen))
        let rc = raw.withUnsafeBufferPointer { src in
            dest.withUnsafeMutableBufferPointer { dst in compress2(dst.baseAddress, &destLen, src.baseAddress, uLong(raw.count), 6) }
        }
        guard rc == Z_OK else { return "" }
        var out: [UInt8] = []
        putInt32(&out, 0x1c84_9314)  // V2 compressed encoding cookie
        putInt32(&out, Int32(destLen))
        out += dest.prefix(Int(destLen))
        return Data(out).base64EncodedString()
    }

    private static func putInt32(_ b: inout [UInt8], _ v: Int32) {
        let u = UInt32(bitPattern: v)
        b += [UInt8(u >> 24), UInt8(u >> 16 & 0xFF), UInt8(u >> 8 & 0xFF), UInt8(u & 0xFF)]
    }

    private static func putInt64(_ b: inout [UInt8], _ v: Int64) {
        let u = UInt64(bitPattern: v)
        for shift in stride(from: 56, through: 0, by: -8) { b.append(UInt8(u >> UInt64(shift) & 0xFF)) }
    }

    /// ZigZag then LEB128, at most 9 bytes (HdrHistogram's variant: the 9th byte carries 8 bits).
    private static func putZigZag(_ b: inout [UInt8], _ v: Int64) {
        var u = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        for _ in 0..<8 {
            if u >> 7 == 0 {
                b.append(UInt8(u))
                return
            }
            b.append(UInt8(u & 0x7F) | 0x80)
            u >>= 7
        }
        b.append(UInt8(u & 0xFF))
    }
}
