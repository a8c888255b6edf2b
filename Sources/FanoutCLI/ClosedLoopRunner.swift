// ClosedLoopRunner: keeps N requests in flight on the reactor until a count or a duration is reached.
import CurlReactor
import Dispatch
import Histogram

/// What a closed-loop run measured.
struct LoadSummary: Sendable {
    var requests = 0
    var statuses: [Int: Int] = [:]
    var errors: [TransferError.Kind: Int] = [:]
    var newConnections = 0
    var latencyMicros = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    var elapsedSeconds = 0.0
    var cpuSeconds = 0.0
    var firstError: String?
}

/// Closed loop: `concurrency` workers, each submitting its next request from the completion of its last one,
/// on the reactor queue (no hop to another thread). Stops issuing at `maxRequests` or `duration`, whichever
/// comes first, and finishes when the last issued request completes.
final class ClosedLoopRunner: @unchecked Sendable {
    private let reactor: CurlReactor
    private let makeRequest: @Sendable (Int) -> HTTPRequest
    private let concurrency: Int
    private let maxRequests: Int
    private let stopAt: UInt64
    // Confined to the reactor queue once started.
    private var issued = 0
    private var inFlight = 0
    private var summary = LoadSummary()
    private var done: CheckedContinuation<LoadSummary, Never>?

    init(reactor: CurlReactor, concurrency: Int, maxRequests: Int, duration: Duration, makeRequest: @escaping @Sendable (Int) -> HTTPRequest) {
        self.reactor = reactor
        self.concurrency = concurrency
        self.maxRequests = maxRequests
        self.makeRequest = makeRequest
        let c = duration.components
        let ns = UInt64(max(0, c.seconds)) * 1_000_000_000 + UInt64(max(0, c.attoseconds) / 1_000_000_000)
        self.stopAt = DispatchTime.now().uptimeNanoseconds + ns
    }

    func run() async -> LoadSummary {
        let cpu0 = processCPUSeconds()
        let t0 = DispatchTime.now().uptimeNanoseconds
        var s = await withCheckedContinuation { (c: CheckedContinuation<LoadSummary, Never>) in
            reactor.queue.async { [self] in
                done = c
                for _ in 0..<concurrency { issueNext() }
                finishIfDone()
            }
        }
        s.elapsedSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        s.cpuSeconds = processCPUSeconds() - cpu0
        return s
    }

    private func issueNext() {
        guard issued < maxRequests, DispatchTime.now().uptimeNanoseconds < stopAt else { return }
        let i = issued
        issued += 1
        inFlight += 1
        reactor.submit(makeRequest(i)) { [self] result in
            completed(result)
        }
    }

    private func completed(_ result: Result<HTTPResponse, TransferError>) {
        inFlight -= 1
        summary.requests += 1
        switch result {
        case .success(let r):
            summary.statuses[r.status, default: 0] += 1
            if r.newConnection { summary.newConnections += 1 }
            _ = summary.latencyMicros.record(UInt64(max(1, micros(r.timings.sinceSubmission))))
        case .failure(let e):
            summary.errors[e.kind, default: 0] += 1
            if summary.firstError == nil { summary.firstError = e.description }
            _ = summary.latencyMicros.record(UInt64(max(1, micros(e.timings.sinceSubmission))))
        }
        issueNext()
        finishIfDone()
    }

    private func finishIfDone() {
        guard inFlight == 0, let c = done else { return }
        done = nil
        c.resume(returning: summary)
    }
}

func micros(_ d: Duration) -> Int64 {
    let c = d.components
    return c.seconds * 1_000_000 + c.attoseconds / 1_000_000_000_000
}
