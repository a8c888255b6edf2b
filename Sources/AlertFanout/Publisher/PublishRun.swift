// PublishRun: one alert's publish on the reactor queue — carries out FanoutMachine's actions: formats and sends,
// reports what each response or transfer error was, waits when told to.
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
    /// The machine's run id: names this publish in lane tickets and in the publisher's table of runs.
    var id: UInt64 { machine.runID }
    /// The transfer in flight per target (by index).
    var handles: [RequestHandle?]
    var finished = false
    /// What the targets' requests share (one webhook body for every webhook target).
    let memo = FormatMemo()

    init(
        publisher: FanoutPublisher, id: UInt64, alert: Alert, targets: [Target], options: PublishOptions, batch: AlertBatch?,
        group: Bool = false, completion: @escaping @Sendable (Result<PublishReport, PublishError>) -> Void
    ) {
        self.group = group
        self.publisher = publisher
        self.alert = alert
        self.targets = targets
        self.options = options
        self.batch = batch
        self.completion = completion
        handles = Array(repeating: nil, count: targets.count)
        let candidates = targets.map { t in
            let limit = t.effectiveRateLimit
            return FanoutMachine.Candidate(
                name: t.name, type: t.type.rawValue, enabled: t.enabled, timeoutSeconds: t.timeoutSeconds,
                rateKey: limit == nil ? nil : PublishRun.credentialKey(t), ratePerSecond: limit?.perSecond, rateBurst: limit?.burst ?? 1,
                maxInFlight: options.maxInFlightPerTarget ?? t.maxInFlight)
        }
        machine = FanoutMachine(
            alertName: alert.name, fingerprint: alert.fingerprint, status: alert.status.rawValue, candidates: candidates,
            options: .init(deadlineSeconds: options.deadline.seconds, strategy: options.strategy, defaultTimeoutSeconds: options.defaultTargetTimeout.seconds),
            now: WallClock.monotonic(), runID: id)
    }

    /// Rate limits apply per credential: the type plus a hash of the secret (or of the URL, which is the
    /// credential for Slack). The secret itself is never kept here.
    static func credentialKey(_ t: Target) -> String {
        "\(t.type.rawValue):\(Alert.fingerprint(of: ["k": t.secret?.reveal() ?? t.url]))"
    }

    func start() {
        apply(machine.start(now: WallClock.monotonic(), book: &publisher.book))
    }

    /// A lane place this publish waited for is free (`FanoutMachine.Action.resume`).
    func laneGranted(index: Int) {
        apply(machine.laneGranted(index: index, now: WallClock.monotonic(), book: &publisher.book))
    }

    func cancel() {
        guard !finished else { return }
        let inFlight = handles.compactMap { $0 }
        for i in handles.indices { handles[i] = nil }
        apply(machine.cancel(now: WallClock.monotonic(), book: &publisher.book))
        for h in inFlight { h.cancel() }
    }

    private func apply(_ actions: [FanoutMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let index, let attempt, let timeout):
                send(index: index, attempt: attempt, timeoutSeconds: timeout)
            case .wait(let index, let seconds):
                publisher.queue.asyncAfter(deadline: .now() + max(0, seconds)) { [self] in
                    guard !finished else { return }
                    apply(machine.timerFired(index: index, now: WallClock.monotonic(), book: &publisher.book))
                }
            case .resume(let ticket):
                publisher.resume(ticket)
            case .observe(let event):
                publisher.observe(event, targets: targets)
            case .complete(let report):
                finish(report)
            }
        }
    }

    private func finished(_ index: Int, _ outcome: FanoutMachine.AttemptOutcome) {
        apply(machine.attemptFinished(index: index, outcome: outcome, now: WallClock.monotonic(), book: &publisher.book, rng: &publisher.rng))
    }

    private func send(index: Int, attempt: Int, timeoutSeconds timeout: Double) {
        // The target is read in place (`targets[index]`), not copied: a copy retains and releases each of its
        // strings and arrays, twice per delivery.
        let type = targets[index].type
        let formatter = Formatters.formatter(for: type)
        var context = FormatContext(
            now: WallClock.now(), batch: batch,
            rootlyAlertID: type == .rootly ? publisher.rootlyIndex.id(target: targets[index].name, fingerprint: alert.fingerprint) : nil)
        if !group { context.memo = memo }
        let request: OutboundRequest
        do {
            if group, let batch {
                guard let r = try formatter.request(forGroup: batch, target: targets[index], context: context) else {
                    finished(index, .notSent(.format, message: "\(type.rawValue) targets take one alert per request, not a group"))
                    return
                }
                request = r
            } else {
                request = try formatter.request(for: alert, target: targets[index], context: context)
            }
        } catch {
            let kind: FailureKind
            switch error.kind {
            case .missingState: kind = .missingState
            case .missingSecret: kind = .missingSecret
            }
            finished(index, .notSent(kind, message: error.message))
            return
        }
        // `timeout` counts once the request has a connection; what is left of the publish deadline bounds the
        // wait for one too (a request queued behind busy connections must not outlive its alert's deadline).
        let left = max(machine.deadline - WallClock.monotonic(), 0.001)
        let http = HTTPRequest(
            method: request.method, url: request.url, headers: request.headers,
            body: request.body, timeout: .microseconds(Int64((timeout * 1e6).rounded(.up))),
            overallTimeout: .microseconds(Int64((max(left, timeout) * 1e6).rounded(.up))),
            connectTimeout: .microseconds(Int64((min(timeout, 5) * 1e6).rounded(.up))),
            captureHeaders: PublishRun.capturedHeaders, maxResponseBodyBytes: 64 * 1024, keepSuccessDetails: formatter.readsSuccessDetails,
            connection: targets[index].connection)
        // The completion keeps only what the response's reading needs (not the request's body and headers).
        let action = request.action
        let idempotent = request.idempotent
        handles[index] = publisher.reactor.submit(http) { [self] result in
            handles[index] = nil
            received(index: index, action: action, idempotent: idempotent, result: result)
        }
    }

    static let capturedHeaders = ["retry-after"]

    private func received(index: Int, action: String, idempotent: Bool, result: Result<HTTPResponse, TransferError>) {
        guard !finished else { return }
        let type = targets[index].type
        let formatter = Formatters.formatter(for: type)
        let outcome: FanoutMachine.AttemptOutcome
        switch result {
        case .success(let response):
            let retryAfterHeader = response.header("retry-after")
            let status = response.status
            switch formatter.verdict(status: status, body: response.body, retryAfter: retryAfterHeader) {
            case .delivered(let detail):
                if type == .rootly {
                    if action == "create", let id = detail {
                        publisher.rootlyIndex.remember(target: targets[index].name, fingerprint: alert.fingerprint, id: id)
                    } else if action == "resolve" {
                        publisher.rootlyIndex.forget(target: targets[index].name, fingerprint: alert.fingerprint)
                    }
                }
                outcome = .delivered(status: status, action: action, detail: detail)
            case .permanent(let message):
                outcome = .rejected(
                    status: status, reading: .permanent, message: message, retryAfterSeconds: nil, idempotent: idempotent,
                    action: action)
            case .retryable(let message, let retryAfter):
                outcome = .rejected(
                    status: status, reading: .retryable, message: message,
                    retryAfterSeconds: retryAfter.flatMap { RetryAfter.seconds($0, nowEpochSeconds: WallClock.epochSeconds()) },
                    idempotent: idempotent, action: action)
            case .gone(let message):
                // FanoutMachine remembers the target as gone (GuardBook) and skips it from now on.
                outcome = .rejected(
                    status: status, reading: .gone, message: message, retryAfterSeconds: nil, idempotent: idempotent,
                    action: action)
            }
        case .failure(let error) where error.kind == .deadline && error.timings.total == .zero:
            // Never reached the target: the deadline passed while it waited for a connection. Our side's
            // congestion, not the target's: `overloaded` keeps it out of the target's breaker and health.
            outcome = .transportFailed(
                .overloaded,
                message: "the publish deadline passed while the request waited \(Int(error.timings.queued.seconds * 1000)) ms for a connection",
                idempotent: idempotent, action: action)
        case .failure(let error):
            outcome = .transportFailed(
                PublishRun.failureKind(error.kind), message: error.message, idempotent: idempotent, action: action)
        }
        finished(index, PublishRun.scrubbed(outcome, target: targets[index]))
    }

    /// The reactor's transfer error kind as a failure kind (`deadline` is the attempt's `timeout`; a shutdown
    /// cancels).
    static func failureKind(_ kind: TransferError.Kind) -> FailureKind {
        switch kind {
        case .invalidRequest: return .invalidRequest
        case .refused: return .refused
        case .dns: return .dns
        case .connectTimeout: return .connectTimeout
        case .deadline: return .timeout
        case .reset: return .reset
        case .tls: return .tls
        case .bodyTooLarge: return .bodyTooLarge
        case .cancelled, .shutdown: return .cancelled
        case .overloaded: return .overloaded
        case .other: return .other
        }
    }

    /// Vendor bodies and transport messages could echo a credential: the target's secret and URL (a Slack
    /// webhook URL is itself a secret) are replaced before anything reaches a report.
    static func scrubbed(_ outcome: FanoutMachine.AttemptOutcome, target: Target) -> FanoutMachine.AttemptOutcome {
        switch outcome {
        case .delivered:
            return outcome
        case .rejected(let status, let reading, let message, let retryAfter, let idempotent, let action):
            return .rejected(
                status: status, reading: reading, message: scrubbedMessage(message, target: target), retryAfterSeconds: retryAfter,
                idempotent: idempotent, action: action)
        case .transportFailed(let kind, let message, let idempotent, let action):
            return .transportFailed(kind, message: scrubbedMessage(message, target: target), idempotent: idempotent, action: action)
        case .notSent(let kind, let message):
            return .notSent(kind, message: scrubbedMessage(message, target: target))
        }
    }

    /// `message` without the target's secret, proxy URL, key password or URL. A vendor that echoes only the
    /// request path (Slack's `no_service` for `/services/T…/B…/<token>`) would still show the token, so the URL's
    /// path and query and every part of them long enough to be a token go too (``urlCredentialParts(_:)``).
    static func scrubbedMessage(_ message: String, target: Target) -> String {
        var m = message.replacing(target.url, with: "<\(target.name) url>")
        for secret in [target.secret?.reveal(), target.connection?.proxy, target.connection?.clientKeyPassword] {
            if let secret, !secret.isEmpty { m = m.replacing(secret, with: "<redacted>") }
        }
        for part in urlCredentialParts(target.url) where m.contains(part) { m = m.replacing(part, with: "<redacted>") }
        return m
    }

    /// The parts of a URL that may be credentials, longest first: its path and query, and each path segment or
    /// query value of 16 characters or more — none for a short path without a query (`/hook`).
    static func urlCredentialParts(_ url: String) -> [String] {
        guard let scheme = url.range(of: "://") else { return [] }
        let rest = url[scheme.upperBound...]
        guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return [] }
        let pathAndQuery = String(rest[slash...].prefix { $0 != "#" })
        let tokens = pathAndQuery.split(whereSeparator: { "/?&=".contains($0) }).filter { $0.count >= 16 }.map(String.init)
        guard !tokens.isEmpty || pathAndQuery.contains("?") else { return [] }  // a plain path like /hook is no secret
        return ([pathAndQuery] + tokens).sorted { $0.count > $1.count }
    }

    private func finish(_ report: PublishReport) {
        guard !finished else { return }
        finished = true
        let result: Result<PublishReport, PublishError>
        switch report.outcome {
        case .cancelled: result = .failure(.cancelled(report))
        case .succeeded: result = .success(report)
        case .allFailed: result = .failure(.allFailed(report))
        case .noHealthyTargets: result = .failure(.noHealthyTargets(report))
        case .noEnabledTargets: result = .failure(.noEnabledTargets)
        }
        publisher.runFinished(self, result)
        completion(result)
    }
}
