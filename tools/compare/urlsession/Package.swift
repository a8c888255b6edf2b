// swift-tools-version:6.0
// urlsession-load: URLSession (FoundationNetworking) with N concurrent tasks, a peer for AlertFanout's comparisons.
import PackageDescription

let package = Package(
    name: "urlsession-load",
    targets: [.executableTarget(name: "urlsession-load")],
    swiftLanguageModes: [.v6]
)
