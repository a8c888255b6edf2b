// CurlReactor: the public face of the reactor — submit, cancel, shut down, read stats; an async facade at the edge.
import Dispatch
import Synchronization

/// One libcurl multi handle driven by Dispatch on a single serial queue. Every request of every caller shares it.
///
/// Thread safety: every method may be called from any thread, including from a completion running on the
/// reactor queue. Completions run on the `callbackQueue` given to `submit`, or — when that is nil — inline on the
/// reactor queue, where they must not block.
public final class CurlReactor: Sendable {
    let core: ReactorCore

    public init(configuration: ReactorConfiguration = .init()) throws {
        core = try ReactorCore(config: configuration)
    }

    deinit {
        core.onQueue { [core] in core.shutdown(.cancel) {} }
    }

    /// The reactor's serial queue. Work submitted here runs between socket events; keep it short.
    public var queue: DispatchQueue { core.queue }

    /// True when the caller is running on the reactor queue.
    public var isOnQueue: Bool { core.isOnQueue }

    /// The configuration this reactor was created with.
    public var configuration: ReactorConfiguration { core.config }

    /// libcurl's version string (`libcurl/7.88.1 OpenSSL/...`).
    public static var curlVersion: String { CurlGlobal.versionString }

    /// `libcurl/X.Y.Z` only.
    public static var curlShortVersion: String { CurlGlobal.shortVersion }

    /// Why libcurl's own URL parser rejects `url` for a request (not absolute, not http or https, no host, a
    /// port outside 1–65535, …), or nil when the reactor would accept it. Lets a caller refuse bad input before
    /// anything is sent.
    public static func urlProblem(_ url: String) -> String? {
        switch URLTarget.parse(url) {
        case .success: return nil
        case .failure(.malformed(let why)): return why
        case .failure(.unsupportedScheme(let s)): return s.isEmpty ? "it has no http:// or https:// scheme" : "the scheme '\(s)' is not http or https"
        }
    }

    /// Submits a request. `completion` is called exactly once — with a response, or with a typed error
    /// (invalid input, transport failure, deadline, cancellation, shutdown) — and never before this returns
    /// when called off the reactor queue.
    @discardableResult
    public func submit(
        _ request: HTTPRequest,
        callbackQueue: DispatchQueue? = nil,
        completion: @escaping @Sendable (Result<HTTPResponse, TransferError>) -> Void
    ) -> RequestHandle {
        let t = Transfer(request: request, callbackQueue: callbackQueue, completion: completion)
        let core = self.core
        core.onQueue { core.enqueue(t) }
        return RequestHandle(core: core, transfer: t)
    }

    /// Submits a request and waits for its outcome. Cancelling the task cancels the request.
    public func execute(_ request: HTTPRequest) async -> Result<HTTPResponse, TransferError> {
        let box = Mutex<RequestHandle?>(nil)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Result<HTTPResponse, TransferError>, Never>) in
                let handle = submit(request) { cont.resume(returning: $0) }
                box.withLock { $0 = handle }
            }
        } onCancel: {
            box.withLock { $0 }?.cancel()
        }
    }

    /// Stops accepting requests (new ones complete with `.shutdown`), drains or cancels what was accepted,
    /// then releases every source, socket, easy handle, the timer and the multi handle. `completion` runs once
    /// all of that is done. Calling it again is harmless; `.cancel` after `.drain` escalates.
    public func shutdown(_ mode: ShutdownMode = .drain, completion: @escaping @Sendable () -> Void = {}) {
        let core = self.core
        core.onQueue { core.shutdown(mode, done: completion) }
    }

    /// Async form of `shutdown(_:completion:)`.
    public func shutdown(_ mode: ShutdownMode = .drain) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            shutdown(mode) { cont.resume() }
        }
    }

    /// A snapshot of the counters. Blocks briefly for the reactor queue when called from elsewhere.
    public func stats() -> ReactorStats {
        if core.isOnQueue { return core.snapshot() }
        return core.queue.sync { core.snapshot() }
    }
}

/// Cancels one submitted request. Cancelling after completion does nothing.
public struct RequestHandle: Sendable {
    let core: ReactorCore
    let transfer: Transfer

    /// Completes the request with `.cancelled` if it has not completed yet; removes it from curl if admitted.
    public func cancel() {
        let core = self.core
        let t = transfer
        core.onQueue { core.cancel(t) }
    }
}
