// ReactorCore+Setup: request validation, easy-handle options per request, and turning curl's result into an outcome.
import CCurl

#if canImport(Glibc)
    import Glibc
#endif

extension ReactorCore {
    /// A reason the request cannot be sent, or nil. Runs on the queue before anything reaches curl.
    func validate(_ r: HTTPRequest) -> String? {
        if r.method.isEmpty || !allBytes(of: r.method, isTokenByte) {
            return "invalid HTTP method '\(r.method)': it must be a non-empty token (letters, digits, !#$%&'*+-.^_`|~)"
        }
        for i in r.headers.indices {  // read in place: no copy (two retains) per header
            if r.headers[i].name.isEmpty || !allBytes(of: r.headers[i].name, isTokenByte) {
                return "invalid header name '\(r.headers[i].name.debugDescription)': it must be a non-empty token"
            }
            if !allBytes(of: r.headers[i].value, { $0 != 0x0D && $0 != 0x0A && $0 != 0 }) {
                return "header '\(r.headers[i].name)' has a CR, LF or NUL in its value"
            }
        }
        if let body = r.body, body.count > config.maxRequestBodyBytes {
            return "request body of \(body.count) bytes exceeds the limit of \(config.maxRequestBodyBytes) bytes"
        }
        if let t = r.timeout, t <= .zero { return "timeout must be positive" }
        if let t = r.overallTimeout, t <= .zero { return "overallTimeout must be positive" }
        if let t = r.connectTimeout, t <= .zero { return "connectTimeout must be positive" }
        if let cap = r.maxResponseBodyBytes, cap < 0 { return "maxResponseBodyBytes must not be negative" }
        return nil
    }

    /// Options that never change for an easy handle: callbacks, signals, protocols.
    func configureOnce(_ easy: CurlEasy) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        // The handle outlives its requests; `easy.transfer` names the current one.
        let handle = Unmanaged.passUnretained(easy).toOpaque()
        easy.set(CURLOPT_PRIVATE, pointer: handle)
        easy.set(CURLOPT_WRITEDATA, pointer: handle)
        easy.set(CURLOPT_NOSIGNAL, true)
        easy.set(CURLOPT_WRITEFUNCTION, callback: curlWriteCallback)
        easy.setOpenSocket(curlOpenSocketCallback)
        easy.set(CURLOPT_OPENSOCKETDATA, pointer: me)
        easy.setCloseSocket(curlCloseSocketCallback)
        easy.set(CURLOPT_CLOSESOCKETDATA, pointer: me)
        easy.set(CURLOPT_PROTOCOLS_STR, string: "http,https")
        easy.set(CURLOPT_TCP_NODELAY, true)
        easy.set(CURLOPT_FOLLOWLOCATION, false)
    }

    /// Options for one request: every option a previous request may have changed, unless the handle's last
    /// request set the same value (`CurlEasy.lastURL` and the others).
    func configure(_ easy: CurlEasy, for t: Transfer) {
        let r = t.request
        easy.beginSetup()
        easy.transfer = t
        let p = Unmanaged.passUnretained(t).toOpaque()
        // Header lines reach Swift only for requests that capture some, and only from a libcurl without the
        // headers API (`CurlEasy.headersAPI`): without a header function and header data libcurl does not hand
        // them out at all (five or so calls per response saved); with the API they are read at completion.
        let wantsHeaders = !t.captureNames.isEmpty && !CurlEasy.headersAPI
        if wantsHeaders != easy.headerCallbackInstalled {
            easy.set(CURLOPT_HEADERFUNCTION, callback: wantsHeaders ? curlHeaderCallback : nil)
            easy.headerCallbackInstalled = wantsHeaders
        }
        let headerData = wantsHeaders ? p : nil
        if headerData != easy.lastHeaderData {
            easy.set(CURLOPT_HEADERDATA, pointer: headerData)
            if easy.setupFailure == nil { easy.lastHeaderData = headerData }
        }
        easy.setURL(r.url)

        let method = r.method
        let methodKey = method == "HEAD" ? "HEAD" : (r.body == nil ? "G " : "B ") + method
        let sameMethod = methodKey == easy.lastMethodKey
        if !sameMethod { easy.set(CURLOPT_NOBODY, false) }
        if method == "HEAD" {
            if !sameMethod {
                easy.set(CURLOPT_NOBODY, true)
                easy.set(CURLOPT_CUSTOMREQUEST, string: nil)
            }
        } else if let body = r.body {
            easy.set(CURLOPT_POSTFIELDSIZE_LARGE, offset: Int64(body.count))
            body.withUnsafeBytes { buf in
                easy.set(CURLOPT_COPYPOSTFIELDS, pointer: UnsafeMutableRawPointer(mutating: buf.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            if !sameMethod { easy.set(CURLOPT_CUSTOMREQUEST, string: method == "POST" ? nil : method) }
        } else if !sameMethod {
            easy.set(CURLOPT_HTTPGET, true)
            easy.set(CURLOPT_CUSTOMREQUEST, string: method == "GET" ? nil : method)
        }
        if easy.setupFailure == nil { easy.lastMethodKey = methodKey }

        // `Expect:` turns off the 100-continue round trip curl starts for a body over 1 MiB (7.88; over 1,024
        // bytes in older versions). A smaller body does without the line: one header less for curl to check and
        // print on every request.
        let list = HeaderBlock.make(r.headers, expectOff: (r.body?.count ?? 0) > 1024)
        t.headerList = list
        if list != nil || !easy.lastHeaderListWasNil {
            easy.set(CURLOPT_HTTPHEADER, list: list)
            if easy.setupFailure == nil { easy.lastHeaderListWasNil = list == nil }
        }

        easy.set(CURLOPT_TIMEOUT_MS, t.timeoutMs, last: \.lastTimeoutMs)
        let connect = (r.connectTimeout ?? config.defaultConnectTimeout).nanosecondsClamped
        easy.set(CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(min(connect / 1_000_000, UInt64(Int32.max)))), last: \.lastConnectTimeoutMs)
        easy.set(CURLOPT_FORBID_REUSE, r.forbidReuse ? 1 : 0, last: \.lastForbidReuse)
        easy.apply(r.connection)
        switch r.httpVersion {
        case .http1_1: easy.set(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1, last: \.lastHTTPVersion)
        case .http2: easy.set(CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, last: \.lastHTTPVersion)
        }

        t.body = []
        t.bodyBytes = 0
        t.keepBody = r.keepResponseBody
        t.dropsSuccessBody = r.keepResponseBody && !r.keepSuccessDetails
        t.bodyCap = r.maxResponseBodyBytes ?? config.maxResponseBodyBytes
        t.bodyOverflow = false
        t.captured = []
        t.capturedBytes = 0
    }

    /// Timings so far for a request that has not produced curl figures (queued, cancelled).
    func timings(_ t: Transfer, now: UInt64) -> TransferTimings {
        if t.admittedAt == 0 {
            return TransferTimings(queued: .nanoseconds(Int64(clamping: now &- t.submittedAt)))
        }
        return TransferTimings(
            queued: .nanoseconds(Int64(clamping: t.admittedAt &- t.submittedAt)),
            total: .nanoseconds(Int64(clamping: now &- t.admittedAt)))
    }

    /// The response or typed error for a request curl reported done.
    func outcome(_ t: Transfer, easy: CurlEasy, code: CURLcode) -> Result<HTTPResponse, TransferError> {
        let timings = TransferTimings(
            queued: .nanoseconds(Int64(clamping: t.admittedAt &- t.submittedAt)),
            connect: .microseconds(easy.info(micros: CURLINFO_CONNECT_TIME_T)),
            firstByte: .microseconds(easy.info(micros: CURLINFO_STARTTRANSFER_TIME_T)),
            total: .microseconds(easy.info(micros: CURLINFO_TOTAL_TIME_T)))
        if code == CURLE_OK {
            let body = t.body
            t.body = []
            let status = easy.info(long: CURLINFO_RESPONSE_CODE)
            let headers: [HTTPHeader]
            if t.captureNames.isEmpty || (!t.request.keepSuccessDetails && (200...299).contains(status)) {
                headers = []
            } else if !CurlEasy.headersAPI {
                headers = t.captured
            } else {
                headers = easy.capturedHeaders(t.captureNames, maxCount: Transfer.maxCapturedHeaders, maxBytes: Transfer.maxCapturedHeaderBytes)
            }
            return .success(
                HTTPResponse(
                    status: status,
                    headers: headers,
                    body: body,
                    bodyBytes: t.bodyBytes,
                    timings: timings,
                    newConnection: easy.info(long: CURLINFO_NUM_CONNECTS) > 0))
        }
        let message = easy.errorMessage(for: code)
        let kind = classify(code, t: t, easy: easy, timings: timings)
        let shown = kind == .bodyTooLarge ? "response body exceeds the cap of \(t.bodyCap) bytes" : message
        t.body = []
        return .failure(TransferError(kind: kind, message: shown, curlCode: Int(code.rawValue), timings: timings))
    }

    private func classify(_ code: CURLcode, t: Transfer, easy: CurlEasy, timings: TransferTimings) -> TransferError.Kind {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .dns
        case CURLE_COULDNT_CONNECT:
            let err = Int32(easy.info(long: CURLINFO_OS_ERRNO))
            return err == ECONNREFUSED || err == 0 ? .refused : .other
        case CURLE_OPERATION_TIMEDOUT:
            // A connect-phase expiry well before the request deadline is the connect timeout. A transfer got past
            // connection set-up when it has a connect time (a new connection) or a pre-transfer time (a reused one:
            // it has no connect time, and a connect that failed has made no connection either, so NUM_CONNECTS
            // cannot tell them apart).
            let connected = easy.info(micros: CURLINFO_CONNECT_TIME_T) > 0 || easy.info(micros: CURLINFO_PRETRANSFER_TIME_T) > 0
            let elapsedMs = Int(easy.info(micros: CURLINFO_TOTAL_TIME_T) / 1000)
            if !connected && (t.timeoutMs == 0 || elapsedMs + 2 < t.timeoutMs) { return .connectTimeout }
            return .deadline
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return .reset
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CRL_BADFILE,
            CURLE_USE_SSL_FAILED:
            return .tls
        case CURLE_WRITE_ERROR where t.bodyOverflow:
            return .bodyTooLarge
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return .invalidRequest
        default:
            return .other
        }
    }
}

/// RFC 9110 `tchar`: the bytes allowed in a method or header name.
@inline(__always)
package func isTokenByte(_ c: UInt8) -> Bool {
    c < 0x80 && (c < 0x40 ? tokenBytesLow >> c : tokenBytesHigh >> (c &- 0x40)) & 1 != 0
}

/// Bit n set: byte n (`tokenBytesLow`) or 0x40 + n (`tokenBytesHigh`) is a token byte: digits, letters and
/// `!#$%&'*+-.^_`|~`. Literals, not computed globals: a global with an initialiser is checked (`swift_once`) on
/// every read, here once per byte of every header name (`ReactorPartsTests` checks them against RFC 9110's list).
private let tokenBytesLow: UInt64 = 0x03FF_6CFA_0000_0000  // ! # $ % & ' * + - . 0-9
private let tokenBytesHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // A-Z ^ _ ` a-z | ~

/// Whether every UTF-8 byte of `s` satisfies `test`, over the string's contiguous bytes when it has them (native
/// strings do): the per-request header checks run for every header of every request.
@inline(__always)
func allBytes(of s: String, _ test: (UInt8) -> Bool) -> Bool {
    if let r = s.utf8.withContiguousStorageIfAvailable({ $0.allSatisfy(test) }) { return r }
    return s.utf8.allSatisfy(test)
}
