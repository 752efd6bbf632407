import StraitModel
import StraitTestSupport
import Testing

/// Both executables answer `--version` and `--help` as a person would call them.
@Suite struct VersionAndHelpTests {
    @Test(arguments: ["strait", "strait-cni"])
    func versionPrintsTheRelease(executable: String) throws {
        let output = try Command.output([builtProduct(executable), "--version"])
        #expect(output.status == 0)
        #expect(output.stdout.contains(StraitVersion.current))
    }

    @Test func straitHelpNamesTheCommand() throws {
        let output = try Command.output([builtProduct("strait"), "--help"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("USAGE: strait"))
    }

    @Test func cniHelpNamesTheSpecAndCommands() throws {
        let output = try Command.output([builtProduct("strait-cni"), "--help"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("CNI_COMMAND"))
        #expect(output.stdout.contains("ADD, DEL, CHECK, STATUS, GC, VERSION"))
    }

    @Test func unknownOptionIsAnError() throws {
        let output = try Command.output([builtProduct("strait"), "--no-such-flag"])
        #expect(output.status != 0)
        #expect(output.stderr.contains("no-such-flag"))
    }
}
