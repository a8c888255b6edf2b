// ReactorCore: the queue-confined engine — libcurl's multi handle driven by Dispatch sources and one timer.
import CCurl
import Dispatch
import DequeModule
import HeapModule
import Synchronization

/// Everything here runs on `queue` and nowhere else; that is the only synchronisation.
///
/// The event loop: Dispatch read/write sources and the single timer call `curl_multi_socket_action`; after each
/// call `settle()` drains `curl_multi_info_read`, admits waiting requests, honours curl's "run now" timer
/// requests and re-arms the timer. curl's callbacks (socket, timer, open/close socket, write, header) only
/// record intent: they never call back into curl (DESIGN.md, reactor rules 2 and 3).
final class ReactorCore: @unchecked Sendable {
    let queue: DispatchQueue
    let queueKey = DispatchSpecificKey<UInt8>()
    let config: ReactorConfiguration
    let multi: CurlMulti
    var timer: DispatchSourceTimer?

    // Timer bookkeeping (uptime nanoseconds; .max = none).
    var curlTimerDue: UInt64 = .max
    var timerArmedFor: UInt64 = .max
    var timerReleased = false
    var runNowRequested = false
    var kickScheduled = false
    var inSettle = false

    // Sockets.
    var sockets: [Int32: SocketWatch] = [:]
    /// Owned sockets set aside at `POLL_REMOVE` before they ever connected: curl either closes them through
    /// the close callback (found here) or, in 7.88, with a plain `close()` (forgotten when the number returns).
    var limbo: [Int32: SocketWatch] = [:]
    /// Descriptor numbers whose retired sources have not all run their cancel handlers yet.
    var retiringSources: [Int32: Int] = [:]
    // `.epollSet` watching: the set, its one Dispatch source, curl's interest per socket, poll buffers.
    var epfd: Int32 = -1
    var epollSource: DispatchSourceRead?
    var epollInterest: [Int32: UInt32] = [:]
    let epollFDs = UnsafeMutablePointer<Int32>.allocate(capacity: 256)
    let epollEvents = UnsafeMutablePointer<UInt32>.allocate(capacity: 256)
    var liveSources = 0
    var pendingCloses = 0

    // Requests.
    var active: [Transfer] = []
    var hosts: [String: HostQueue] = [:]
    /// Idle per-host records kept for reuse; past this many, a host's record goes when it becomes idle.
    static let idleHostsKept = 64
    var readyHosts = Deque<HostQueue>()
    var queuedCount = 0
    var queueDeadlines = Heap<DeadlineEntry>()
    /// Admitted requests' deadlines plus `backstopGrace`: a request curl has not completed by then is completed
    /// here. libcurl 7.88 can lose a transfer's timeout: its timeout check (`Curl_timeleft(...) < 0` on
    /// millisecond-truncated differences) can run in the very millisecond the expiry node is consumed, see 0 ms
    /// left, and never look again — a hanging peer then holds the request forever. Seen here under load.
    var activeDeadlines = Heap<DeadlineEntry>()
    static let backstopGrace: UInt64 = 3_000_000
    /// Requests completed by the backstop instead of curl.
    var backstopExpiries = 0
    /// Tests only: never run curl's timeouts, as when libcurl loses one, so the backstop must act.
    var testingStarveCurlTimeouts = false
    /// Tests only: this many coming `curl_multi_socket_action(CURL_SOCKET_TIMEOUT)` calls fail before curl runs
    /// (as with `CURLM_OUT_OF_MEMORY`), so curl neither acts nor updates its timer.
    var testingFailTimeoutActions = 0
    /// Tests only: `epoll_create1` fails for reactors created while this is set.
    nonisolated(unsafe) static var testingFailEpollCreate = false
    /// Cores alive in this process (created and not yet deinitialised): a leak shows here.
    static let liveCores = Atomic<Int>(0)
    var freeEasy: [CurlEasy] = []
    var easyCount = 0
    var urlCache: [String: URLTarget] = [:]

    // Counters.
    var submitted = 0
    var completed = 0
    var connectionsOpened = 0
    var timerFires = 0
    var socketActionCalls = 0
    var socketEvents = 0

    // Lifecycle: running → draining → releasing → released.
    enum Phase { case running, draining, releasing, released }
    var phase: Phase = .running
    var shutdownWaiters: [@Sendable () -> Void] = []
    /// Keeps the core alive while libcurl holds pointers to it; released when the phase reaches `released`.
    var selfRetain: Unmanaged<ReactorCore>?

    init(config: ReactorConfiguration) throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw ReactorError.invalidConfiguration(problems) }
        guard CurlGlobal.initResult == CURLE_OK else {
            throw ReactorError.curlInitFailed(String(cString: curl_easy_strerror(CurlGlobal.initResult)))
        }
        guard let multi = CurlMulti() else { throw ReactorError.curlInitFailed("curl_multi_init returned NULL") }
        self.config = config
        self.multi = multi
        self.queue = DispatchQueue(label: config.label, qos: .userInitiated)
        queue.setSpecific(key: queueKey, value: 1)
        ReactorCore.liveCores.add(1, ordering: .relaxed)

        selfRetain = Unmanaged.passRetained(self)
        let me = Unmanaged.passUnretained(self).toOpaque()
        multi.setSocketCallback(curlSocketCallback)
        multi.set(CURLMOPT_SOCKETDATA, pointer: me)
        multi.setTimerCallback(curlTimerCallback)
        multi.set(CURLMOPT_TIMERDATA, pointer: me)
        multi.set(CURLMOPT_MAXCONNECTS, max(config.maxConnections ?? config.maxInFlightTotal, config.maxInFlightTotal))

        if config.socketWatching == .epollSet {
            epfd = ReactorCore.testingFailEpollCreate ? -1 : cc_epoll_create()
            guard epfd >= 0 else { throw ReactorError.curlInitFailed("epoll_create1 failed") }
            startEpollSource()
        }

        let t = DispatchSource.makeTimerSource(flags: .strict, queue: queue)
        t.setEventHandler { [self] in timerFired() }
        t.setCancelHandler { [self] in
            timerReleased = true
            timer = nil
            checkShutdownProgress()
        }
        t.schedule(deadline: .distantFuture, leeway: .nanoseconds(0))
        t.activate()
        timer = t
    }

    deinit {
        ReactorCore.liveCores.subtract(1, ordering: .relaxed)
        epollFDs.deallocate()
        epollEvents.deallocate()
    }

    var isOnQueue: Bool { DispatchQueue.getSpecific(key: queueKey) != nil }

    /// Runs `body` on the reactor queue: inline when already there, otherwise asynchronously.
    @inline(__always)
    func onQueue(_ body: @escaping @Sendable () -> Void) {
        if isOnQueue { body() } else { queue.async(execute: body) }
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    // MARK: - The loop's one settling step

    /// After any curl call: deliver completions, admit waiting requests, run curl's "now" timeouts, re-arm
    /// the timer. Bounded: after 16 rounds of immediate work it yields to other events with one `async` kick.
    func settle() {
        if inSettle { return }
        inSettle = true
        var rounds = 0
        while true {
            drainCompletions()
            admitWaiting()
            guard runNowRequested else { break }
            rounds += 1
            if rounds > 16 {
                scheduleKick()
                break
            }
            runNowRequested = false
            socketAction(cc_socket_timeout(), 0)
        }
        inSettle = false
        rearmTimer()
        checkShutdownProgress()
    }

    private func scheduleKick() {
        guard !kickScheduled else { return }
        kickScheduled = true
        queue.async { [self] in
            kickScheduled = false
            guard runNowRequested else { return }
            runNowRequested = false
            socketAction(cc_socket_timeout(), 0)
            settle()
        }
    }

    @inline(__always)
    func socketAction(_ fd: Int32, _ bits: Int32) {
        guard !multi.isCleanedUp else { return }
        socketActionCalls += 1
        if testingFailTimeoutActions > 0 && fd == cc_socket_timeout() {
            testingFailTimeoutActions -= 1
            return
        }
        _ = multi.socketAction(fd, bits)
    }

    private func drainCompletions() {
        while let (raw, code) = multi.nextDone() {
            guard let p = cc_private(raw) else { continue }
            let t = Unmanaged<Transfer>.fromOpaque(p).takeUnretainedValue()
            guard t.state == .admitted else { continue }
            finishAdmitted(t, code: code)
        }
    }

    // MARK: - Submission and admission

    /// Accepts a submitted request (on the queue).
    func enqueue(_ t: Transfer) {
        submitted += 1
        guard phase == .running else {
            deliver(t, .failure(TransferError(kind: .shutdown, message: "the reactor is shutting down")))
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
        if let h = hosts[key] { host = h } else { host = HostQueue(key: key); hosts[key] = host }
        t.host = host
        if let overall = t.request.overallTimeout {
            t.overallDeadline = t.submittedAt &+ overall.nanosecondsClamped
        }
        if host.waiting.isEmpty && host.inFlight < config.maxInFlightPerHost && active.count < config.maxInFlightTotal {
            admit(t, now: ReactorCore.now())
        } else {
            t.state = .queued
            host.waiting.append(t)
            queuedCount += 1
            if t.overallDeadline != .max { queueDeadlines.insert(DeadlineEntry(due: t.overallDeadline, transfer: t)) }
            markReady(host)
        }
        settle()
    }

    private func markReady(_ host: HostQueue) {
        if !host.inReadyList && !host.waiting.isEmpty && host.inFlight < config.maxInFlightPerHost {
            host.inReadyList = true
            readyHosts.append(host)
        }
    }

    /// Admits waiting requests while there is room: FIFO per host, hosts served round-robin.
    private func admitWaiting() {
        guard queuedCount > 0 else { return }
        let now = ReactorCore.now()
        while active.count < config.maxInFlightTotal, let host = readyHosts.popFirst() {
            host.inReadyList = false
            while host.inFlight < config.maxInFlightPerHost, let t = host.waiting.popFirst() {
                guard t.state == .queued else { continue }  // cancelled or expired while queued
                queuedCount -= 1
                admit(t, now: now)
                break
            }
            markReady(host)
        }
    }

    /// Hands a request to curl. Its deadline starts now.
    private func admit(_ t: Transfer, now: UInt64) {
        var limit = (t.request.timeout ?? config.defaultTimeout)?.nanosecondsClamped ?? .max
        if t.overallDeadline != .max {
            guard now < t.overallDeadline else {
                deliver(t, .failure(TransferError(kind: .deadline, message: "the overall deadline passed while the request waited for admission", timings: timings(t, now: now))))
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
            deliver(t, .failure(TransferError(kind: kind, message: "libcurl rejected \(failure.option): \(easy.errorMessage(for: failure.code))", curlCode: Int(failure.code.rawValue))))
            return
        }
        t.state = .admitted
        t.easy = easy
        t.activeIndex = active.count
        active.append(t)
        if t.timeoutMs > 0 {
            t.backstopDue = now &+ UInt64(t.timeoutMs) * 1_000_000 &+ ReactorCore.backstopGrace
            activeDeadlines.insert(DeadlineEntry(due: t.backstopDue, transfer: t))
        }
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

    private func finishAdmitted(_ t: Transfer, code: CURLcode) {
        guard let easy = t.easy else { return }
        let result = outcome(t, easy: easy, code: code)
        detach(t)
        deliver(t, result)
    }

    /// Delivers the one completion of `t`, on its callback queue or inline on the reactor queue.
    func deliver(_ t: Transfer, _ result: Result<HTTPResponse, TransferError>) {
        t.state = .finished
        t.host = nil
        completed += 1
        let completion = t.completion
        if let q = t.callbackQueue {
            q.async { completion(result) }
        } else {
            completion(result)
        }
    }

    // MARK: - Cancellation

    func cancel(_ t: Transfer) {
        switch t.state {
        case .created, .finished:
            return
        case .queued:
            queuedCount -= 1
            deliver(t, .failure(TransferError(kind: .cancelled, message: "cancelled before admission", timings: timings(t, now: ReactorCore.now()))))
        case .admitted:
            let now = ReactorCore.now()
            detach(t)
            deliver(t, .failure(TransferError(kind: .cancelled, message: "cancelled in flight", timings: timings(t, now: now))))
        }
        settle()
    }

    // MARK: - Easy handles

    private func makeEasy() -> CurlEasy? {
        guard let easy = CurlEasy() else { return nil }
        easyCount += 1
        configureOnce(easy)
        return easy
    }

    func recycle(_ easy: CurlEasy) {
        if phase == .running || phase == .draining, freeEasy.count < config.maxInFlightTotal {
            freeEasy.append(easy)
        } else {
            easyCount -= 1  // deinit runs curl_easy_cleanup
        }
    }

    // MARK: - Stats

    func snapshot() -> ReactorStats {
        ReactorStats(
            inFlight: active.count, queued: queuedCount, submitted: submitted, completed: completed,
            connectionsOpened: connectionsOpened, socketsWatched: sockets.count + epollInterest.count, liveSources: liveSources,
            pendingCloses: pendingCloses, easyHandles: easyCount, timerFires: timerFires,
            socketActionCalls: socketActionCalls, socketEvents: socketEvents, backstopExpiries: backstopExpiries,
            released: phase == .released)
    }
}

extension Duration {
    /// Nanoseconds, clamped to `0...UInt64.max`.
    public var nanosecondsClamped: UInt64 {
        let c = components
        if c.seconds < 0 { return 0 }
        if c.seconds >= Int64(UInt64.max / 1_000_000_000) - 1 { return .max }
        return UInt64(c.seconds) * 1_000_000_000 + UInt64(c.attoseconds / 1_000_000_000)
    }
}
