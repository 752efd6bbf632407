import Logging

/// The overlay agent's logger: one line per event, what the agent did and why. Where lines go and
/// how they look is the `strait` executable's one swift-log bootstrap (`DaemonLogging`).
let overlayLog = Logger(label: "strait-overlay")
