// ReactorStats: a point-in-time snapshot of the reactor's counters and live resources.

/// Counters and gauges of one reactor, read on its queue.
public struct ReactorStats: Sendable, Hashable, CustomStringConvertible {
    /// Requests admitted to libcurl and not yet completed.
    public var inFlight: Int
    /// Requests waiting in the admission queue.
    public var queued: Int
    /// Requests submitted since start.
    public var submitted: Int
    /// Completions delivered (success or failure) since start.
    public var completed: Int
    /// Sockets opened through `CURLOPT_OPENSOCKETFUNCTION` since start (new connection attempts).
    public var connectionsOpened: Int
    /// Sockets currently registered with the reactor.
    public var socketsWatched: Int
    /// Dispatch read/write sources whose cancel handler has not yet run.
    public var liveSources: Int
    /// Sockets whose close waits for a source's cancel handler.
    public var pendingCloses: Int
    /// Easy handles alive (attached to transfers or pooled for reuse).
    public var easyHandles: Int
    /// Times the single timer source fired.
    public var timerFires: Int
    /// Calls of `curl_multi_socket_action`.
    public var socketActionCalls: Int
    /// Socket readiness events handled (read and write sources).
    public var socketEvents: Int
    /// Requests whose deadline passed without libcurl noticing, so that the reactor had curl look at every
    /// transfer again (libcurl 7.88 can drop a deadline's expiry; see `ReactorCore.activeDeadlines`).
    public var deadlineRechecks: Int
    /// Requests the reactor completed at their deadline because libcurl had not, even after a re-check.
    public var backstopExpiries: Int
    /// True once shutdown has released the multi handle, every source, socket, easy handle and the timer.
    public var released: Bool

    /// Nothing in flight, queued, watched, live, pending or allocated.
    public var isIdleAndEmpty: Bool {
        inFlight == 0 && queued == 0 && socketsWatched == 0 && liveSources == 0 && pendingCloses == 0 && easyHandles == 0
    }

    /// Every counter as `name=value`, for logs and test messages.
    public var description: String {
        "inFlight=\(inFlight) queued=\(queued) submitted=\(submitted) completed=\(completed) "
            + "connectionsOpened=\(connectionsOpened) socketsWatched=\(socketsWatched) liveSources=\(liveSources) "
            + "pendingCloses=\(pendingCloses) easyHandles=\(easyHandles) timerFires=\(timerFires) "
            + "socketActionCalls=\(socketActionCalls) socketEvents=\(socketEvents) deadlineRechecks=\(deadlineRechecks) backstopExpiries=\(backstopExpiries) released=\(released)"
    }
}
