// ReactorCore+Admission: taking requests in, per-host FIFO admission to curl, delivery, cancellation, host records.
import CCurl
import DequeModule
import Dispatch

extension ReactorCore {
    // MARK: - Submission and admission

    /// Accepts a submitted request (on the queue).
    func enqueue(_ t: Transfer) {
        assertOnQueue()
        submitted += 1
        guard phase == .running else {
            deliver(t, .failure(TransferError(kind: .shutdown, message: "the reactor is shutting down")))
            return
        }
        if t.cancelRequested.load(ordering: .acquiring) {
            deliver(
                t,
                .failure(
                    TransferError(kind: .cancelled, message: "cancelled before the reactor took the request in", timings: timings(t, now: ReactorCore.now()))))
            return
        }
        if let problem = validate(t.request) {
            deliver(t, .failure(TransferError(kind: .invalidRequest, message: problem)))
            return
        }
        let target: URLTarget
        if let cached = urlCache[t.request.url] {
            target = cached
        } else {
            switch URLTarget.parse(t.request.url) {
            case .success(let v):
                if urlCache.count >= 4096 { urlCache.removeAll(keepingCapacity: true) }
                urlCache[t.request.url] = v
                target = v
            case .failure(.malformed(let why)):
                deliver(t, .failure(TransferError(kind: .invalidRequest, message: "malformed URL: \(why)")))
                return
            case .failure(.unsupportedScheme(let s)):
                let shown = s.isEmpty ? "none" : "'\(s)'"
                deliver(t, .failure(TransferError(kind: .invalidRequest, message: "unsupported URL scheme \(shown): only http and https are allowed")))
                return
            }
        }
        let key = target.key
        let host: HostQueue
        if let h = hosts[key] {
            host = h
        } else {
            host = HostQueue(key: key)
            hosts[key] = host
        }
        t.host = host
        if let overall = t.request.overallTimeout {
            t.overallDeadline = t.submittedAt &+ overall.nanosecondsClamped
        }
        if host.waiting.isEmpty && host.inFlight < config.maxInFlightPerHost && active.count < config.maxInFlightTotal {
            admit(t, now: ReactorCore.now())
        } else if queuedCount >= config.maxQueuedRequests {
            deliver(
                t,
                .failure(
                    TransferError(
                        kind: .overloaded,
                        message: "the reactor's admission queue is full (\(config.maxQueuedRequests) requests waiting); the request was not sent")))
            return
        } else {
            t.state = .queued
            host.waiting.append(t)
            queuedCount += 1
            if t.overallDeadline != .max { queueDeadlines.insert(DeadlineEntry(due: t.overallDeadline, transfer: t)) }
            markReady(host)
        }
        settle()
    }

    func markReady(_ host: HostQueue) {
        if !host.inReadyList && !host.waiting.isEmpty && host.inFlight < config.maxInFlightPerHost {
            host.inReadyList = true
            readyHosts.append(host)
        }
    }

    /// Admits waiting requests while there is room: FIFO per host, hosts served round-robin.
    func admitWaiting() {
        guard queuedCount > 0 else { return }
        let now = ReactorCore.now()
        while active.count < config.maxInFlightTotal, let host = readyHosts.popFirst() {
            host.inReadyList = false
            while host.inFlight < config.maxInFlightPerHost, let t = host.waiting.popFirst() {
                guard t.state == .queued else {  // cancelled or expired while queued
                    host.stale -= 1
                    continue
                }
                queuedCount -= 1
                admit(t, now: now)
                break
            }
            markReady(host)
        }
    }

    /// Hands a request to curl. Its deadline starts now.
    func admit(_ t: Transfer, now: UInt64) {
        var limit = (t.request.timeout ?? config.defaultTimeout)?.nanosecondsClamped ?? .max
        if t.overallDeadline != .max {
            guard now < t.overallDeadline else {
                deliver(
                    t,
                    .failure(
                        TransferError(
                            kind: .deadline, message: "the overall deadline passed while the request waited for admission", timings: timings(t, now: now))))
                return
            }
            limit = min(limit, t.overallDeadline - now)
        }
        guard let easy = freeEasy.popLast() ?? makeEasy() else {
            deliver(t, .failure(TransferError(kind: .other, message: "curl_easy_init failed")))
            return
        }
        t.admittedAt = now
        t.timeoutMs = limit == .max ? 0 : max(1, Int((limit + 999_999) / 1_000_000))
        configure(easy, for: t)
        if let failure = easy.setupFailure {
            recycle(easy)
            t.freeHeaderList()
            let kind: TransferError.Kind = failure.code == CURLE_UNSUPPORTED_PROTOCOL || failure.code == CURLE_URL_MALFORMAT ? .invalidRequest : .other
            deliver(
                t,
                .failure(
                    TransferError(
                        kind: kind, message: "libcurl rejected \(failure.option): \(easy.errorMessage(for: failure.code))", curlCode: Int(failure.code.rawValue)
                    )))
            return
        }
        t.state = .admitted
        t.easy = easy
        t.activeIndex = active.count
        active.append(t)
        if t.timeoutMs > 0 { startingDeadlines.append(t) }
        t.host?.inFlight += 1
        let rc = multi.add(easy)
        if rc != CURLM_OK {
            detach(t)
            deliver(t, .failure(TransferError(kind: .other, message: "curl_multi_add_handle: \(String(cString: curl_multi_strerror(rc)))")))
        }
    }

    /// Removes an admitted request from curl and from admission accounting; recycles its easy handle.
    func detach(_ t: Transfer) {
        if let easy = t.easy {
            multi.remove(easy)
            t.easy = nil
            recycle(easy)
        }
        t.freeHeaderList()
        let i = t.activeIndex
        let last = active.removeLast()
        if last !== t {
            active[i] = last
            last.activeIndex = i
        }
        t.activeIndex = -1
        if let host = t.host {
            host.inFlight -= 1
            markReady(host)
        }
    }

    func finishAdmitted(_ t: Transfer, code: CURLcode) {
        guard let easy = t.easy else { return }
        let result = outcome(t, easy: easy, code: code)
        detach(t)
        deliver(t, result)
    }

    /// Delivers the one completion of `t`, on its callback queue or inline on the reactor queue.
    func deliver(_ t: Transfer, _ result: Result<HTTPResponse, TransferError>) {
        let host = t.host
        t.state = .finished
        t.host = nil
        completed += 1
        if let host { forgetIfIdle(host) }
        let completion = t.completion
        if let q = t.callbackQueue {
            q.async { completion(result) }
        } else {
            completion(result)
        }
    }

    /// Completes a queued request that leaves the queue unadmitted (cancelled, expired), dropping it from its
    /// host's FIFO at once when it is first, and compacting the FIFO when finished entries make half of it.
    func dropQueued(_ t: Transfer, _ result: Result<HTTPResponse, TransferError>) {
        let host = t.host
        queuedCount -= 1
        deliver(t, result)
        guard let host else { return }
        host.stale += 1
        while let first = host.waiting.first, first.state != .queued {
            host.waiting.removeFirst()
            host.stale -= 1
        }
        if host.stale > 0 && host.stale * 2 >= host.waiting.count {
            host.waiting.removeAll { $0.state != .queued }
            host.stale = 0
        }
        forgetIfIdle(host)
    }

    /// Per-host records are kept for reuse while there are few; past `idleHostsKept`, a host's record goes as
    /// soon as nothing is in flight or waiting for it.
    func forgetIfIdle(_ host: HostQueue) {
        guard host.inFlight == 0, host.waiting.isEmpty, hosts.count > ReactorCore.idleHostsKept, hosts[host.key] === host else { return }
        hosts[host.key] = nil
    }

    // MARK: - Cancellation

    /// Cancels `t` if it is queued or in flight. A transfer not taken in yet (`created`) is cancelled by
    /// `enqueue`, which sees `cancelRequested`.
    func cancel(_ t: Transfer) {
        assertOnQueue()
        switch t.state {
        case .created, .finished:
            return
        case .queued:
            dropQueued(t, .failure(TransferError(kind: .cancelled, message: "cancelled before admission", timings: timings(t, now: ReactorCore.now()))))
        case .admitted:
            let now = ReactorCore.now()
            detach(t)
            deliver(t, .failure(TransferError(kind: .cancelled, message: "cancelled in flight", timings: timings(t, now: now))))
        }
        settle()
    }
}
