/// The release of Strait this build is, printed by `--version` of every executable.
public enum StraitVersion {
    public static let current = "0.1.0"
}
