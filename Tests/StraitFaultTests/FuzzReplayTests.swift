import Foundation
import Testing

@testable import fuzz_cni
@testable import fuzz_kube
@testable import fuzz_manifest
@testable import fuzz_store_values

/// The fuzz targets' checks, replayed without libFuzzer on the checked-in seed corpus
/// (`Tests/Fuzz/corpus/<target>/`) and on every input a fuzzer once crashed or broke an invariant
/// with (`Tests/Fuzz/regressions/<target>/`, each fixed since): `swift test` keeps them fixed.
@Suite struct FuzzReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz").path

    static let targets: [(name: String, check: @Sendable ([UInt8]) throws -> Void)] = [
        ("cni", { try fuzz_cni.FuzzTarget.check($0) }),
        ("manifest", { try fuzz_manifest.FuzzTarget.check($0) }),
        ("store-values", { try fuzz_store_values.FuzzTarget.check($0) }),
        ("kube", { try fuzz_kube.FuzzTarget.check($0) }),
    ]

    /// The files of one corpus directory, by name (dot files left out).
    static func inputs(_ directory: String) -> [(name: String, bytes: [UInt8])] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: "\(directory)/\(name)").map { (name, Array($0)) }
        }
    }

    @Test(arguments: ["cni", "manifest", "store-values", "kube"])
    func seedsAndRegressionsPass(target: String) throws {
        let check = try #require(Self.targets.first { $0.name == target }?.check)
        let seeds = Self.inputs("\(Self.fuzzDirectory)/corpus/\(target)")
        let regressions = Self.inputs("\(Self.fuzzDirectory)/regressions/\(target)")
        #expect(seeds.count >= 5, "the seed corpus of \(target) is missing")
        for (name, bytes) in seeds + regressions {
            #expect(throws: Never.self, "\(target)/\(name)") { try check(bytes) }
        }
        reportFigure(suite: "fuzz", "\(target) seeds + regressions replayed", "\(seeds.count) + \(regressions.count)")
    }
}
