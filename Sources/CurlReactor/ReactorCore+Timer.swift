// ReactorCore+Timer: the single Dispatch timer serving curl's timeouts and queued requests' overall deadlines.
import CCurl
import Dispatch
import HeapModule

extension ReactorCore {
    /// `CURLMOPT_TIMERFUNCTION`: `-1` disarms, `0` asks to run now (done by `settle()` after curl returns),
    /// anything else sets curl's due time. The Dispatch timer is re-armed in `settle()`.
    func onCurlTimer(ms: Int) {
        assertOnQueue()
        if ms < 0 {
            curlTimerDue = .max
        } else if ms == 0 {
            curlTimerDue = .max
            runNowRequested = true
        } else {
            curlTimerDue = ReactorCore.now() &+ UInt64(ms) * 1_000_000
        }
    }

    /// Arms the one timer for the earliest of curl's due time, the first queued request's overall deadline and
    /// the first admitted request's backstop deadline.
    /// Only moves it earlier: a later due time lets the armed timer fire once and re-arm, saving a syscall
    /// on every curl update.
    func rearmTimer() {
        guard phase == .running || phase == .draining, let timer else { return }
        compactDeadlines()
        var due = curlTimerDue
        if let first = admission.nextDeadline(), first < due { due = first }
        while let first = activeDeadlines.min, first.transfer.state != .admitted {
            _ = activeDeadlines.popMin()
        }
        if let first = activeDeadlines.min, first.due < due { due = first.due }
        guard due < timerArmedFor else { return }
        timerArmedFor = due
        timer.schedule(deadline: DispatchTime(uptimeNanoseconds: due), leeway: .nanoseconds(0))
    }

    /// Entries of finished requests leave the heaps lazily, from the top; one long-lived request at the top
    /// would let the rest pile up, so rebuild a heap once it holds far more entries than live requests.
    private func compactDeadlines() {
        if activeDeadlines.count > 2 * active.count + 1024 {
            activeDeadlines = Heap(active.filter { $0.backstopDue != .max }.map { DeadlineEntry(due: $0.backstopDue, transfer: $0) })
        }
    }

    func timerFired() {
        assertOnQueue()
        timerFires += 1
        timerArmedFor = .max
        let now = ReactorCore.now()
        if curlTimerDue <= now && !testingStarveCurlTimeouts {
            curlTimerDue = .max
            socketAction(cc_socket_timeout(), 0)
        }
        // curl's results first: a request curl has just completed — at its deadline, typically, when this timer
        // fires late — is curl's to report, not the backstop's.
        drainCompletions()
        expireQueued(now: now)
        expireAdmitted(now: now)
        settle()
    }

    /// Admitted requests past their deadline (plus grace) that curl has not completed: first have curl look at
    /// every transfer again, so that it reports its own timeout; complete those it still holds `recheckGrace`
    /// later (the backstop, counted in `backstopExpiries`).
    private func expireAdmitted(now: UInt64) {
        var overdue: [Transfer] = []
        while let first = activeDeadlines.min, first.due <= now {
            _ = activeDeadlines.popMin()
            let t = first.transfer
            guard t.state == .admitted, first.due == t.backstopDue else { continue }
            overdue.append(t)
        }
        guard !overdue.isEmpty else { return }
        if !testingStarveCurlTimeouts && overdue.contains(where: { !$0.deadlineRechecked }) {
            deadlineRechecks += overdue.count(where: { !$0.deadlineRechecked })
            if !multi.isCleanedUp {
                socketActionCalls += 1
                if multi.checkAll() != CURLM_OK { resynchroniseCurlTimer() }
            }
            drainCompletions()
        }
        for t in overdue where t.state == .admitted {
            if !t.deadlineRechecked && !testingStarveCurlTimeouts {
                t.deadlineRechecked = true
                t.backstopDue = now &+ ReactorCore.recheckGrace
                activeDeadlines.insert(DeadlineEntry(due: t.backstopDue, transfer: t))
                continue
            }
            backstopExpiries += 1
            let timings = timings(t, now: now)
            detach(t)
            deliver(
                t,
                .failure(
                    TransferError(
                        kind: .deadline, message: "Operation timed out after \(t.timeoutMs) milliseconds (completed by the reactor: libcurl did not)",
                        timings: timings)))
        }
    }

    /// Completes queued requests whose overall deadline has passed; they never reach curl.
    private func expireQueued(now: UInt64) {
        for t in admission.expire(now: now) {
            t.hostSlot = -1
            deliver(
                t,
                .failure(
                    TransferError(kind: .deadline, message: "the overall deadline passed while the request waited for admission", timings: timings(t, now: now))
                )
            )
        }
    }
}
