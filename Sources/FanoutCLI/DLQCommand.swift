// DLQCommand: `fanout dlq list|replay|purge --store URL` — the dead letters of a store, from the command line.
import AlertFanout
import ArgumentParser
import FanoutStore
import Foundation

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, replay or purge the dead letters of a store (deliveries that will not be retried by themselves).",
        discussion: """
            A delivery becomes a dead letter on a permanent failure (a 4xx other than 408/425/429, 410 Gone, a missing secret) or when its delivery_ttl runs out. Replaying makes it pending again with a fresh TTL; a running fanout serve on the same store picks it up.

            Examples:
            fanout dlq list --store sqlite:fanout-state.db --target pd-primary
            fanout dlq replay --store sqlite:fanout-state.db --id 42
            fanout dlq purge --store postgres://fanout:secret@db:5432/fanout --target old-hook
            """,
        subcommands: [List.self, Replay.self, Purge.self])

    struct StoreOptions: ParsableArguments {
        @Option(help: "The store: sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB.")
        var store: String

        @Option(help: "Only this target's dead letters.")
        var target: String?

        func validate() throws {
            switch StoreLocation.parse(store) {
            case .failure(let e): throw ValidationError("--store: \(e.message)")
            case .success(.none): throw ValidationError("--store: none has no dead letters")
            case .success: break
            }
        }

        func open() async throws -> any DeliveryStore {
            guard case .success(let location) = StoreLocation.parse(store) else { throw ExitCode(64) }
            do {
                guard let s = try await location.open() else { throw ExitCode(64) }
                return s
            } catch let e as StoreError {
                FileHandle.standardError.write(Data("fanout dlq: cannot open the store \(location): \(e)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List dead letters, newest first.")
        @OptionGroup var options: StoreOptions
        @Option(help: "At most this many.") var limit = 100
        @Flag(help: "Print JSON.") var json = false

        func validate() throws { guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") } }

        func run() async throws {
            let store = try await options.open()
            let letters = try await store.deadLetters(target: options.target, limit: limit)
            await store.close()
            if json {
                print(JSONValue.array(letters.map(\.json)).prettyText())
                return
            }
            guard !letters.isEmpty else { return print("no dead letters\(options.target.map { " for \($0)" } ?? "")") }
            var rows = [["ID", "TARGET", "KEY", "TRIES", "HTTP", "LAST ERROR"]]
            for d in letters {
                rows.append([
                    String(d.id), d.target, String(d.orderingKey.prefix(24)), String(d.attempts), d.lastStatus.map(String.init) ?? "-",
                    String((d.lastError ?? "").prefix(90)),
                ])
            }
            table(rows).forEach { print($0) }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay", abstract: "Make dead letters pending again (one by --id, or all, or all of --target).")
        @OptionGroup var options: StoreOptions
        @Option(help: "Only this dead letter.") var id: Int64?
        @Option(help: "The new delivery_ttl.", transform: parseDuration) var ttl: Duration = .seconds(3600)

        func run() async throws {
            let store = try await options.open()
            let n = try await store.replay(id: id, target: options.target, now: WallTime.now(), ttl: Double(ttl.components.seconds))
            await store.close()
            print("replayed \(n) dead letter\(n == 1 ? "" : "s")")
            if let id, n == 0 {
                FileHandle.standardError.write(Data("fanout dlq replay: no dead letter with id \(id)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "purge", abstract: "Delete dead letters (all, or those of --target).")
        @OptionGroup var options: StoreOptions

        func run() async throws {
            let store = try await options.open()
            let n = try await store.purge(target: options.target)
            await store.close()
            print("purged \(n) dead letter\(n == 1 ? "" : "s")")
        }
    }
}
