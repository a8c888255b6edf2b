// ReactorCore: the queue-confined engine — libcurl's multi handle driven by Dispatch sources and one timer.
import CCurl
import DequeModule
import Dispatch
import HeapModule
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Everything here runs on `queue` and nowhere else; that is the only synchronisation.
///
/// The event loop: Dispatch read/write sources and the single timer call `curl_multi_socket_action`; after each
/// call `settle()` drains `curl_multi_info_read`, admits waiting requests, honours curl's "run now" timer
/// requests and re-arms the timer. curl's callbacks (socket, timer, open/close socket, write, header) only
/// record intent: they never call back into curl (DESIGN.md, reactor rules 2 and 3).
///
/// The collections touched on every request are `@exclusivity(unchecked)`: the queue serialises every access, and
/// no access to one of them spans a call that could reach it again (callbacks only record intent), so the
/// runtime's dynamic exclusivity check — about 1 % of the CPU per request (issue 12) — has nothing to find.
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
    @exclusivity(unchecked) var sockets: [Int32: SocketWatch] = [:]
    /// Owned sockets set aside at `POLL_REMOVE` before they ever connected: curl either closes them through
    /// the close callback (found here) or, in 7.88, with a plain `close()` (forgotten when the number returns).
    var limbo: [Int32: SocketWatch] = [:]
    /// Descriptor numbers whose retired sources have not all run their cancel handlers yet.
    var retiringSources: [Int32: Int] = [:]
    // `.epollSet` watching: the set, its one Dispatch source, curl's interest per socket, poll buffers.
    var epfd: Int32 = -1
    var epollSource: DispatchSourceRead?
    @exclusivity(unchecked) var epollInterest = FDTable()
    let epollFDs: UnsafeMutablePointer<Int32>
    let epollEvents: UnsafeMutablePointer<UInt32>
    var liveSources = 0
    var pendingCloses = 0

    // Requests.
    @exclusivity(unchecked) var active: [Transfer] = []
    /// Which request goes to curl next: per-host FIFO, hosts round-robin, caps, the bounded queue and queued
    /// requests' overall deadlines.
    @exclusivity(unchecked) var admission: Admission<Transfer>
    /// Idle per-host records kept for reuse; past this many, a host's record goes when it becomes idle.
    static let idleHostsKept = 64
    /// Admitted requests' deadlines (counted from curl's first run of the request) plus `backstopGrace`: the
    /// deadline check of last resort. A request curl has not completed by then is first handed back to curl —
    /// `curl_multi_socket_all` has it look at every transfer, and curl then reports its own timeout — and only
    /// if curl still holds it `recheckGrace` later does the reactor complete it itself (`backstopExpiries`).
    ///
    /// Why curl can need that (measured, issue 12): libcurl 7.88's `add_next_timeout` drops every pending expiry
    /// of a transfer whose millisecond-truncated distance is 0, so a transfer that runs for any reason (a socket
    /// event, a connect completing) in the last millisecond before its deadline loses the deadline's expiry,
    /// while `Curl_timeleft` still sees ≥ 1 ms left; on a hanging peer nothing runs it again.
    @exclusivity(unchecked) var activeDeadlines = Heap<DeadlineEntry>()
    /// Admitted requests curl has not run yet: their deadline clock starts when it does (see `socketAction`).
    @exclusivity(unchecked) var startingDeadlines: [Transfer] = []
    static let backstopGrace: UInt64 = 3_000_000
    static let recheckGrace: UInt64 = 20_000_000
    /// Requests completed by the backstop instead of curl.
    var backstopExpiries = 0
    /// Requests whose deadline passed unseen by curl, so that curl was asked to look again.
    var deadlineRechecks = 0
    /// Tests only: never run curl's timeouts nor re-check deadlines, as if libcurl ignored them, so the backstop must act.
    var testingStarveCurlTimeouts = false
    /// Tests only: this many coming `curl_multi_socket_action(CURL_SOCKET_TIMEOUT)` calls fail before curl runs
    /// (as with `CURLM_OUT_OF_MEMORY`), so curl neither acts nor updates its timer.
    var testingFailTimeoutActions = 0
    /// Tests only: `epoll_create1` fails for reactors created while this is set.
    nonisolated(unsafe) static var testingFailEpollCreate = false
    /// Cores alive in this process (created and not yet deinitialised): a leak shows here.
    static let liveCores = Atomic<Int>(0)
    @exclusivity(unchecked) var freeEasy: [CurlEasy] = []
    var easyCount = 0
    @exclusivity(unchecked) var urlCache: [String: URLTarget] = [:]

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
    /// Whether the environment named a proxy when this reactor started (read once; see `CurlEasy.environmentProxies`).
    let environmentProxies = CurlEasy.environmentNamesProxy()

    init(config: ReactorConfiguration) throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw ReactorError.invalidConfiguration(problems) }
        guard CurlGlobal.initResult == CURLE_OK else {
            throw ReactorError.curlInitFailed(String(cString: curl_easy_strerror(CurlGlobal.initResult)))
        }
        // Everything that can fail comes first: nothing may fail once the core has retained itself.
        var epfd: Int32 = -1
        if config.socketWatching == .epollSet {
            epfd = ReactorCore.testingFailEpollCreate ? -1 : cc_epoll_create()
            guard epfd >= 0 else { throw ReactorError.curlInitFailed("epoll_create1 failed") }
        }
        guard let multi = CurlMulti() else {
            if epfd >= 0 { _ = close(epfd) }
            throw ReactorError.curlInitFailed("curl_multi_init returned NULL")
        }
        self.config = config
        admission = Admission(
            maxPerHost: config.maxInFlightPerHost, maxTotal: config.maxInFlightTotal, maxQueued: config.maxQueuedRequests,
            idleHostsKept: ReactorCore.idleHostsKept)
        self.multi = multi
        self.epfd = epfd
        let pollCapacity = epfd >= 0 ? 256 : 1
        epollFDs = .allocate(capacity: pollCapacity)
        epollEvents = .allocate(capacity: pollCapacity)
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
        if usesEpollSet { startEpollSource() }

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

    /// Every entry point of the core (curl's callbacks, Dispatch handlers, calls from `CurlReactor`) checks that
    /// it runs on the reactor queue: the queue is the core's only synchronisation.
    @inline(__always)
    func assertOnQueue() {
        dispatchPrecondition(condition: .onQueue(queue))
    }

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
        if usesEpollSet { deleteParkedSockets() }
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
        let rc: CURLMcode
        if testingFailTimeoutActions > 0 && fd == cc_socket_timeout() {
            testingFailTimeoutActions -= 1
            rc = CURLM_OUT_OF_MEMORY
        } else {
            rc = multi.socketAction(fd, bits)
        }
        if rc != CURLM_OK { resynchroniseCurlTimer() }
        if !startingDeadlines.isEmpty { startDeadlines() }
    }

    /// curl has now run the requests added since the last call (every `socket_action` runs the "run now"
    /// expiry `curl_multi_add_handle` sets), so each one's deadline, as curl counts it, started no later than
    /// now. Counting from admission instead put the backstop ahead of curl's own deadline whenever many
    /// requests were admitted in one batch.
    private func startDeadlines() {
        let now = ReactorCore.now()
        for t in startingDeadlines where t.state == .admitted {
            t.backstopDue = now &+ UInt64(t.timeoutMs) * 1_000_000 &+ ReactorCore.backstopGrace
            activeDeadlines.insert(DeadlineEntry(due: t.backstopDue, transfer: t))
        }
        startingDeadlines.removeAll(keepingCapacity: true)
    }

    /// A failed `curl_multi_socket_action` returns before curl updates its timer (and a timeout call has just
    /// disarmed ours): ask curl when it next wants to run. "Now" becomes 1 ms, so a failure that persists
    /// retries at that pace instead of spinning.
    func resynchroniseCurlTimer() {
        guard let ms = multi.timeout() else { return }
        onCurlTimer(ms: ms == 0 ? 1 : ms)
    }

    func drainCompletions() {
        while let (raw, code) = multi.nextDone() {
            guard let p = cc_private(raw), let t = Unmanaged<CurlEasy>.fromOpaque(p).takeUnretainedValue().transfer else { continue }
            guard t.state == .admitted else { continue }
            finishAdmitted(t, code: code)
        }
    }

    // MARK: - Easy handles

    func makeEasy() -> CurlEasy? {
        guard let easy = CurlEasy(environmentProxies: environmentProxies) else { return nil }
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
        assertOnQueue()
        return ReactorStats(
            inFlight: active.count, queued: admission.queued, submitted: submitted, completed: completed,
            connectionsOpened: connectionsOpened, socketsWatched: sockets.count + epollInterest.count, liveSources: liveSources,
            pendingCloses: pendingCloses, easyHandles: easyCount, timerFires: timerFires,
            socketActionCalls: socketActionCalls, socketEvents: socketEvents, deadlineRechecks: deadlineRechecks, backstopExpiries: backstopExpiries,
            released: phase == .released)
    }
}
