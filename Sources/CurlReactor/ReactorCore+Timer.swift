// ReactorCore+Timer: the single Dispatch timer serving curl's timeouts and queued requests' overall deadlines.
import CCurl
import Dispatch

extension ReactorCore {
    /// `CURLMOPT_TIMERFUNCTION`: `-1` disarms, `0` asks to run now (done by `settle()` after curl returns),
    /// anything else sets curl's due time. The Dispatch timer is re-armed in `settle()`.
    func onCurlTimer(ms: Int) {
        if ms < 0 {
            curlTimerDue = .max
        } else if ms == 0 {
            curlTimerDue = .max
            runNowRequested = true
        } else {
            curlTimerDue = ReactorCore.now() &+ UInt64(ms) * 1_000_000
        }
    }

    /// Arms the one timer for the earlier of curl's due time and the first queued request's overall deadline.
    /// Only moves it earlier: a later due time lets the armed timer fire once and re-arm, saving a syscall
    /// on every curl update.
    func rearmTimer() {
        guard phase == .running || phase == .draining, let timer else { return }
        var due = curlTimerDue
        while let first = queueDeadlines.min, first.transfer.state != .queued {
            _ = queueDeadlines.popMin()
        }
        if let first = queueDeadlines.min, first.due < due { due = first.due }
        guard due < timerArmedFor else { return }
        timerArmedFor = due
        timer.schedule(deadline: DispatchTime(uptimeNanoseconds: due), leeway: .nanoseconds(0))
    }

    func timerFired() {
        timerFires += 1
        timerArmedFor = .max
        let now = ReactorCore.now()
        if curlTimerDue <= now {
            curlTimerDue = .max
            socketAction(cc_socket_timeout(), 0)
        }
        expireQueued(now: now)
        settle()
    }

    /// Completes queued requests whose overall deadline has passed; they never reach curl.
    private func expireQueued(now: UInt64) {
        while let first = queueDeadlines.min, first.due <= now {
            _ = queueDeadlines.popMin()
            let t = first.transfer
            guard t.state == .queued else { continue }
            queuedCount -= 1
            deliver(t, .failure(TransferError(kind: .deadline, message: "the overall deadline passed while the request waited for admission", timings: timings(t, now: now))))
        }
    }
}
