// CurlEasy: one libcurl easy handle with its error buffer; typed option setters, reused across requests.
import CCurl

#if canImport(Glibc)
    import Glibc
#endif

/// An easy handle. Owned by the reactor queue; reused for many requests (options are set anew on each use).
final class CurlEasy {
    let raw: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    /// First option that failed to apply during the current set-up, if any.
    private(set) var setupFailure: (code: CURLcode, option: String)?
    /// The connection options this handle carries now (`nil`: libcurl's defaults).
    private var appliedConnection: ConnectionOptions?
    /// Whether the environment named a proxy as the reactor started. When it did not, a request without a proxy
    /// of its own carries `CURLOPT_NOPROXY` `*`: libcurl then neither reads five environment variables per
    /// request nor copies a proxy string; with a proxy of its own and no `noProxy`, the list is empty.
    private let environmentProxies: Bool
    /// True while `CURLOPT_HEADERFUNCTION` is installed (requests that capture response headers).
    var headerCallbackInstalled = false
    /// The request this handle carries now (set at admission, cleared when it leaves curl): curl's private
    /// pointer and write data name the handle, set once, instead of each request's transfer, set per request.
    var transfer: Transfer?

    // What the previous request set, so that a request setting the same does not set it again (a setopt call
    // each, and a copy of the URL, per request). Any failed set forgets them all: curl may have dropped the old
    // value on the way (a failed string option frees it).
    private(set) var lastURL: String?
    /// `"HEAD"`, `"B " + method` (a body) or `"G " + method` (no body): the method options last set.
    var lastMethodKey: String?
    var lastTimeoutMs = -1
    var lastConnectTimeoutMs = -1
    var lastForbidReuse = -1
    var lastHTTPVersion = -1
    var lastHeaderData: UnsafeMutableRawPointer?
    var lastHeaderListWasNil = false

    private func forgetLastValues() {
        lastURL = nil
        lastMethodKey = nil
        lastTimeoutMs = -1
        lastConnectTimeoutMs = -1
        lastForbidReuse = -1
        lastHTTPVersion = -1
        lastHeaderData = UnsafeMutableRawPointer(bitPattern: 1)
        lastHeaderListWasNil = false
    }

    /// `CURLOPT_URL`, unless the previous request set the same.
    func setURL(_ url: String) {
        guard url != lastURL else { return }
        set(CURLOPT_URL, string: url)
        if setupFailure == nil { lastURL = url }
    }

    /// An integer option, unless `last` says it already has `v`; `last` is updated when the set succeeds.
    func set(_ o: CURLoption, _ v: Int, last: ReferenceWritableKeyPath<CurlEasy, Int>) {
        guard self[keyPath: last] != v else { return }
        set(o, v)
        if setupFailure == nil { self[keyPath: last] = v }
    }

    init?(environmentProxies: Bool) {
        guard let h = curl_easy_init() else { return nil }
        raw = h
        self.environmentProxies = environmentProxies
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        _ = cc_easy_setopt_ptr(h, CURLOPT_ERRORBUFFER, errorBuffer)
        if !environmentProxies { _ = cc_easy_setopt_string(h, CURLOPT_NOPROXY, "*") }
    }

    /// True when the process environment names a proxy libcurl would use (`http_proxy`, `https_proxy`,
    /// `all_proxy` and their upper-case forms but `HTTP_PROXY`, which libcurl ignores) or a `no_proxy` list.
    static func environmentNamesProxy() -> Bool {
        let names: [String] = ["http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"]
        return names.contains { getenv($0) != nil }
    }

    /// Whether this libcurl keeps response headers for `curl_easy_header` (7.84 and later unless built without
    /// the headers API). When it does, no header callback is installed: captured headers are read once the
    /// response is complete, instead of curl handing every header line to Swift.
    static let headersAPI: Bool = {
        guard let h = curl_easy_init() else { return false }
        defer { curl_easy_cleanup(h) }
        var out: UnsafeMutablePointer<curl_header>?
        return curl_easy_header(h, "x", 0, UInt32(CURLH_HEADER), -1, &out) != CURLHE_NOT_BUILT_IN
    }()

    /// The final response's headers named in `names` (lowercase), in arrival order: at most `maxCount`, of at
    /// most `maxBytes` (names and values) in all.
    func capturedHeaders(_ names: [String], maxCount: Int, maxBytes: Int) -> [HTTPHeader] {
        var out: [HTTPHeader] = []
        var bytes = 0
        let origin = UInt32(CURLH_HEADER | CURLH_TRAILER)
        // False once `maxCount` are kept; a value over the byte budget is left out and later ones still count.
        func add(_ name: String, _ h: UnsafeMutablePointer<curl_header>) -> Bool {
            guard out.count < maxCount else { return false }
            guard let v = h.pointee.value else { return true }
            let size = name.utf8.count + strlen(v)
            guard bytes + size <= maxBytes else { return true }
            bytes += size
            out.append(HTTPHeader(name, String(cString: v)))
            return true
        }
        if names.count == 1 {
            // One name (the usual `retry-after`): curl finds it, and how many there are.
            var h: UnsafeMutablePointer<curl_header>?
            guard curl_easy_header(raw, names[0], 0, origin, -1, &h) == CURLHE_OK, let first = h else { return [] }
            let amount = first.pointee.amount
            var i = 0
            var next: UnsafeMutablePointer<curl_header>? = first
            while let current = next, add(names[0], current) {
                i += 1
                guard i < amount, curl_easy_header(raw, names[0], i, origin, -1, &h) == CURLHE_OK else { break }
                next = h
            }
            return out
        }
        var prev: UnsafeMutablePointer<curl_header>?
        while let h = curl_easy_nextheader(raw, origin, -1, prev) {
            prev = h
            guard let n = h.pointee.name, let name = names.first(where: { sameName($0, n) }) else { continue }
            guard add(name, h) else { break }
        }
        return out
    }

    /// `lower` (lowercase) against a C string, ignoring the C string's ASCII case.
    private func sameName(_ lower: String, _ c: UnsafePointer<CChar>) -> Bool {
        var p = c
        for expected in lower.utf8 {
            var b = UInt8(bitPattern: p.pointee)
            if b == 0 { return false }
            if b >= 0x41 && b <= 0x5A { b |= 0x20 }
            if b != expected { return false }
            p += 1
        }
        return p.pointee == 0
    }

    deinit {
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }

    /// Clears the error buffer and any recorded set-up failure before a new request.
    func beginSetup() {
        errorBuffer[0] = 0
        setupFailure = nil
    }

    /// curl's detailed message for the last failure, or its generic text for `code`.
    func errorMessage(for code: CURLcode) -> String {
        if errorBuffer[0] != 0 { return String(cString: errorBuffer) }
        return String(cString: curl_easy_strerror(code))
    }

    private func check(_ rc: CURLcode, _ option: @autoclosure () -> String) {
        guard rc != CURLE_OK else { return }
        if setupFailure == nil { setupFailure = (rc, option()) }
        forgetLastValues()
    }

    func set(_ o: CURLoption, _ v: Int) { check(cc_easy_setopt_long(raw, o, v), "option \(o.rawValue)") }
    func set(_ o: CURLoption, _ v: Bool) { set(o, v ? 1 : 0) }
    func set(_ o: CURLoption, pointer v: UnsafeMutableRawPointer?) { check(cc_easy_setopt_ptr(raw, o, v), "option \(o.rawValue)") }
    func set(_ o: CURLoption, string v: String?) {
        if let v {
            check(v.withCString { cc_easy_setopt_string(raw, o, $0) }, "option \(o.rawValue)")
        } else {
            check(cc_easy_setopt_string(raw, o, nil), "option \(o.rawValue)")
        }
    }
    func set(_ o: CURLoption, offset v: Int64) { check(cc_easy_setopt_off_t(raw, o, curl_off_t(v)), "option \(o.rawValue)") }
    func set(_ o: CURLoption, list v: UnsafeMutablePointer<curl_slist>?) { check(cc_easy_setopt_slist(raw, o, v), "header list") }
    func set(_ o: CURLoption, callback v: curl_write_callback?) { check(cc_easy_setopt_write_cb(raw, o, v), "callback \(o.rawValue)") }
    func setOpenSocket(_ v: curl_opensocket_callback) { check(cc_easy_setopt_opensocket_cb(raw, v), "opensocket") }
    func setCloseSocket(_ v: curl_closesocket_callback) { check(cc_easy_setopt_closesocket_cb(raw, v), "closesocket") }

    /// Applies `options` when they differ from what this handle carries, restoring libcurl's defaults for
    /// fields that are nil. Free for the common case (no options, none applied before).
    func apply(_ options: ConnectionOptions?) {
        let wanted = (options?.isDefault ?? true) ? nil : options
        guard wanted != appliedConnection else { return }
        let o = wanted ?? ConnectionOptions()
        set(CURLOPT_PROXY, string: o.proxy)
        set(CURLOPT_NOPROXY, string: o.noProxy ?? (environmentProxies ? nil : o.proxy == nil ? "*" : ""))
        set(CURLOPT_CAINFO, string: o.caFile ?? CurlEasy.defaultCAFile)
        set(CURLOPT_SSLCERT, string: o.clientCertificateFile)
        set(CURLOPT_SSLCERTTYPE, string: o.clientCertificateFile == nil ? nil : "PEM")
        set(CURLOPT_SSLKEY, string: o.clientKeyFile)
        set(CURLOPT_SSLKEYTYPE, string: o.clientKeyFile == nil ? nil : "PEM")
        set(CURLOPT_KEYPASSWD, string: o.clientKeyPassword)
        switch o.tlsMinimumVersion {
        case nil: set(CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_DEFAULT))
        case .tls1_2: set(CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2))
        case .tls1_3: set(CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_3))
        }
        appliedConnection = wanted
    }

    /// libcurl's built-in CA bundle (`CURLINFO_CAINFO`, libcurl ≥ 7.84), restored after a request that set its own.
    static let defaultCAFile: String? = {
        guard let h = curl_easy_init() else { return nil }
        defer { curl_easy_cleanup(h) }
        var p: UnsafeMutablePointer<CChar>? = nil
        guard cc_easy_getinfo_string(h, CURLINFO_CAINFO, &p) == CURLE_OK, let p else { return nil }
        return String(cString: p)
    }()

    func info(long i: CURLINFO) -> Int {
        var v: Int = 0
        _ = cc_easy_getinfo_long(raw, i, &v)
        return v
    }

    func info(micros i: CURLINFO) -> Int64 {
        var v: curl_off_t = 0
        _ = cc_easy_getinfo_off_t(raw, i, &v)
        return Int64(v)
    }
}
