/// The fault suite's figures (kills survived, leases kept, addresses leaked, iterations fuzzed) are
/// printed, never asserted as timings: `RELIABILITY.md` quotes them from a run of
/// `swift test --filter StraitFaultTests`, as `BENCHMARKS.md` quotes `scripts/bench`.
///
/// One line per figure, `RELIABILITY <suite>: <what> = <value>`, so a run's figures are found with
/// `grep '^RELIABILITY'`.
func reportFigure(suite: String, _ what: String, _ value: CustomStringConvertible) {
    print("RELIABILITY \(suite): \(what) = \(value)")
}
