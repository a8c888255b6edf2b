// MockTarget: a loopback-only HTTP/1.1 server on SwiftNIO whose routes run scripted behaviours and record requests.
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A test and demo server. It binds loopback addresses only (127.0.0.0/8, ::1, localhost), on port 0 by
/// default, records every request it receives (unless `recordRequests` is false) and counts connections. `stop()` closes everything.
public final class MockTarget: Sendable {
    public enum StartError: Error, CustomStringConvertible {
        case notLoopback(String)
        public var description: String {
            switch self {
            case .notLoopback(let h): return "MockTarget binds loopback addresses only (127.0.0.0/8, ::1, localhost), not '\(h)'"
            }
        }
    }

    public let host: String
    public let port: Int
    /// `https` when started with `tls`, else `http`.
    public let scheme: String
    let state: MockState
    private let serverChannel: Channel

    /// Starts a server on `host:port` (port 0 picks a free port). `routes` maps path prefixes to behaviours
    /// (longest prefix wins); unrouted paths use `MockBehavior.fromQuery`.
    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        routes: [String: MockBehavior] = [:],
        recordRequests: Bool = true,
        tls: MockTLS? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        guard MockTarget.isLoopback(host) else { throw StartError.notLoopback(host) }
        let state = MockState(routes: routes, recordRequests: recordRequests)
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0.configuration()) }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MockHandler(state: state))
                }
            }
        let ch = try bootstrap.bind(host: host, port: port).wait()
        self.serverChannel = ch
        self.state = state
        self.host = host
        self.port = ch.localAddress?.port ?? port
        self.scheme = tls == nil ? "http" : "https"
    }

    /// `http://host:port`, or `https://` with TLS (IPv6 hosts bracketed).
    public var baseURL: String {
        host.contains(":") ? "\(scheme)://[\(host)]:\(port)" : "\(scheme)://\(host):\(port)"
    }

    /// `baseURL` + `path` (which should start with `/`).
    public func url(_ path: String) -> String { baseURL + path }

    /// Sets or replaces the behaviour for a path prefix.
    public func route(_ pathPrefix: String, _ behavior: MockBehavior) {
        state.setRoute(pathPrefix, behavior)
    }

    /// Every request received so far, in arrival order.
    public var requests: [RecordedRequest] { state.box.withLockedValue { $0.requests } }
    /// Requests received so far (counted even when not recorded).
    public var requestCount: Int { state.box.withLockedValue { $0.requestCount } }
    /// Connections accepted so far.
    public var connectionCount: Int { state.box.withLockedValue { $0.connectionsAccepted } }
    /// Connections open now.
    public var openConnections: Int { state.box.withLockedValue { $0.open.count } }
    /// The most requests whose delayed answers were pending at the same time: proof that a client sent them in
    /// parallel (one after another, it is never more than 1).
    public var peakDelayedRequests: Int { state.box.withLockedValue { $0.peakDelayed } }

    /// Forgets recorded requests and per-route counters (connection counts stay).
    public func resetRecording() {
        state.box.withLockedValue {
            $0.requests.removeAll()
            $0.routeCounts.removeAll()
            $0.requestCount = 0
        }
    }

    /// Closes the listening socket and every open connection (hanging requests included).
    public func stop() {
        let open = state.box.withLockedValue { s -> [Channel] in
            s.stopped = true
            return Array(s.open.values)
        }
        try? serverChannel.close().wait()
        for ch in open { try? ch.close().wait() }
    }

    /// Whether `host` names a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { p in Int(p).map { (0...255).contains($0) } ?? false }
    }
}

/// Shared state of one server, guarded by a lock (handlers run on NIO's event loop threads).
final class MockState: Sendable {
    struct Inner {
        var routes: [(String, MockBehavior)] = []
        var requests: [RecordedRequest] = []
        var requestCount = 0
        var routeCounts: [String: Int] = [:]
        var connectionsAccepted = 0
        var open: [ObjectIdentifier: Channel] = [:]
        /// Requests whose answer is being held back by a `delay` now, and the most at once.
        var delayed = 0
        var peakDelayed = 0
        var stopped = false
    }

    let box: NIOLockedValueBox<Inner>
    let recordRequests: Bool

    init(routes: [String: MockBehavior], recordRequests: Bool) {
        var inner = Inner()
        inner.routes = routes.sorted { $0.key.count > $1.key.count }.map { ($0.key, $0.value) }
        box = NIOLockedValueBox(inner)
        self.recordRequests = recordRequests
    }

    func setRoute(_ prefix: String, _ b: MockBehavior) {
        box.withLockedValue { s in
            s.routes.removeAll { $0.0 == prefix }
            s.routes.append((prefix, b))
            s.routes.sort { $0.0.count > $1.0.count }
        }
    }

    /// Connection accepted: returns its 1-based number, or nil when the server is stopping.
    func connectionOpened(_ ch: Channel) -> Int? {
        box.withLockedValue { s in
            if s.stopped { return nil }
            s.connectionsAccepted += 1
            s.open[ObjectIdentifier(ch)] = ch
            return s.connectionsAccepted
        }
    }

    func delayStarted() {
        box.withLockedValue { s in
            s.delayed += 1
            s.peakDelayed = max(s.peakDelayed, s.delayed)
        }
    }

    func delayEnded() { box.withLockedValue { $0.delayed -= 1 } }

    func connectionClosed(_ ch: Channel) {
        _ = box.withLockedValue { $0.open.removeValue(forKey: ObjectIdentifier(ch)) }
    }

    /// Records a request and resolves the behaviour for it.
    func received(method: String, uri: String, headers: [(String, String)], body: [UInt8], connection: Int) -> MockBehavior {
        let (path, query) = splitURI(uri)
        let (routed, index) = box.withLockedValue { s -> (MockBehavior?, Int) in
            s.requestCount += 1
            let match = s.routes.first { path.hasPrefix($0.0) }
            let key = match?.0 ?? path
            let n = (s.routeCounts[key] ?? 0) + 1
            s.routeCounts[key] = n
            return (match?.1, n)
        }
        let rec = RecordedRequest(
            method: method, uri: uri, path: path, query: query, headers: headers,
            body: body, connection: connection, routeIndex: index)
        if recordRequests { box.withLockedValue { $0.requests.append(rec) } }
        var behavior = routed ?? MockBehavior.fromQuery(path: path, query: query)
        // Resolve choosers down to a concrete behaviour.
        for _ in 0..<8 {
            switch behavior {
            case .flap(let every, let failure, let success):
                behavior = every > 0 && index % every == 0 ? failure : success
            case .sequence(let list):
                guard let last = list.last else { return .respond() }
                behavior = index - 1 < list.count ? list[index - 1] : last
            case .custom(let f):
                behavior = f(rec)
            default:
                return behavior
            }
        }
        return behavior
    }
}

/// TLS for a MockTarget: its certificate and key (PEM files), optionally a CA whose client certificates it
/// requires (mutual TLS), and the TLS versions it accepts.
public struct MockTLS: Sendable {
    public var certificateFile: String
    public var keyFile: String
    /// When set, every client must present a certificate signed by this CA (PEM file).
    public var clientCAFile: String?
    public var minimumVersion: Version
    public var maximumVersion: Version?

    public enum Version: Sendable {
        case tls12, tls13
        var nio: TLSVersion { self == .tls12 ? .tlsv12 : .tlsv13 }
    }

    public init(
        certificateFile: String, keyFile: String, clientCAFile: String? = nil,
        minimumVersion: Version = .tls12, maximumVersion: Version? = nil
    ) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
    }

    func configuration() throws -> TLSConfiguration {
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
        c.minimumTLSVersion = minimumVersion.nio
        c.maximumTLSVersion = maximumVersion?.nio
        if let clientCAFile {
            c.trustRoots = .file(clientCAFile)
            c.certificateVerification = .noHostnameVerification
        }
        return c
    }
}
