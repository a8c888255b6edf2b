// SocketWatch: one socket libcurl asked the reactor to watch, its Dispatch sources and whether curl wants them.
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// The reactor's record of one socket, touched only on the reactor queue.
///
/// `owned` sockets were opened by the reactor (`CURLOPT_OPENSOCKETFUNCTION`) and are closed by it
/// (`CURLOPT_CLOSESOCKETFUNCTION`) only after every source on them has run its cancel handler. Their read
/// source lives as long as the socket; `wantRead` says whether curl currently cares. Sockets curl opened itself
/// (the threaded resolver's wake-up pair) are never closed here: their sources are cancelled at `POLL_REMOVE`.
///
/// A watch is `retired` when its socket may be closed by curl behind the reactor's back (the resolver pair,
/// and — a libcurl 7.88 bug, curl PR #11439 — a socket closed while still connecting, which curl closes with a
/// plain `close()`). Until every source of a retired watch has run its cancel handler, libdispatch still keys a
/// registration by that descriptor number, so no new source is created on the same number before then.
final class SocketWatch: @unchecked Sendable {
    let fd: Int32
    let owned: Bool
    /// What `fstat` said about an owned socket when it was opened: its number alone may name another socket later.
    var identity: SocketIdentity?
    var wantRead = false
    var wantWrite = false
    var readSource: DispatchSourceRead?
    var writeSource: DispatchSourceWrite?
    /// Sources created on this socket whose cancel handler has not run yet.
    var liveSources = 0
    /// curl asked to close the socket; the close happens when `liveSources` reaches zero.
    var closing = false
    /// curl has asked to read from this socket at least once (it finished connecting).
    var everWantedRead = false
    /// The socket may have been closed by curl itself; its sources are cancelled and it is no longer in the table.
    var retired = false

    init(fd: Int32, owned: Bool) {
        self.fd = fd
        self.owned = owned
    }
}

/// A socket's identity beyond its descriptor number: the device and inode `fstat` reports. A number is reused
/// as soon as it is closed (by curl behind the reactor's back, too); an inode is not while the socket lives.
struct SocketIdentity: Hashable {
    let device: UInt64
    let inode: UInt64

    /// The identity of the socket now numbered `fd`, nil when the number is closed.
    init?(fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
