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
        t.id = UInt64(submitted)
        t.hostSlot = admission.slot(for: target.key)
        if let overall = t.request.overallTimeout {
            t.overallDeadline = t.submittedAt &+ overall.nanosecondsClamped
        }
        switch admission.submit(t, id: t.id, host: t.hostSlot, deadline: t.overallDeadline) {
        case .admitted:
            admit(t, now: ReactorCore.now())
        case .queued:
            t.state = .queued
        case .overloaded:
            t.hostSlot = -1
            deliver(
                t,
                .failure(
                    TransferError(
                        kind: .overloaded,
                        message: "the reactor's admission queue is full (\(config.maxQueuedRequests) requests waiting); the request was not sent")))
            return
        }
        settle()
    }

    /// Admits waiting requests while there is room: FIFO per host, hosts served round-robin (``Admission``).
    func admitWaiting() {
        guard admission.queued > 0 else { return }
        let now = ReactorCore.now()
        while let t = admission.next() { admit(t, now: now) }
    }

    /// Hands a request that admission let in to curl. Its deadline starts now. If it cannot go (its overall
    /// deadline passed, libcurl refused it), it completes and its place goes back.
    func admit(_ t: Transfer, now: UInt64) {
        var limit = (t.request.timeout ?? config.defaultTimeout)?.nanosecondsClamped ?? .max
        if t.overallDeadline != .max {
            guard now < t.overallDeadline else {
                giveBackPlace(t)
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
            giveBackPlace(t)
            deliver(t, .failure(TransferError(kind: .other, message: "curl_easy_init failed")))
            return
        }
        t.admittedAt = now
        t.timeoutMs = limit == .max ? 0 : max(1, Int((limit + 999_999) / 1_000_000))
        configure(easy, for: t)
        if let failure = easy.setupFailure {
            easy.transfer = nil
            recycle(easy)
            t.freeHeaderList()
            let kind: TransferError.Kind = failure.code == CURLE_UNSUPPORTED_PROTOCOL || failure.code == CURLE_URL_MALFORMAT ? .invalidRequest : .other
            giveBackPlace(t)
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
            easy.transfer = nil
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
        giveBackPlace(t)
    }

    /// An admitted request left curl, or never reached it: admission gets its place back.
    func giveBackPlace(_ t: Transfer) {
        guard t.hostSlot >= 0 else { return }
        admission.finished(host: t.hostSlot)
        t.hostSlot = -1
    }

    func finishAdmitted(_ t: Transfer, code: CURLcode) {
        guard let easy = t.easy else { return }
        let result = outcome(t, easy: easy, code: code)
        detach(t)
        deliver(t, result)
    }

    /// Delivers the one completion of `t`, on its callback queue or inline on the reactor queue.
    func deliver(_ t: Transfer, _ result: Result<HTTPResponse, TransferError>) {
        t.state = .finished
        completed += 1
        let completion = t.completion
        if let q = t.callbackQueue {
            q.async { completion(result) }
        } else {
            completion(result)
        }
    }

    /// Completes a waiting request that leaves the queue unadmitted (cancelled, expired).
    func dropQueued(_ t: Transfer, _ result: Result<HTTPResponse, TransferError>) {
        _ = admission.remove(id: t.id)
        t.hostSlot = -1
        deliver(t, result)
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
