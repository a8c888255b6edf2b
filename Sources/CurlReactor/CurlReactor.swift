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

    /// A reactor with its own serial queue and multi handle. Throws when `configuration` has problems or libcurl cannot be set up.
    public init(configuration: ReactorConfiguration = .init()) throws {
        core = try ReactorCore(config: configuration)
    }

    /// Releasing the last reference cancels what is queued or in flight, unless a shutdown is already under way:
    /// a drain then carries on to its end (the core keeps itself alive until everything is released).
    deinit {
        core.onQueue { [core] in core.ownerReleased() }
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
        _ request: consuming HTTPRequest,
        callbackQueue: DispatchQueue? = nil,
        completion: @escaping @Sendable (Result<HTTPResponse, TransferError>) -> Void
    ) -> RequestHandle {
        let t = Transfer(request: request, callbackQueue: callbackQueue, completion: completion)
        let core = self.core
        // Submitted from a completion on the reactor queue (a load loop, a retry): no closure to allocate.
        if core.isOnQueue { core.enqueue(t) } else { core.queue.async { core.enqueue(t) } }
        return RequestHandle(core: core, transfer: t)
    }

    /// Submits a request and waits for its outcome. Cancelling the task cancels the request — also when the task
    /// was cancelled before this was called (the request is then never sent).
    public func execute(_ request: consuming HTTPRequest) async -> Result<HTTPResponse, TransferError> {
        let waiter = ResultWaiter()
        let t = Transfer(request: request, callbackQueue: nil) { waiter.resume($0) }
        // The handle exists before anything is submitted, so no cancellation can fall between submission and
        // the handle being stored; `RequestHandle.cancel()` works before the reactor has seen the request.
        let handle = RequestHandle(core: core, transfer: t)
        let core = self.core
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Result<HTTPResponse, TransferError>, Never>) in
                waiter.set(cont)
                core.onQueue { core.enqueue(t) }
            }
        } onCancel: {
            handle.cancel()
        }
    }

    /// Stops accepting requests (new ones complete with `.shutdown`), drains or cancels what was accepted,
    /// then releases every source, socket, easy handle, the timer and the multi handle. `completion` runs once
    /// all of that is done. Calling it again is harmless; `.cancel` after `.drain` escalates.
    public func shutdown(_ mode: ShutdownMode = .drain, completion: @escaping @Sendable () -> Void) {
        let core = self.core
        core.onQueue { core.shutdown(mode, done: completion) }
    }

    /// Async form of `shutdown(_:completion:)`: returns once everything is released (`stats().released`).
    public func shutdown(_ mode: ShutdownMode = .drain) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            shutdown(mode) { cont.resume() }
        }
    }

    /// Synchronous form, for code that cannot `await` — including top-level code, where Swift picks this
    /// overload even for `await reactor.shutdown(.drain)`. Off the reactor queue it blocks the calling thread
    /// until everything is released (`stats().released`); on the reactor queue (inside a completion) it only
    /// starts the shutdown, since waiting there would wait for itself.
    public func shutdown(_ mode: ShutdownMode = .drain) {
        let core = self.core
        if core.isOnQueue {
            core.shutdown(mode) {}
            return
        }
        let released = DispatchSemaphore(value: 0)
        core.queue.async { core.shutdown(mode) { released.signal() } }
        released.wait()
    }

    /// Requests waiting for a place (their host's or the reactor's limit on requests in flight). Read on the
    /// reactor queue (a completion); elsewhere it waits for the queue.
    public var waitingRequests: Int {
        if core.isOnQueue { return core.admission.queued }
        return core.queue.sync { core.admission.queued }
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
    /// Works from any thread and at any time, also before the reactor has taken the request in: it is then
    /// never sent.
    public func cancel() {
        transfer.cancelRequested.store(true, ordering: .releasing)
        let core = self.core
        let t = transfer
        core.onQueue { core.cancel(t) }
    }
}

/// Hands one transfer's completion to the task waiting in `CurlReactor.execute`, whichever arrives first.
final class ResultWaiter: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Result<HTTPResponse, TransferError>, Never>)
        case done(Result<HTTPResponse, TransferError>)
        case resumed
    }

    private let state = Mutex<State>(.empty)

    func set(_ c: CheckedContinuation<Result<HTTPResponse, TransferError>, Never>) {
        let ready: Result<HTTPResponse, TransferError>? = state.withLock { s in
            if case .done(let r) = s {
                s = .resumed
                return r
            }
            s = .waiting(c)
            return nil
        }
        if let ready { c.resume(returning: ready) }
    }

    func resume(_ r: Result<HTTPResponse, TransferError>) {
        let c: CheckedContinuation<Result<HTTPResponse, TransferError>, Never>? = state.withLock { s in
            if case .waiting(let c) = s {
                s = .resumed
                return c
            }
            s = .done(r)
            return nil
        }
        c?.resume(returning: r)
    }
}
