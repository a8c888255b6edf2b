// ahc-load: N concurrent workers, each sending GETs with AsyncHTTPClient until the time is up.
//   usage: ahc-load URL CONCURRENCY SECONDS  →  prints "requests N errors E seconds S"
import AsyncHTTPClient
import Foundation
import NIOCore

let args = CommandLine.arguments
guard args.count >= 4, let concurrency = Int(args[2]), let seconds = Double(args[3]) else {
    FileHandle.standardError.write(Data("usage: ahc-load URL CONCURRENCY SECONDS\n".utf8))
    exit(64)
}
let url = args[1]
var config = HTTPClient.Configuration()
config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
let start = Date()
let end = start.addingTimeInterval(seconds)
let (requests, errors) = await withTaskGroup(of: (Int, Int).self) { group in
    for _ in 0..<concurrency {
        group.addTask {
            var ok = 0
            var failed = 0
            while Date() < end {
                do {
                    let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    ok += 1
                } catch {
                    failed += 1
                }
            }
            return (ok, failed)
        }
    }
    var total = (0, 0)
    for await r in group {
        total.0 += r.0
        total.1 += r.1
    }
    return total
}
print("requests \(requests) errors \(errors) seconds \(String(format: "%.3f", Date().timeIntervalSince(start)))")
try await client.shutdown()
