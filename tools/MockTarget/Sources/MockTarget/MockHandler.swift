// MockHandler: the per-connection NIO handler that records each request and carries out its behaviour.
import NIOCore
import NIOHTTP1
import NIOPosix

final class MockHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: MockState
    private var connection = 0
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(state: MockState) { self.state = state }

    func channelActive(context: ChannelHandlerContext) {
        guard let n = state.connectionOpened(context.channel) else {
            context.close(promise: nil)
            return
        }
        connection = n
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.connectionClosed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.removeAll(keepingCapacity: true)
        case .body(var buf):
            if let bytes = buf.readBytes(length: buf.readableBytes) { body.append(contentsOf: bytes) }
        case .end:
            guard let h = head else { return }
            head = nil
            let behavior = state.received(
                method: h.method.rawValue, uri: h.uri, headers: h.headers.map { ($0.name, $0.value) },
                body: body, connection: connection)
            perform(behavior, keepAlive: h.isKeepAlive, version: h.version, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func perform(_ behavior: MockBehavior, keepAlive: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        switch behavior {
        case .respond(let status, let body, let headers, let delay):
            if delay > .zero {
                state.delayStarted()
                loop.scheduleTask(in: .nanoseconds(delay.nanoseconds)) { [self] in
                    state.delayEnded()
                    respond(context: context, version: version, status: status, body: body, headers: headers, keepAlive: keepAlive)
                }
            } else {
                respond(context: context, version: version, status: status, body: body, headers: headers, keepAlive: keepAlive)
            }
        case .hang:
            break
        case .close:
            context.close(promise: nil)
        case .reset:
            reset(context)
        case .resetMidBody(let sent, let total):
            writeHead(context: context, version: version, status: 200, headers: [], length: total, keepAlive: true)
            var buf = context.channel.allocator.buffer(capacity: sent)
            buf.writeRepeatingByte(0x78, count: max(0, min(sent, total)))
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
            loop.scheduleTask(in: .milliseconds(20)) { [self] in reset(context) }
        case .slowBody(let chunks, let chunkBytes, let interval):
            writeHead(context: context, version: version, status: 200, headers: [], length: chunks * chunkBytes, keepAlive: keepAlive)
            context.flush()
            sendChunks(context: context, remaining: chunks, chunkBytes: chunkBytes, interval: interval, keepAlive: keepAlive)
        case .flap, .sequence, .custom:
            respond(context: context, version: version, status: 500, body: Array("unresolved behaviour".utf8), headers: [], keepAlive: keepAlive)
        }
    }

    private func sendChunks(context: ChannelHandlerContext, remaining: Int, chunkBytes: Int, interval: Duration, keepAlive: Bool) {
        guard remaining > 0 else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if !keepAlive { context.close(promise: nil) }
            return
        }
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(interval.nanoseconds)) { [self] in
            guard context.channel.isActive else { return }
            var buf = context.channel.allocator.buffer(capacity: chunkBytes)
            buf.writeRepeatingByte(0x78, count: chunkBytes)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
            sendChunks(context: context, remaining: remaining - 1, chunkBytes: chunkBytes, interval: interval, keepAlive: keepAlive)
        }
    }

    private func writeHead(context: ChannelHandlerContext, version: HTTPVersion, status: Int, headers: [(String, String)], length: Int, keepAlive: Bool) {
        var h = HTTPHeaders()
        h.add(name: "Content-Length", value: String(length))
        for (n, v) in headers { h.add(name: n, value: v) }
        if !keepAlive { h.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: h)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    private func respond(context: ChannelHandlerContext, version: HTTPVersion, status: Int, body: [UInt8], headers: [(String, String)], keepAlive: Bool) {
        guard context.channel.isActive else { return }
        writeHead(context: context, version: version, status: status, headers: headers, length: body.count, keepAlive: keepAlive)
        if !body.isEmpty {
            var buf = context.channel.allocator.buffer(capacity: body.count)
            buf.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func reset(_ context: ChannelHandlerContext) {
        guard let provider = context.channel as? SocketOptionProvider else {
            context.close(promise: nil)
            return
        }
        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
