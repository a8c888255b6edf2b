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
        if rc != CURLE_OK && setupFailure == nil { setupFailure = (rc, option()) }
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
