// CurlMulti: the libcurl multi handle, a distinct type from easy handles; typed option setters.
import CCurl

/// The multi handle. Created and used only on the reactor queue; cleaned up exactly once at shutdown.
final class CurlMulti {
    private(set) var raw: UnsafeMutableRawPointer?

    init?() {
        guard let m = curl_multi_init() else { return nil }
        raw = m
    }

    deinit { cleanup() }

    @discardableResult
    func set(_ o: CURLMoption, _ v: Int) -> CURLMcode {
        guard let raw else { return CURLM_BAD_HANDLE }
        return cc_multi_setopt_long(raw, o, v)
    }

    @discardableResult
    func set(_ o: CURLMoption, pointer v: UnsafeMutableRawPointer?) -> CURLMcode {
        guard let raw else { return CURLM_BAD_HANDLE }
        return cc_multi_setopt_ptr(raw, o, v)
    }

    func setSocketCallback(_ cb: curl_socket_callback) { if let raw { _ = cc_multi_setopt_socket_cb(raw, cb) } }
    func setTimerCallback(_ cb: curl_multi_timer_callback) { if let raw { _ = cc_multi_setopt_timer_cb(raw, cb) } }

    func add(_ easy: CurlEasy) -> CURLMcode {
        guard let raw else { return CURLM_BAD_HANDLE }
        return curl_multi_add_handle(raw, easy.raw)
    }

    @discardableResult
    func remove(_ easy: CurlEasy) -> CURLMcode {
        guard let raw else { return CURLM_BAD_HANDLE }
        return curl_multi_remove_handle(raw, easy.raw)
    }

    /// Drives curl for one socket (or the timeout when `fd` is `CURL_SOCKET_TIMEOUT`).
    func socketAction(_ fd: curl_socket_t, _ bits: Int32) -> CURLMcode {
        guard let raw else { return CURLM_BAD_HANDLE }
        var running: Int32 = 0
        return curl_multi_socket_action(raw, fd, bits, &running)
    }

    /// Has curl look at every transfer (`curl_multi_socket_all`): each checks its deadline again.
    func checkAll() -> CURLMcode {
        guard let raw else { return CURLM_BAD_HANDLE }
        var running: Int32 = 0
        return cc_multi_socket_all(raw, &running)
    }

    /// When curl next wants `CURL_SOCKET_TIMEOUT` driven, in milliseconds (`-1`: no timeout), from
    /// `curl_multi_timeout`; nil when curl cannot say.
    func timeout() -> Int? {
        guard let raw else { return nil }
        var ms: Int = -1
        guard curl_multi_timeout(raw, &ms) == CURLM_OK else { return nil }
        return ms
    }

    /// The next completion message, if any: the easy handle's raw pointer and its result.
    func nextDone() -> (easy: UnsafeMutableRawPointer, result: CURLcode)? {
        guard let raw else { return nil }
        var left: Int32 = 0
        while let msg = curl_multi_info_read(raw, &left) {
            if cc_msg_kind(msg) == CURLMSG_DONE, let easy = cc_msg_easy(msg) {
                return (easy, cc_msg_result(msg))
            }
        }
        return nil
    }

    /// Releases the multi handle; closes pooled connections (through the close-socket callback).
    func cleanup() {
        guard let r = raw else { return }
        raw = nil
        _ = curl_multi_cleanup(r)
    }

    var isCleanedUp: Bool { raw == nil }
}

/// Process-wide libcurl initialisation, done once before the first handle.
enum CurlGlobal {
    static let initResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

    static var versionString: String { String(cString: curl_version()) }

    /// Just `libcurl/X.Y.Z`.
    static var shortVersion: String { String(versionString.split(separator: " ").first ?? "libcurl") }
}
