// PublishRun: one alert's publish on the reactor queue — formats, sends, reads verdicts and feeds FanoutMachine.
import CurlReactor
import Dispatch
import FanoutCore

/// Lives on the reactor queue from `start()` to its single completion.
final class PublishRun: @unchecked Sendable {
    let publisher: FanoutPublisher
    let alert: Alert
    let targets: [Target]
    let options: PublishOptions
    let batch: AlertBatch?
    /// True when `batch` is published as one request per target (`AlertFormatter.request(forGroup:)`).
    let group: Bool
    let completion: @Sendable (Result<PublishReport, PublishError>) -> Void
    var machine: FanoutMachine
    var handles: [Int: RequestHandle] = [:]
    var finished = false
    /// What the targets' requests share (one webhook body for every webhook target).
    let memo = FormatMemo()

    init(
        publisher: FanoutPublisher, alert: Alert, targets: [Target], options: PublishOptions, batch: AlertBatch?, group: Bool = false,
        completion: @escaping @Sendable (Result<PublishReport, PublishError>) -> Void
    ) {
        self.group = group
        self.publisher = publisher
        self.alert = alert
        self.targets = targets
        self.options = options
        self.batch = batch
        self.completion = completion
        let candidates = targets.map { t in
            let limit = t.effectiveRateLimit
            return FanoutMachine.Candidate(
                name: t.name, type: t.type.rawValue, enabled: t.enabled, timeoutSeconds: t.timeoutSeconds,
                rateKey: limit == nil ? nil : PublishRun.credentialKey(t), ratePerSecond: limit?.perSecond, rateBurst: limit?.burst ?? 1)
        }
        machine = FanoutMachine(
            alertName: alert.name, fingerprint: alert.fingerprint, status: alert.status.rawValue, candidates: candidates,
            options: .init(deadlineSeconds: options.deadline.seconds, strategy: options.strategy, defaultTimeoutSeconds: options.defaultTargetTimeout.seconds),
            now: WallClock.monotonic())
    }

    /// Rate limits apply per credential: the type plus a hash of the secret (or of the URL, which is the
    /// credential for Slack). The secret itself is never kept here.
    static func credentialKey(_ t: Target) -> String {
        "\(t.type.rawValue):\(Alert.fingerprint(of: ["k": t.secret?.reveal() ?? t.url]))"
    }

    func start() {
        apply(machine.start(now: WallClock.monotonic(), book: &publisher.book, rng: &publisher.rng))
    }

    func cancel() {
        guard !finished else { return }
        let inFlight = handles
        handles.removeAll()
        apply(machine.cancel(now: WallClock.monotonic(), book: &publisher.book))
        for (_, h) in inFlight { h.cancel() }
    }

    private func apply(_ actions: [FanoutMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let index, let attempt, let timeout):
                send(index: index, attempt: attempt, timeoutSeconds: timeout)
            case .wait(let index, let seconds):
                publisher.queue.asyncAfter(deadline: .now() + max(0, seconds)) { [self] in
                    guard !finished else { return }
                    apply(machine.timerFired(index: index, now: WallClock.monotonic(), book: &publisher.book, rng: &publisher.rng))
                }
            case .complete(let report):
                finish(report)
            }
        }
    }

    private func finished(_ index: Int, _ outcome: FanoutMachine.AttemptOutcome) {
        apply(machine.attemptFinished(index: index, outcome: outcome, now: WallClock.monotonic(), book: &publisher.book, rng: &publisher.rng))
    }

    private func send(index: Int, attempt: Int, timeoutSeconds: Double) {
        let target = targets[index]
        let formatter = Formatters.formatter(for: target.type)
        var context = FormatContext(
            now: WallClock.now(), batch: batch,
            rootlyAlertID: target.type == .rootly ? publisher.rootlyIndex.id(target: target.name, fingerprint: alert.fingerprint) : nil)
        if !group { context.memo = memo }
        let request: OutboundRequest
        do {
            if group, let batch {
                guard let r = try formatter.request(forGroup: batch, target: target, context: context) else {
                    finished(
                        index,
                        .failed(
                            kind: "format", status: nil, message: "\(target.type.rawValue) targets take one alert per request, not a group",
                            retryable: false, safeToRepeat: false, retryAfterSeconds: nil, action: nil))
                    return
                }
                request = r
            } else {
                request = try formatter.request(for: alert, target: target, context: context)
            }
        } catch {
            let kind = error.kind == .missingState ? "missing_state" : "format"
            finished(
                index, .failed(kind: kind, status: nil, message: error.message, retryable: false, safeToRepeat: false, retryAfterSeconds: nil, action: nil))
            return
        }
        let lane = publisher.lane(for: target, options: options)
        lane.acquire { [self] in
            guard !finished else {
                lane.release()
                return
            }
            // Time spent waiting for the lane comes out of this attempt's deadline.
            let now = WallClock.monotonic()
            let timeout = min(timeoutSeconds, machine.deadline - now)
            guard timeout > 0.001 else {
                lane.release()
                finished(
                    index,
                    .failed(
                        kind: "timeout", status: nil, message: "the publish deadline passed while waiting for a slot to \(target.name)",
                        retryable: true, safeToRepeat: true, retryAfterSeconds: nil, action: request.action))
                return
            }
            let http = HTTPRequest(
                method: request.method, url: request.url, headers: request.headers,
                body: request.body, timeout: .microseconds(Int64((timeout * 1e6).rounded(.up))),
                connectTimeout: .microseconds(Int64((min(timeout, 5) * 1e6).rounded(.up))),
                captureHeaders: ["retry-after"], maxResponseBodyBytes: 64 * 1024, connection: target.connection)
            handles[index] = publisher.reactor.submit(http) { [self] result in
                lane.release()
                handles[index] = nil
                received(index: index, target: target, request: request, formatter: formatter, result: result)
            }
        }
    }

    private func received(
        index: Int, target: Target, request: OutboundRequest, formatter: any AlertFormatter,
        result: Result<HTTPResponse, TransferError>
    ) {
        guard !finished else { return }
        let outcome: FanoutMachine.AttemptOutcome
        switch result {
        case .success(let response):
            let retryAfterHeader = response.header("retry-after")
            switch formatter.verdict(status: response.status, body: response.body, retryAfter: retryAfterHeader) {
            case .delivered(let detail):
                if target.type == .rootly {
                    if request.action == "create", let id = detail {
                        publisher.rootlyIndex.remember(target: target.name, fingerprint: alert.fingerprint, id: id)
                    } else if request.action == "resolve" {
                        publisher.rootlyIndex.forget(target: target.name, fingerprint: alert.fingerprint)
                    }
                }
                outcome = .delivered(status: response.status, action: request.action, detail: detail)
            case .permanent(let message):
                outcome = .failed(
                    kind: "http_status", status: response.status, message: message, retryable: false,
                    safeToRepeat: false, retryAfterSeconds: nil, action: request.action)
            case .retryable(let message, let retryAfter):
                let seconds = retryAfter.flatMap { RetryAfter.seconds($0, nowEpochSeconds: WallClock.epochSeconds()) }
                outcome = .failed(
                    kind: "http_status", status: response.status, message: message, retryable: true,
                    safeToRepeat: request.idempotent || RetryPolicy.provesNotProcessed(kind: "http_status", status: response.status),
                    retryAfterSeconds: seconds, action: request.action)
            case .gone(let message):
                // FanoutMachine remembers the target as gone (GuardBook) and skips it from now on.
                outcome = .failed(
                    kind: FanoutMachine.endpointGoneKind, status: response.status, message: message, retryable: false,
                    safeToRepeat: false, retryAfterSeconds: nil, action: request.action)
            }
        case .failure(let error):
            let kind: String
            switch error.kind {
            case .deadline: kind = "timeout"
            case .cancelled, .shutdown: kind = "cancelled"
            default: kind = error.kind.rawValue
            }
            outcome = .failed(
                kind: kind, status: nil, message: error.message, retryable: RetryPolicy.isRetryableTransport(kind),
                safeToRepeat: request.idempotent || RetryPolicy.provesNotProcessed(kind: kind, status: nil),
                retryAfterSeconds: nil, action: request.action)
        }
        finished(index, PublishRun.scrubbed(outcome, target: target))
    }

    /// Vendor bodies and transport messages could echo a credential: the target's secret and URL (a Slack
    /// webhook URL is itself a secret) are replaced before anything reaches a report.
    static func scrubbed(_ outcome: FanoutMachine.AttemptOutcome, target: Target) -> FanoutMachine.AttemptOutcome {
        guard case .failed(let kind, let status, let message, let retryable, let safe, let retryAfter, let action) = outcome else { return outcome }
        return .failed(
            kind: kind, status: status, message: scrubbedMessage(message, target: target), retryable: retryable,
            safeToRepeat: safe, retryAfterSeconds: retryAfter, action: action)
    }

    /// `message` without the target's secret, proxy URL, key password or URL.
    static func scrubbedMessage(_ message: String, target: Target) -> String {
        var m = message
        for secret in [target.secret?.reveal(), target.connection?.proxy, target.connection?.clientKeyPassword] {
            if let secret, !secret.isEmpty { m = m.replacing(secret, with: "<redacted>") }
        }
        return m.replacing(target.url, with: "<\(target.name) url>")
    }

    private func finish(_ report: PublishReport) {
        guard !finished else { return }
        finished = true
        let cancelled = report.results.contains { $0.errorKind == "cancelled" }
        let result: Result<PublishReport, PublishError>
        if cancelled && report.succeeded < report.results.count {
            result = .failure(.cancelled(report))
        } else if report.succeeded > 0 {
            result = .success(report)
        } else if report.failed > 0 {
            result = .failure(.allFailed(report))
        } else if report.results.contains(where: { [.unhealthy, .degraded, .circuitOpen, .rateLimited, .endpointGone].contains($0.skipReason) }) {
            result = .failure(.noHealthyTargets(report))
        } else {
            result = .failure(.noEnabledTargets)
        }
        publisher.runFinished(self, result)
        completion(result)
    }
}
