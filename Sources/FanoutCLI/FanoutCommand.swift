// FanoutCommand: the `fanout` executable's root command and its subcommands.
import ArgumentParser

@main
struct FanoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "Fan alerts out to many targets at once, and load-test HTTP endpoints, on one libcurl reactor.",
        subcommands: [ServeCommand.self, DLQCommand.self, DemoCommand.self, PublishCommand.self, LoadCommand.self, MeasureCommand.self]
    )
}
