// swift-tools-version:6.0
// ahc-load: AsyncHTTPClient in a TaskGroup loop, a peer for AlertFanout's comparisons (own package: the root
// build never pays AsyncHTTPClient's compile time).
import PackageDescription

let package = Package(
    name: "ahc-load",
    dependencies: [.package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0")],
    targets: [
        .executableTarget(name: "ahc-load", dependencies: [.product(name: "AsyncHTTPClient", package: "async-http-client")])
    ],
    swiftLanguageModes: [.v6]
)
