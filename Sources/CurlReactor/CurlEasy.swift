// CurlEasy: one libcurl easy handle with its error buffer; typed option setters, reused across requests.
import CCurl

/// An easy handle. Owned by the reactor queue; reused for many requests (options are set anew on each use).
final class CurlEasy {
    let raw: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    /// First option that failed to apply during the current set-up, if any.
    private(set) var setupFailure: (code: CURLcode, option: String)?

    init?() {
        guard let h = curl_easy_init() else { return nil }
        raw = h
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        _ = cc_easy_setopt_ptr(h, CURLOPT_ERRORBUFFER, errorBuffer)
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
    func set(_ o: CURLoption, callback v: curl_write_callback) { check(cc_easy_setopt_write_cb(raw, o, v), "callback \(o.rawValue)") }
    func setOpenSocket(_ v: curl_opensocket_callback) { check(cc_easy_setopt_opensocket_cb(raw, v), "opensocket") }
    func setCloseSocket(_ v: curl_closesocket_callback) { check(cc_easy_setopt_closesocket_cb(raw, v), "closesocket") }

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

    func privatePointer() -> UnsafeMutableRawPointer? {
        var p: UnsafeMutableRawPointer? = nil
        _ = cc_easy_getinfo_ptr(raw, CURLINFO_PRIVATE, &p)
        return p
    }
}
