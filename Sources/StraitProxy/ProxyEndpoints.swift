/// The routes kube-proxy serves, as responders for `ProxyHTTPServer`.
public enum ProxyEndpoints {
    /// The metrics address (default `127.0.0.1:10249`): `/proxyMode` (the mode, no newline),
    /// `/metrics` (Prometheus text), `/healthz` (`ok`).
    public static func metrics(mode: ProxyMode, metrics: ProxyMetrics) -> ProxyHTTPServer.Responder {
        { _, path in
            switch path {
            case "/proxyMode": HTTPAnswer(body: mode.rawValue)
            case "/metrics": HTTPAnswer(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render())
            case "/healthz": HTTPAnswer(body: "ok")
            default: .notFound
            }
        }
    }

    /// The health address (default `0.0.0.0:10256`): `/healthz` and `/livez`, 200 when healthy (and,
    /// for `/healthz`, the node eligible), 503 otherwise, with kube-proxy's JSON.
    public static func health(_ health: ProxyHealth, metrics: ProxyMetrics) -> ProxyHTTPServer.Responder {
        { _, path in
            switch path {
            case "/healthz", "/livez":
                let status = health.status()
                let includeNode = path == "/healthz"
                // /healthz also fails while the node is not eligible (being deleted or drained).
                let ok = status.healthy && (!includeNode || status.nodeEligible)
                let code = ok ? 200 : 503
                if includeNode { metrics.countHealthz(code: code) } else { metrics.countLivez(code: code) }
                return HTTPAnswer(status: ok ? .ok : .serviceUnavailable, contentType: "application/json",
                                  body: ProxyHealth.json(status, includeNode: includeNode))
            default:
                return .notFound
            }
        }
    }
}
