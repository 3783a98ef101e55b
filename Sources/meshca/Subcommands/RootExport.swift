import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca root export`: the trust bundle as Istio's `istio-ca-root-cert` ConfigMap or as PEM (``TrustBundleExport``).
struct RootExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Print the trusted roots: as the istio-ca-root-cert ConfigMap (for kubectl apply -f -) or as a PEM bundle.",
        discussion: """
            Prints every root in the state directory's root-cert.pem: during a root rotation the old and the new one, \
            so apply it again after each rotation step. --format configmap writes a ConfigMap with the key \
            root-cert.pem, which istio-agent mounts at /var/run/secrets/istio/root-cert.pem.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case configmap, pem
    }

    @OptionGroup var state: StateOptions

    @Option(help: ArgumentHelp("configmap (Kubernetes YAML) or pem.", valueName: "format"))
    var format: Format = .configmap

    @Option(help: ArgumentHelp("The ConfigMap's namespace (default: none in the YAML, so kubectl apply -n NS places it).", valueName: "ns"))
    var namespace: String?

    @Option(help: ArgumentHelp("The ConfigMap's name.", valueName: "name"))
    var name: String = TrustBundleExport.istioConfigMapName

    func run() async throws {
        if format == .pem, namespace != nil {
            throw ValidationError("--namespace applies only to --format configmap; a PEM bundle has no namespace.")
        }
        let export = try TrustBundleExport(directory: state.directory)
        switch format {
        case .pem:
            print(export.pem, terminator: "")
        case .configmap:
            do {
                print(try export.configMap(name: name, namespace: namespace), terminator: "")
            } catch {
                throw ValidationError(error.message)
            }
        }
    }
}
