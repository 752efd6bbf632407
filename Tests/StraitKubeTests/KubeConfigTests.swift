import Foundation
import StraitKube
import Testing

/// Kubeconfig and in-cluster resolution, rootless: every accepted form and every refusal names
/// the user, cluster or file concerned.
struct KubeConfigTests {
    let directory: String = {
        let path = NSTemporaryDirectory() + "strait-kubeconfig-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

    func config(user: String, cluster: String = "server: https://10.0.0.1:6443") -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: prod
          cluster:
            \(cluster)
        users:
        - name: admin
          user:
            \(user)
        contexts:
        - name: main
          context: {cluster: prod, user: admin}
        current-context: main
        """
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func configurationError(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as KubeError {
            #expect(error.code == .configuration)
            return error.description
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func tokenAndInlineCA() throws {
        let ca = Data(Self.pem.utf8).base64EncodedString()
        let text = config(user: "token: secret", cluster: "server: https://10.0.0.1:6443\n    certificate-authority-data: \(ca)")
        let connection = try KubeConnection.from(KubeConfig.parse(text), source: "test")
        #expect(connection.server.absoluteString == "https://10.0.0.1:6443")
        #expect(connection.credential == .token("secret"))
        #expect(connection.trust == .certificates(Array(Self.pem.utf8)))
        #expect(connection.origin.contains("context main") && connection.origin.contains("user admin"))
    }

    @Test func filesAreRelativeToTheKubeconfig() throws {
        _ = try write("ca.crt", Self.pem)
        _ = try write("client.crt", "CERT")
        _ = try write("client.key", "KEY")
        _ = try write("token", "abc\n")
        let path = try write("config", config(
            user: "client-certificate: client.crt\n    client-key: client.key\n    tokenFile: token",
            cluster: "server: https://api.example:6443\n    certificate-authority: ca.crt"))
        let connection = try KubeConnection.from(KubeConfig.load(file: path), source: path)
        #expect(connection.trust == .certificates(Array(Self.pem.utf8)))
        #expect(connection.clientCertificate == Array("CERT".utf8))
        #expect(connection.clientKey == Array("KEY".utf8))
        #expect(connection.credential == .tokenFile(directory + "/token"))
    }

    @Test func insecureAndInlineClientCertificate() throws {
        let cert = Data("CERT".utf8).base64EncodedString(), key = Data("KEY".utf8).base64EncodedString()
        let text = config(user: "client-certificate-data: \(cert)\n    client-key-data: \(key)",
                          cluster: "server: https://10.0.0.1:6443\n    insecure-skip-tls-verify: true")
        let connection = try KubeConnection.from(KubeConfig.parse(text), source: "test")
        #expect(connection.trust == .insecure)
        #expect(connection.clientCertificate == Array("CERT".utf8) && connection.clientKey == Array("KEY".utf8))
    }

    @Test func execPluginAndAuthProviderAreRefusedNamingTheUser() {
        let exec = configurationError {
            _ = try KubeConnection.from(KubeConfig.parse(config(user: "exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}")),
                                        source: "test")
        }
        #expect(exec?.contains("user admin") == true && exec?.contains("exec plugin aws") == true, "\(exec ?? "")")
        let provider = configurationError {
            _ = try KubeConnection.from(KubeConfig.parse(config(user: "auth-provider: {name: gcp}")), source: "test")
        }
        #expect(provider?.contains("user admin") == true && provider?.contains("auth-provider gcp") == true)
    }

    @Test func missingPiecesAreNamed() throws {
        let noFile = configurationError {
            _ = try KubeConnection.from(KubeConfig.parse(config(user: "client-certificate: /nonexistent/c.crt\n    client-key: /nonexistent/c.key")),
                                        source: "test")
        }
        #expect(noFile?.contains("user admin client-certificate /nonexistent/c.crt: no such file") == true, "\(noFile ?? "")")
        let keyless = configurationError {
            let cert = Data("CERT".utf8).base64EncodedString()
            _ = try KubeConnection.from(KubeConfig.parse(config(user: "client-certificate-data: \(cert)")), source: "test")
        }
        #expect(keyless?.contains("without its key") == true)
        let badBase64 = configurationError {
            _ = try KubeConnection.from(KubeConfig.parse(config(user: "token: x",
                cluster: "server: https://h:1\n    certificate-authority-data: '%%%'")), source: "test")
        }
        #expect(badBase64?.contains("cluster prod certificate-authority-data is not base64") == true)
        let context = configurationError {
            _ = try KubeConnection.from(KubeConfig.parse(config(user: "token: x")), context: "other", source: "test")
        }
        #expect(context?.contains("context \"other\" is not defined") == true)
        let server = configurationError {
            _ = try KubeConnection.from(KubeConfig.parse(config(user: "token: x", cluster: "server: ftp://h")), source: "test")
        }
        #expect(server?.contains("cluster prod server \"ftp://h\" is not an http(s) URL") == true, "\(server ?? "")")
        let file = configurationError { _ = try KubeConfig.load(file: directory + "/absent") }
        #expect(file?.contains("absent: cannot read the file") == true, "\(file ?? "")")
        let notConfig = configurationError { _ = try KubeConfig.parse("kind: Pod\n") }
        #expect(notConfig?.contains("expected Config") == true)
    }

    @Test func kubeconfigListMergesFirstWins() throws {
        let first = try write("a", config(user: "token: first"))
        let second = try write("b", config(user: "token: second").replacingOccurrences(of: "current-context: main", with: ""))
        let resolved = try KubeConnection.resolve(kubeconfig: nil, master: nil,
            inCluster: .init(environment: ["KUBECONFIG": "\(directory)/missing:\(second):\(first)"]))
        #expect(resolved.credential == .token("second"))
        #expect(resolved.origin.contains("$KUBECONFIG"))
    }

    @Test func masterOverridesOrStandsAlone() throws {
        let path = try write("config", config(user: "token: t"))
        let overridden = try KubeConnection.resolve(kubeconfig: path, master: "https://127.0.0.1:7443",
                                                    inCluster: .init(environment: [:]))
        #expect(overridden.server.absoluteString == "https://127.0.0.1:7443" && overridden.credential == .token("t"))
        let alone = try KubeConnection.resolve(kubeconfig: nil, master: "http://127.0.0.1:8080", inCluster: .init(environment: [:]))
        #expect(alone.credential == .none && alone.server.absoluteString == "http://127.0.0.1:8080")
        let nothing = configurationError { _ = try KubeConnection.resolve(kubeconfig: nil, master: nil, inCluster: .init(environment: [:])) }
        #expect(nothing?.contains("no --kubeconfig") == true)
    }

    @Test func inClusterReadsTheServiceAccount() throws {
        var inCluster = KubeConnection.InCluster(environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                                              "KUBERNETES_SERVICE_PORT": "443"])
        inCluster.tokenFile = try write("sa-token", "tok")
        inCluster.caFile = try write("sa-ca.crt", Self.pem)
        let connection = try KubeConnection.inCluster(inCluster)
        #expect(connection.server.absoluteString == "https://10.96.0.1:443")
        #expect(connection.credential == .tokenFile(inCluster.tokenFile))
        #expect(connection.trust == .certificates(Array(Self.pem.utf8)))
        inCluster.environment = [:]
        let outside = configurationError { _ = try KubeConnection.inCluster(inCluster) }
        #expect(outside?.contains("KUBERNETES_SERVICE_HOST") == true)
    }

    @Test func protobufIsRefused() throws {
        try KubeContentType.check(nil)
        try KubeContentType.check("application/json")
        let refused = configurationError { try KubeContentType.check("application/vnd.kubernetes.protobuf") }
        #expect(refused?.contains("Strait decodes JSON only") == true)
    }
}
