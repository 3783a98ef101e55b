#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCACore
import MeshCATransport
import X509

/// The Workload API messages built from the agent's credentials (PROTOCOLS.md §5.2).
extension WorkloadAPIService {
    /// One `X509SVID` with the complete current state: the SPIFFE ID, the leaf and intermediates as
    /// concatenated DER (leaf first, no root, as SPIRE sends), the key as unencrypted PKCS#8 DER, and the
    /// roots of the SVID's own trust domain as concatenated DER; the CA's CRLs (DER, one element each) in `crl`
    /// when the agent fetches them (`--crl-url`). No federated bundles.
    static func x509SVIDResponse(for credentials: WorkloadCredentials) -> X509SVIDResponse {
        var svid = X509SVID()
        svid.spiffeID = credentials.spiffeID.uri
        svid.x509Svid = concatenatedDER(credentials.chain)
        svid.x509SvidKey = Data(credentials.privateKeyPKCS8)
        svid.bundle = concatenatedDER(credentials.bundle)
        var response = X509SVIDResponse()
        response.svids = [svid]
        response.crl = credentials.crls.map { Data($0) }
        return response
    }

    /// The bundle map with the agent's own trust domain, keyed `spiffe://<td>` as SPIRE keys it.
    static func x509BundlesResponse(for credentials: WorkloadCredentials) -> X509BundlesResponse {
        var response = X509BundlesResponse()
        response.bundles = [credentials.spiffeID.trustDomain.idString: concatenatedDER(credentials.bundle)]
        response.crl = credentials.crls.map { Data($0) }
        return response
    }

    /// DER certificates back to back, nothing between them.
    static func concatenatedDER(_ certificates: [Certificate]) -> Data {
        var bytes: [UInt8] = []
        for certificate in certificates { bytes += certificate.derBytes }
        return Data(bytes)
    }
}
