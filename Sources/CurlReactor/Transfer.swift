// Transfer: one submitted request's life on the reactor queue — queued, admitted, finished — and its response buffers.
import CCurl
import DequeModule
import Dispatch
import Synchronization

/// One request from submission to completion. Created on the submitting thread, then touched only on the
/// reactor queue. States: `created` → `queued` → `admitted` → `finished`, or `created`/`queued` → `finished`
/// (rejected, cancelled, expired, shut down). `finished` is final: the completion has been delivered exactly once.
final class Transfer: @unchecked Sendable {
    enum State { case created, queued, admitted, finished }

    let request: HTTPRequest
    let completion: @Sendable (Result<HTTPResponse, TransferError>) -> Void
    let callbackQueue: DispatchQueue?
    let submittedAt: UInt64

    var state: State = .created
    /// Set by `RequestHandle.cancel()` from any thread. A transfer cancelled before the reactor takes it in
    /// completes with `.cancelled` when it arrives and never reaches curl.
    let cancelRequested = Atomic<Bool>(false)
    var admittedAt: UInt64 = 0
    /// Absolute overall deadline on the uptime clock, `.max` when none.
    var overallDeadline: UInt64 = .max
    /// The timeout given to curl at admission, in milliseconds (0: none).
    var timeoutMs: Int = 0
    /// When the reactor completes the request itself if curl has not (`.max`: never).
    var backstopDue: UInt64 = .max
    /// curl was asked to look at this request again after its deadline passed unseen (see `expireAdmitted`).
    var deadlineRechecked = false
    /// Its id for admission (its submission number) and its host's admission slot (-1 when it holds no place).
    var id: UInt64 = 0
    var hostSlot = -1
    var easy: CurlEasy?
    /// The request's header lines for curl (`HeaderBlock`), kept until the transfer leaves curl.
    var headerList: UnsafeMutablePointer<curl_slist>?
    /// Position in the reactor's `active` array while admitted.
    var activeIndex: Int = -1

    // Response accumulation, written by curl's write and header callbacks on the reactor queue (one at a time:
    // no dynamic exclusivity check needed, see `ReactorCore`).
    @exclusivity(unchecked) var body: [UInt8] = []
    /// Body bytes received (kept or not), and whether they are kept (`HTTPRequest.keepResponseBody`).
    var bodyBytes = 0
    var keepBody = true
    /// `request.keepSuccessDetails` is false and the status is not read yet: the first body bytes read it, and a
    /// 2xx status stops the body from being kept.
    var dropsSuccessBody = false
    var bodyCap: Int = 0
    var bodyOverflow = false
    @exclusivity(unchecked) var captured: [HTTPHeader] = []
    /// Bytes (names and values) in `captured`.
    var capturedBytes = 0
    /// At most this many captured headers per response, of at most this many bytes (names and values) in all.
    static let maxCapturedHeaders = 64
    static let maxCapturedHeaderBytes = 16 * 1024
    /// `request.captureHeaders`, lowercased (the request's own array when it already is: no copy per request).
    let captureNames: [String]

    init(request: consuming HTTPRequest, callbackQueue: DispatchQueue?, completion: @escaping @Sendable (Result<HTTPResponse, TransferError>) -> Void) {
        self.callbackQueue = callbackQueue
        self.completion = completion
        self.submittedAt = DispatchTime.now().uptimeNanoseconds
        let names = request.captureHeaders
        self.captureNames = names.allSatisfy { !$0.utf8.contains { $0 >= 0x41 && $0 <= 0x5A } } ? names : names.map { $0.lowercased() }
        self.request = request  // the last use: moved in, not copied
    }

    deinit {
        HeaderBlock.free(headerList)
    }

    func freeHeaderList() {
        HeaderBlock.free(headerList)
        headerList = nil
    }

    /// Appends body bytes; false (and `bodyOverflow`) once the cap would be exceeded.
    @inline(__always)
    func appendBody(_ p: UnsafeRawPointer, _ n: Int) -> Bool {
        bodyBytes += n
        if dropsSuccessBody {
            dropsSuccessBody = false
            if let easy, (200...299).contains(easy.info(long: CURLINFO_RESPONSE_CODE)) { keepBody = false }
        }
        guard keepBody else { return true }
        if body.count + n > bodyCap {
            bodyOverflow = true
            return false
        }
        body.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
        return true
    }

    /// Handles one raw header line from curl: a status line starts a new header block (redirects, 1xx).
    func headerLine(_ p: UnsafeRawPointer, _ n: Int) {
        guard !captureNames.isEmpty, n > 0 else { return }
        let line = UnsafeRawBufferPointer(start: p, count: n)
        if n >= 5, line[0] == 0x48, line[1] == 0x54, line[2] == 0x54, line[3] == 0x50, line[4] == 0x2F {  // "HTTP/"
            captured.removeAll(keepingCapacity: true)
            capturedBytes = 0
            return
        }
        guard let colon = line.firstIndex(of: 0x3A) else { return }
        for name in captureNames where name.utf8.count == colon {
            var same = true
            for (i, expected) in name.utf8.enumerated() {
                var c = line[i]
                if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                if c != expected {
                    same = false
                    break
                }
            }
            guard same else { continue }
            // Bounded: a peer sending thousands of matching lines, or one huge value, cannot grow the response.
            guard captured.count < Transfer.maxCapturedHeaders else { return }
            var start = colon + 1
            var end = n
            while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
            while end > start, line[end - 1] == 0x0D || line[end - 1] == 0x0A || line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
            let size = colon + (end - start)
            guard capturedBytes + size <= Transfer.maxCapturedHeaderBytes else { return }
            capturedBytes += size
            let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
            captured.append(HTTPHeader(name, value))
            return
        }
    }
}

/// An admitted request's backstop deadline, ordered for the reactor's min-heap.
struct DeadlineEntry: Comparable {
    let due: UInt64
    let transfer: Transfer

    static func < (a: DeadlineEntry, b: DeadlineEntry) -> Bool { a.due < b.due }
    static func == (a: DeadlineEntry, b: DeadlineEntry) -> Bool { a.due == b.due && a.transfer === b.transfer }
}
