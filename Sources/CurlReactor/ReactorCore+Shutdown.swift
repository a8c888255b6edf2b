// ReactorCore+Shutdown: stop accepting, drain or cancel, then release the multi handle, sockets, sources and timer.
import CCurl
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

extension ReactorCore {
    /// Starts (or escalates) shutdown; `done` runs once everything is released. Safe to call repeatedly.
    func shutdown(_ mode: ShutdownMode, done: @escaping @Sendable () -> Void) {
        assertOnQueue()
        if phase == .released {
            queue.async(execute: done)
            return
        }
        shutdownWaiters.append(done)
        if phase == .running { phase = .draining }
        if mode == .cancel && phase == .draining {
            let now = ReactorCore.now()
            for t in admission.removeAll() {
                t.hostSlot = -1
                deliver(
                    t,
                    .failure(TransferError(kind: .shutdown, message: "the reactor shut down before the request was admitted", timings: timings(t, now: now))))
            }
            while let t = active.last {
                detach(t)
                deliver(
                    t, .failure(TransferError(kind: .shutdown, message: "the reactor shut down while the request was in flight", timings: timings(t, now: now)))
                )
            }
        }
        settle()
    }

    /// The `CurlReactor` was released. Without a shutdown under way, everything is cancelled; a shutdown
    /// already under way (a drain) carries on: the core keeps itself alive until it is released.
    func ownerReleased() {
        assertOnQueue()
        if phase == .running { shutdown(.cancel) {} }
    }

    /// Moves the lifecycle forward when its condition holds; called after every event.
    func checkShutdownProgress() {
        if phase == .draining && active.isEmpty && admission.queued == 0 && !inSettle {
            beginRelease()
        }
        if phase == .releasing && liveSources == 0 && pendingCloses == 0 && timerReleased {
            phase = .released
            let waiters = shutdownWaiters
            shutdownWaiters = []
            for w in waiters { queue.async(execute: w) }
            let retained = selfRetain
            selfRetain = nil
            // Let the current call stack finish before the last reference may go away.
            if let retained { queue.async { retained.release() } }
        }
    }

    private func beginRelease() {
        phase = .releasing
        admission = Admission(
            maxPerHost: config.maxInFlightPerHost, maxTotal: config.maxInFlightTotal, maxQueued: config.maxQueuedRequests,
            idleHostsKept: ReactorCore.idleHostsKept)
        urlCache.removeAll()
        activeDeadlines = .init()
        startingDeadlines.removeAll()
        easyCount -= freeEasy.count
        freeEasy.removeAll()  // curl_easy_cleanup in deinit; pooled connections stay with the multi handle
        multi.cleanup()  // closes pooled connections through onCloseSocket
        for (_, w) in sockets {
            w.wantRead = false
            w.wantWrite = false
            cancelRead(w)
            cancelWrite(w)
            // Only a socket that is still the one we opened: curl may have closed ours and the number moved on.
            if w.owned && w.identity != nil && w.identity == SocketIdentity(fd: w.fd) {
                w.closing = true
                if w.liveSources == 0 { _ = close(w.fd) } else { pendingCloses += 1 }
            }
        }
        sockets.removeAll()
        limbo.removeAll()  // closed by curl itself, or already handed back through the close callback
        epollInterest.removeAll()
        epollSource?.cancel()  // its cancel handler closes the epoll set
        epollSource = nil
        timer?.cancel()  // its cancel handler marks the timer released
    }
}
