// urlsession-load: N concurrent workers, each fetching the URL with URLSession until the time is up.
//   usage: urlsession-load URL CONCURRENCY SECONDS  →  prints "requests N errors E seconds S"
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

let args = CommandLine.arguments
guard args.count >= 4, let concurrency = Int(args[2]), let seconds = Double(args[3]), let url = URL(string: args[1]) else {
    FileHandle.standardError.write(Data("usage: urlsession-load URL CONCURRENCY SECONDS\n".utf8))
    exit(64)
}
let config = URLSessionConfiguration.ephemeral
config.httpMaximumConnectionsPerHost = concurrency
config.timeoutIntervalForRequest = 60
let session = URLSession(configuration: config)
let start = Date()
let end = start.addingTimeInterval(seconds)
let (requests, errors) = await withTaskGroup(of: (Int, Int).self) { group in
    for _ in 0..<concurrency {
        group.addTask {
            var ok = 0
            var failed = 0
            repeat {
                do {
                    _ = try await session.data(from: url)
                    ok += 1
                } catch {
                    failed += 1
                }
            } while Date() < end
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
