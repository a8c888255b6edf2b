// LoadEngine: drives a load run on the reactor queue — closed loop or constant-rate open loop — and measures it.
import AlertFanout
import CurlReactor
import Dispatch

/// What the engine hands out while and after it runs.
public struct LoadResult: Sendable {
    /// The plan that ran.
    public var plan: LoadPlan
    /// What each URL of the plan measured, in plan order.
    public var perURL: [LoadStats]
    /// From the first send to the last completion.
    public var elapsedSeconds: Double
    /// CPU time this process used during the run (user + system).
    public var cpuSeconds: Double
    /// True when `interrupt()` ended the run early.
    public var interrupted: Bool
    /// Connections libcurl opened (new TCP connections, not reused ones).
    public var connectionsOpened: Int

    /// Every URL's statistics merged.
    public var total: LoadStats { perURL.reduce(into: LoadStats()) { $0.merge($1) } }
}

/// A once-a-second snapshot while a run goes on.
public struct LoadProgress: Sendable {
    /// Seconds since the start.
    public var elapsedSeconds: Double
    /// Requests completed so far (with or without a response).
    public var requests: Int
    /// Requests that ended without a response.
    public var errors: Int
    /// The 99th percentile latency so far, in microseconds.
    public var p99Micros: UInt64
}

/// Runs on the reactor queue only (all state below is confined there).
///
/// - Closed loop: `concurrency` requests in flight; each completion sends the next. Latency is measured from
///   the actual send.
/// - Open loop: request i is due `i / rate` seconds after the start, whatever happened before ("constant
///   arrival rate"); at most `concurrency` are in flight, the rest wait in a backlog. Latency is measured from
///   the **intended** send time, so a stalled server shows up in the percentiles instead of silently slowing
///   the sender (coordinated omission); how far sending fell behind is reported as the schedule lag.
public final class LoadEngine: @unchecked Sendable {
    /// The reactor every request goes through.
    public let reactor: CurlReactor
    /// The plan being run.
    public let plan: LoadPlan
    // Touched on every request, only on the reactor queue, never across a call that could reach them again.
    @exclusivity(unchecked) private var schedule: LoadSchedule
    @exclusivity(unchecked) private var perURL: [LoadStats]
    private var issued = 0
    private var inFlight = 0
    private var start: UInt64 = 0
    private var stopAt: UInt64 = 0
    private var stopped = false
    private var interrupted = false
    private var ticker: DispatchSourceTimer?
    private var reporter: DispatchSourceTimer?
    private var done: CheckedContinuation<LoadResult, Never>?
    private var cpuStart = 0.0
    @exclusivity(unchecked) private var interval: MicrosHistogram?
    /// Slots of requests no longer in flight, reused by the next send (at most `concurrency` ever exist).
    @exclusivity(unchecked) private var freeSlots: [RequestSlot] = []
    private var intervalStart: UInt64 = 0
    /// Called once a second on the reactor queue (progress line).
    public var onProgress: (@Sendable (LoadProgress) -> Void)?
    /// Called once a second with that second's latency histogram (HdrHistogram interval log).
    public var onInterval: (@Sendable (_ startOffset: Double, _ length: Double, _ histogram: MicrosHistogram) -> Void)?

    /// Throws `LoadError` naming every problem of `plan` (see `LoadPlan.problems()`).
    public init(reactor: CurlReactor, plan: LoadPlan) throws {
        let problems = plan.problems()
        guard problems.isEmpty else { throw LoadError("the load plan cannot run: " + problems.joined(separator: "; ")) }
        self.reactor = reactor
        self.plan = plan
        schedule = LoadSchedule(urls: plan.urls, rate: plan.rate, seed: plan.seed)
        perURL = Array(repeating: LoadStats(), count: plan.urls.count)
    }

    /// Runs the plan to its end (count, duration or `interrupt()`) and returns what it measured. Call once.
    public func run() async -> LoadResult {
        await withCheckedContinuation { (c: CheckedContinuation<LoadResult, Never>) in
            reactor.queue.async { [self] in
                done = c
                begin()
            }
        }
    }

    /// Stops sending (Ctrl-C); in-flight requests get `grace` to finish, then the reactor cancels them.
    public func interrupt(grace: Duration = .seconds(2)) {
        reactor.queue.async { [self] in
            guard !stopped || inFlight > 0 else { return }
            interrupted = true
            stopIssuing()
            let reactor = self.reactor
            reactor.queue.asyncAfter(deadline: .now() + grace.seconds) { [self] in
                if inFlight > 0 { reactor.shutdown(.cancel) }
            }
            finishIfDone()
        }
    }

    private func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    private func begin() {
        cpuStart = processCPUSeconds()
        start = now()
        intervalStart = start
        stopAt = start &+ plan.duration.nanosecondsClamped
        if onInterval != nil { interval = makeMicrosHistogram() }
        if onProgress != nil || onInterval != nil {
            let t = DispatchSource.makeTimerSource(queue: reactor.queue)
            t.schedule(deadline: .now() + 1, repeating: 1, leeway: .milliseconds(5))
            t.setEventHandler { [self] in report() }
            t.activate()
            reporter = t
        }
        if plan.rate != nil {
            let t = DispatchSource.makeTimerSource(flags: .strict, queue: reactor.queue)
            t.schedule(deadline: .now(), repeating: .milliseconds(1), leeway: .microseconds(100))
            t.setEventHandler { [self] in pumpOpenLoop() }
            t.activate()
            ticker = t
        } else {
            for _ in 0..<plan.concurrency { issueClosed() }
        }
        finishIfDone()
    }

    private func mayIssue(_ t: UInt64) -> Bool {
        !stopped && issued < plan.maxRequests && t < stopAt
    }

    /// `at`: the clock now, when the caller has just read it (a completion), so a request costs one clock read less.
    private func issueClosed(at current: UInt64? = nil) {
        let t = current ?? now()
        guard mayIssue(t) else {
            stopIssuing()
            return
        }
        send(urlIndex: schedule.nextURL(), intended: t, sentAt: t)
    }

    /// Sends every request that is due, up to the in-flight cap.
    private func pumpOpenLoop() {
        guard plan.rate != nil else { return }
        let t = now()
        if t >= stopAt || issued >= plan.maxRequests {
            stopIssuing()
            finishIfDone()
            return
        }
        let due = min(plan.maxRequests, schedule.dueCount(elapsedNanoseconds: t - start))
        while issued < due && inFlight < plan.concurrency && !stopped {
            let intended = start &+ schedule.intendedNanoseconds(issued)
            send(urlIndex: schedule.nextURL(), intended: intended, sentAt: t)
        }
    }

    private func send(urlIndex: Int, intended: UInt64, sentAt: UInt64) {
        issued += 1
        inFlight += 1
        if plan.rate != nil {
            _ = perURL[urlIndex].lag.record(max(1, (sentAt &- intended) / 1000))
        }
        let slot = freeSlots.popLast() ?? RequestSlot(engine: self)
        slot.urlIndex = urlIndex
        slot.intended = intended
        // The closure captures one object reference, which Swift uses as its context: no allocation per request.
        reactor.submit(plan.request(urlIndex)) { [slot] result in slot.engine.completed(slot, result) }
    }

    private func completed(_ slot: RequestSlot, _ result: Result<HTTPResponse, TransferError>) {
        let urlIndex = slot.urlIndex
        let intended = slot.intended
        freeSlots.append(slot)
        inFlight -= 1
        let completedAt = now()
        let latency = (completedAt &- intended) / 1000
        perURL[urlIndex].record(result, latencyMicros: latency)
        if interval != nil { _ = interval!.record(max(1, min(latency, 3_600_000_000))) }
        if plan.rate == nil {
            issueClosed(at: completedAt)
        } else if !stopped {
            pumpOpenLoop()
        }
        finishIfDone()
    }

    private func stopIssuing() {
        guard !stopped else { return }
        stopped = true
        ticker?.cancel()
        ticker = nil
    }

    private func report(final: Bool = false) {
        let t = now()
        if let cb = onInterval, var h = interval {
            cb(Double(intervalStart - start) / 1e9, Double(t - intervalStart) / 1e9, h)
            h.reset()
            interval = h
            intervalStart = t
        }
        if let cb = onProgress, !final {
            var requests = 0
            var errors = 0
            var lat = makeMicrosHistogram()
            for s in perURL {
                requests += s.requests
                errors += s.errors
                lat.add(s.latency)
            }
            cb(
                LoadProgress(
                    elapsedSeconds: Double(t - start) / 1e9, requests: requests, errors: errors,
                    p99Micros: lat.totalCount > 0 ? lat.valueAtPercentile(99) : 0))
        }
    }

    private func finishIfDone() {
        guard stopped || issued >= plan.maxRequests, inFlight == 0, let c = done else { return }
        done = nil
        freeSlots = []  // each slot holds the engine
        stopIssuing()
        reporter?.cancel()
        reporter = nil
        if interval != nil { report(final: true) }
        let elapsed = Double(now() - start) / 1e9
        c.resume(
            returning: LoadResult(
                plan: plan, perURL: perURL, elapsedSeconds: elapsed,
                cpuSeconds: processCPUSeconds() - cpuStart, interrupted: interrupted,
                connectionsOpened: reactor.stats().connectionsOpened))
    }
}

/// What a request in flight needs at its completion. Touched on the reactor queue only, like the engine.
private final class RequestSlot: @unchecked Sendable {
    let engine: LoadEngine
    var urlIndex = 0
    var intended: UInt64 = 0

    init(engine: LoadEngine) { self.engine = engine }
}
