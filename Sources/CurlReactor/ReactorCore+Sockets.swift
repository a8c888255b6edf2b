// ReactorCore+Sockets: curl's socket interest mapped onto Dispatch read/write sources; opening and closing sockets.
import CCurl
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

extension ReactorCore {
    /// `CURLMOPT_SOCKETFUNCTION`: records curl's interest in `fd`. Creates or cancels sources; never calls curl.
    func onSocket(fd: Int32, what: Int32) {
        assertOnQueue()
        if usesEpollSet {
            epollInterestChanged(fd: fd, what: what)
            return
        }
        if what == CURL_POLL_REMOVE {
            guard let w = sockets[fd] else { return }
            w.wantRead = false
            w.wantWrite = false
            cancelWrite(w)
            if w.owned && w.everWantedRead {
                return  // an idle keep-alive connection: keep its read source (rule 5)
            }
            // curl may close this socket itself right after (resolver pair; 7.88 closes a still-connecting
            // socket without the close callback): let go of it now.
            retire(w)
            return
        }
        let w: SocketWatch
        if let existing = sockets[fd] {
            w = existing
        } else if let old = limbo.removeValue(forKey: fd), old.identity != nil, old.identity == SocketIdentity(fd: fd) {
            // A connecting socket curl set aside and now wants again: it is still open and still ours. (Had curl
            // closed it, the number could now be the threaded resolver's wake-up socket, which is not ours.)
            w = SocketWatch(fd: fd, owned: true)
            w.identity = old.identity
            w.everWantedRead = old.everWantedRead
            sockets[fd] = w
        } else {
            w = SocketWatch(fd: fd, owned: false)
            sockets[fd] = w
        }
        w.wantRead = what & CURL_POLL_IN != 0
        w.wantWrite = what & CURL_POLL_OUT != 0
        if w.wantRead { w.everWantedRead = true }
        if !w.wantRead && !w.owned { cancelRead(w) }
        if !w.wantWrite { cancelWrite(w) }  // a writable socket fires continuously: the source exists only while wanted
        applyInterest(w)
    }

    /// Creates the sources curl wants, unless an earlier incarnation of this descriptor number still has a
    /// registration in libdispatch; then `sourceCancelled` creates them once it is gone.
    private func applyInterest(_ w: SocketWatch) {
        guard retiringSources[w.fd] == nil, !w.closing, !w.retired else { return }
        if w.wantRead && w.readSource == nil { makeReadSource(w) }
        if w.wantWrite && w.writeSource == nil { makeWriteSource(w) }
    }

    /// Stops watching a socket that curl may close behind our back.
    private func retire(_ w: SocketWatch) {
        cancelRead(w)
        cancelWrite(w)
        w.retired = true
        if sockets[w.fd] === w { sockets[w.fd] = nil }
        if w.liveSources > 0 { retiringSources[w.fd, default: 0] += w.liveSources }
        if w.owned && !w.closing { limbo[w.fd] = w }
    }

    /// `CURLOPT_OPENSOCKETFUNCTION`: opens the socket so that the reactor decides when it is closed.
    func onOpenSocket(purpose: curlsocktype, address: UnsafeMutablePointer<curl_sockaddr>?) -> curl_socket_t {
        assertOnQueue()
        guard purpose == CURLSOCKTYPE_IPCXN, let a = address else { return cc_socket_bad() }
        let fd = socket(a.pointee.family, a.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.protocol)
        guard fd >= 0 else { return cc_socket_bad() }
        connectionsOpened += 1
        if usesEpollSet {
            // The number is free again, so interest recorded under it belonged to a socket curl closed behind our
            // back (7.88 closes a still-connecting socket with plain close(), which also took it out of the epoll
            // set) without POLL_REMOVE. curl knows sockets by number only: for it nothing changed, and it will not
            // ask again. Watch the new socket as curl last asked for the number.
            // A parked record was an idle connection curl no longer wanted: nothing to watch for the new socket.
            if epollInterest.isParked(fd) {
                epollInterest[fd] = nil
            } else if let events = epollInterest[fd] {
                _ = cc_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events)
            }
            return fd
        }
        // The number is free again, so whatever we knew under it was closed by curl without telling us.
        limbo[fd] = nil
        if let stale = sockets[fd] {
            retire(stale)
            limbo[fd] = nil
        }
        let w = SocketWatch(fd: fd, owned: true)
        w.identity = SocketIdentity(fd: fd)
        sockets[fd] = w
        return fd
    }

    /// `CURLOPT_CLOSESOCKETFUNCTION`: closes at once when no source is live on the socket, otherwise in the
    /// last cancel handler, so libdispatch never sees a closed (and possibly reused) descriptor number.
    func onCloseSocket(_ fd: curl_socket_t) -> Int32 {
        assertOnQueue()
        if usesEpollSet {
            // Closing removes it from the epoll set; no Dispatch registration is keyed by its number.
            epollInterest[fd] = nil
            return close(fd)
        }
        let w: SocketWatch
        if let live = sockets[fd], live.owned {
            sockets[fd] = nil
            w = live
        } else if let parked = limbo.removeValue(forKey: fd) {
            w = parked
        } else {
            return close(fd)
        }
        w.closing = true
        w.wantRead = false
        w.wantWrite = false
        cancelRead(w)
        cancelWrite(w)
        if w.liveSources == 0 {
            _ = close(fd)
        } else {
            pendingCloses += 1
        }
        return 0
    }

    private func makeReadSource(_ w: SocketWatch) {
        let s = DispatchSource.makeReadSource(fileDescriptor: w.fd, queue: queue)
        s.setEventHandler { [self] in readReady(w) }
        s.setCancelHandler { [self] in sourceCancelled(w) }
        w.readSource = s
        w.liveSources += 1
        liveSources += 1
        s.activate()
    }

    private func makeWriteSource(_ w: SocketWatch) {
        let s = DispatchSource.makeWriteSource(fileDescriptor: w.fd, queue: queue)
        s.setEventHandler { [self] in writeReady(w) }
        s.setCancelHandler { [self] in sourceCancelled(w) }
        w.writeSource = s
        w.liveSources += 1
        liveSources += 1
        s.activate()
    }

    func cancelRead(_ w: SocketWatch) {
        guard let s = w.readSource else { return }
        w.readSource = nil
        s.cancel()
    }

    func cancelWrite(_ w: SocketWatch) {
        guard let s = w.writeSource else { return }
        w.writeSource = nil
        s.cancel()
    }

    private func sourceCancelled(_ w: SocketWatch) {
        assertOnQueue()
        w.liveSources -= 1
        liveSources -= 1
        if w.closing && w.liveSources == 0 {
            _ = close(w.fd)
            pendingCloses -= 1
        }
        if w.retired, let n = retiringSources[w.fd] {
            if n <= 1 {
                retiringSources[w.fd] = nil
                if let current = sockets[w.fd] { applyInterest(current) }
            } else {
                retiringSources[w.fd] = n - 1
            }
        }
        checkShutdownProgress()
    }

    private func readReady(_ w: SocketWatch) {
        assertOnQueue()
        guard w.readSource != nil, !w.closing, !w.retired else { return }
        socketEvents += 1
        guard w.wantRead else {
            // Readable while curl does not want it: the peer closed an idle pooled connection. Stop watching,
            // or the source fires again and again; curl notices the dead connection when it next looks.
            cancelRead(w)
            return
        }
        socketAction(w.fd, CURL_CSELECT_IN)
        settle()
    }

    private func writeReady(_ w: SocketWatch) {
        assertOnQueue()
        guard w.writeSource != nil, !w.closing, !w.retired else { return }
        socketEvents += 1
        guard w.wantWrite else {
            cancelWrite(w)
            return
        }
        socketAction(w.fd, CURL_CSELECT_OUT)
        settle()
    }
}
