// ReactorCore+Testing: hooks that let tests play libcurl's part in the socket bookkeeping (reactor queue only).
import CCurl

#if canImport(Glibc)
    import Glibc
#endif

extension ReactorCore {
    /// Opens a TCP socket through the open-socket callback, as curl does for a new connection.
    func testingOpenSocket() -> Int32 {
        var address = curl_sockaddr()
        address.family = AF_INET
        address.socktype = Int32(SOCK_STREAM.rawValue)
        address.protocol = 0
        return onOpenSocket(purpose: CURLSOCKTYPE_IPCXN, address: &address)
    }

    /// curl's socket callback for `fd`: the interest it asks for, or `POLL_REMOVE` when both are false.
    func testingInterest(_ fd: Int32, read: Bool, write: Bool) {
        let what: Int32 = read && write ? CURL_POLL_INOUT : read ? CURL_POLL_IN : write ? CURL_POLL_OUT : CURL_POLL_REMOVE
        onSocket(fd: fd, what: what)
    }

    /// curl's close-socket callback for `fd`.
    func testingCloseSocket(_ fd: Int32) { _ = onCloseSocket(fd) }

    /// Whether the socket now numbered `fd` is in the epoll set (`.epollSet` watching).
    func testingEpollWatches(_ fd: Int32) -> Bool {
        usesEpollSet && cc_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, epollInterest[fd] ?? 0) == 0
    }

    /// The sockets curl now asks the reactor to watch.
    func testingWatchedSockets() -> [Int32] {
        usesEpollSet ? epollInterest.keys : sockets.values.filter { $0.wantRead || $0.wantWrite }.map(\.fd)
    }

    /// Drives curl for `fd` as if it were readable (it need not be): curl runs the transfers on it.
    func testingNudge(_ fd: Int32) { socketAction(fd, CURL_CSELECT_IN) }
}
