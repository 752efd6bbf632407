#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitSystem

extension SubnetFile {
    /// Reads the file the overlay agent writes. A missing file means the agent has not started
    /// yet: error 11, so the runtime retries instead of failing the pod for good (flannel's
    /// start-up race).
    static func read(_ path: String) throws(CNIError) -> SubnetFile {
        let text: String
        do throws(FileError) {
            text = try readTextFile(path)
        } catch where error.errno == ENOENT {
            throw CNIError(.tryAgainLater, "\(path) does not exist yet", details: "is strait overlay running on this node?")
        } catch {
            throw CNIError(.ioFailure, "cannot read \(path)", details: error.description)
        }
        do throws(SubnetFile.ParseError) { return try SubnetFile(parsing: text) } catch {
            throw CNIError(.invalidNetworkConfig, "\(path): \(error)")
        }
    }
}
