// ReactorCore+Epoll: the `.epollSet` way of watching sockets — one epoll set, one Dispatch source, drained in place.
import CCurl
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

extension ReactorCore {
    var usesEpollSet: Bool { epfd >= 0 }

    func startEpollSource() {
        let s = DispatchSource.makeReadSource(fileDescriptor: epfd, queue: queue)
        s.setEventHandler { [self] in drainEpoll() }
        s.setCancelHandler { [self] in
            assertOnQueue()
            _ = close(epfd)
            liveSources -= 1
            checkShutdownProgress()
        }
        epollSource = s
        liveSources += 1
        s.activate()
    }

    /// curl's interest for `fd` into the epoll set. Level-triggered, so nothing curl did not consume is lost.
    /// REMOVE of a socket curl read from (an idle keep-alive connection going back to its pool) parks it: it
    /// stays in the set until the end of the settling round (`deleteParkedSockets`), and when the next request
    /// takes the connection within the round with the same interest — the usual case under load — the kernel is
    /// not asked at all (two `epoll_ctl` calls per request saved). Any other REMOVE deletes at once, so idle
    /// pooled sockets never wake us, and a socket that never got past connecting (which 7.88 may close with plain
    /// `close()`, freeing its number for the resolver) leaves nothing behind.
    func epollInterestChanged(fd: Int32, what: Int32) {
        if what == CURL_POLL_REMOVE {
            if let events = epollInterest[fd], !epollInterest.isParked(fd) {
                if events & EPOLLIN.rawValue != 0 && epollInterest.park(fd) { return }
                epollInterest[fd] = nil
                _ = cc_epoll_ctl(epfd, EPOLL_CTL_DEL, fd, 0)
            }
            return
        }
        var events: UInt32 = 0
        if what & CURL_POLL_IN != 0 { events |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { events |= EPOLLOUT.rawValue }
        if let current = epollInterest[fd] {
            if epollInterest.isParked(fd) && current == events {
                epollInterest[fd] = events  // taken back as it was: still in the set with this interest
                return
            }
            // Even for an unchanged interest: curl calls for a socket it already watches only on a change (or for
            // a second transfer on it), so the same interest again may mean the record is stale — curl closed the
            // old socket itself and the number now names another (the threaded resolver's). MOD fails for a
            // socket not in the set; ADD it then.
            if cc_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, events) != 0 { _ = cc_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events) }
        } else {
            if cc_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, events) != 0 { _ = cc_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, events) }
        }
        epollInterest[fd] = events
    }

    /// Ends the settling round for parked sockets: those curl did not take back leave the epoll set now.
    func deleteParkedSockets() {
        let epfd = self.epfd
        epollInterest.removeParked { _ = cc_epoll_ctl(epfd, EPOLL_CTL_DEL, $0, 0) }
    }

    /// Serves every ready socket, then polls again while more are ready (bounded), settling after each round.
    private func drainEpoll() {
        assertOnQueue()
        guard usesEpollSet, !multi.isCleanedUp else { return }
        for _ in 0..<8 {
            let n = Int(cc_epoll_poll(epfd, epollFDs, epollEvents, 256))
            guard n > 0 else { break }
            socketEvents += n
            for i in 0..<n {
                let fd = epollFDs[i]
                guard epollInterest.isWanted(fd) else { continue }  // closed, removed or parked earlier in this round
                let e = epollEvents[i]
                var bits: Int32 = 0
                if e & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { bits |= CURL_CSELECT_IN }
                if e & EPOLLOUT.rawValue != 0 { bits |= CURL_CSELECT_OUT }
                if e & EPOLLERR.rawValue != 0 { bits |= CURL_CSELECT_ERR }
                socketAction(fd, bits)
            }
            settle()
        }
    }
}
