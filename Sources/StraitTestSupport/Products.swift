import Foundation

/// Where `swift build` put the executables: beside the running test bundle.
public let productsDirectory: URL = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return executable.deletingLastPathComponent()
}()

/// The path of a built executable of this package, such as `strait` or `strait-cni`.
public func builtProduct(_ name: String) -> String {
    productsDirectory.appendingPathComponent(name).path
}
