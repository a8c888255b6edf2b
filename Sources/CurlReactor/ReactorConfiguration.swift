// ReactorConfiguration: admission limits, default deadlines and caps for one CurlReactor.

/// Settings for a `CurlReactor`. Defaults suit a publisher fanning out to a handful of hosts; a load
/// generator raises the per-host limit to its concurrency.
public struct ReactorConfiguration: Sendable {
    /// Requests admitted to libcurl at once per host (`scheme://host:port`); the rest wait in FIFO order.
    public var maxInFlightPerHost: Int
    /// Requests admitted to libcurl at once in total; hosts with waiting requests are served round-robin.
    public var maxInFlightTotal: Int
    /// Requests that may wait for admission at once, over all hosts; one more completes at once with
    /// `.overloaded` and is never sent. The default is generous: it bounds memory, it is not flow control.
    public var maxQueuedRequests: Int
    /// Per-request deadline when a request sets none (`nil`: none).
    public var defaultTimeout: Duration?
    /// Connection set-up limit when a request sets none.
    public var defaultConnectTimeout: Duration
    /// Response body cap when a request sets none.
    public var maxResponseBodyBytes: Int
    /// Requests with a larger body are rejected with `.invalidRequest`.
    public var maxRequestBodyBytes: Int
    /// Idle connections libcurl may keep (`CURLMOPT_MAXCONNECTS`); at least `maxInFlightTotal` by default.
    public var maxConnections: Int?
    /// Label of the reactor's serial queue.
    public var label: String
    /// How sockets are watched (see `SocketWatching`).
    public var socketWatching: SocketWatching

    /// Settings; check `problems()` before use (`CurlReactor.init` throws for any).
    public init(
        maxInFlightPerHost: Int = 64,
        maxInFlightTotal: Int = 1024,
        maxQueuedRequests: Int = 100_000,
        defaultTimeout: Duration? = .seconds(30),
        defaultConnectTimeout: Duration = .seconds(10),
        maxResponseBodyBytes: Int = 1 << 20,
        maxRequestBodyBytes: Int = 16 << 20,
        maxConnections: Int? = nil,
        label: String = "alertfanout.reactor",
        socketWatching: SocketWatching = .platformDefault
    ) {
        self.socketWatching = socketWatching
        self.maxInFlightPerHost = maxInFlightPerHost
        self.maxInFlightTotal = maxInFlightTotal
        self.maxQueuedRequests = maxQueuedRequests
        self.defaultTimeout = defaultTimeout
        self.defaultConnectTimeout = defaultConnectTimeout
        self.maxResponseBodyBytes = maxResponseBodyBytes
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.maxConnections = maxConnections
        self.label = label
    }

    /// Every problem with these settings, empty when they are usable.
    public func problems() -> [String] {
        var out: [String] = []
        if maxInFlightPerHost < 1 { out.append("maxInFlightPerHost must be at least 1 (got \(maxInFlightPerHost))") }
        if maxInFlightTotal < 1 { out.append("maxInFlightTotal must be at least 1 (got \(maxInFlightTotal))") }
        if maxQueuedRequests < 0 { out.append("maxQueuedRequests must not be negative (got \(maxQueuedRequests))") }
        if let t = defaultTimeout, t <= .zero { out.append("defaultTimeout must be positive") }
        if defaultConnectTimeout <= .zero { out.append("defaultConnectTimeout must be positive") }
        if maxResponseBodyBytes < 0 { out.append("maxResponseBodyBytes must not be negative") }
        if maxRequestBodyBytes < 0 { out.append("maxRequestBodyBytes must not be negative") }
        if let c = maxConnections, c < 1 { out.append("maxConnections must be at least 1 (got \(c))") }
        return out
    }
}

/// How the reactor watches the sockets libcurl asks for.
public enum SocketWatching: Sendable, Hashable {
    /// One Dispatch read source per socket (kept for a keep-alive socket's life) and a write source while curl
    /// wants to write. The portable fallback, and the default where there is no epoll.
    case sourcePerSocket
    /// Every socket curl asks for goes into one epoll set, watched by a single Dispatch read source. On each
    /// wake-up the reactor drains ready sockets with `epoll_wait(0)` and polls again while events keep
    /// arriving (at most 8 rounds), so a busy reactor serves many responses per thread hand-off — the hand-off
    /// from libdispatch's manager thread is what costs the per-socket design most of its CPU under load.
    /// The default on Linux.
    case epollSet

    /// `.epollSet` on Linux, `.sourcePerSocket` elsewhere.
    public static var platformDefault: SocketWatching {
        #if os(Linux)
            return .epollSet
        #else
            return .sourcePerSocket
        #endif
    }
}

/// Errors from creating a reactor.
public enum ReactorError: Error, Sendable, CustomStringConvertible {
    /// The configuration's problems (see `ReactorConfiguration.problems()`).
    case invalidConfiguration([String])
    /// libcurl could not be set up (global init, a multi handle, or the epoll set).
    case curlInitFailed(String)

    /// What went wrong, in words.
    public var description: String {
        switch self {
        case .invalidConfiguration(let p): return "invalid reactor configuration: " + p.joined(separator: "; ")
        case .curlInitFailed(let m): return "libcurl initialisation failed: \(m)"
        }
    }
}

/// How `shutdown` treats requests that are queued or in flight.
public enum ShutdownMode: Sendable {
    /// Let every accepted request finish (each within its own deadline), then release everything.
    case drain
    /// Complete every queued and in-flight request at once with `.shutdown`, then release everything.
    case cancel
}
