import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The proxy that libcurl, under FoundationNetworking, would take from the environment for a URL.
///
/// libcurl reads `http_proxy` (lower case only), `https_proxy`/`HTTPS_PROXY` and
/// `all_proxy`/`ALL_PROXY` at every transfer, and FoundationNetworking applies nothing of
/// `URLSessionConfiguration.connectionProxyDictionary` (its libcurl proxy options are a TODO): a
/// request to `http://127.0.0.1:8080/v1` with `http_proxy` set went to the proxy, `Authorization`
/// header and all, in clear text — measured, `ProxyEnvironmentTests`. A back end cannot tell libcurl
/// otherwise, so it refuses to work while such a variable would apply (`proxyProblem`), at start and
/// before every request: it never sends through a proxy.
public enum EnvironmentProxy {
    /// The variable libcurl would take a proxy from for `url`, or nil: the first set (non-empty) of
    /// the scheme's variables, unless `no_proxy`/`NO_PROXY` covers the host — judged strictly: `*`,
    /// or an entry that is the host itself (libcurl's suffix and address-range matches are not
    /// reproduced, so such a `no_proxy` still counts as a proxy in use: refused, never leaked).
    public static func variable(for url: URL, environment: [String: String]) -> String? {
        func value(_ name: String) -> String? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            return text
        }
        let names: [String]
        switch url.scheme?.lowercased() {
        case "http": names = ["http_proxy", "all_proxy", "ALL_PROXY"]      // libcurl ignores HTTP_PROXY (CGI's httpoxy)
        case "https": names = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
        default: names = ["all_proxy", "ALL_PROXY"]
        }
        guard let name = names.first(where: { value($0) != nil }) else { return nil }
        if let exempt = value("no_proxy") ?? value("NO_PROXY"), covers(exempt, host: url.host ?? "") { return nil }
        return name
    }

    /// Why a back end at `url` must not be used with `environment`, or nil. Names the variable,
    /// never its value (a proxy URL may carry a password).
    public static func problem(for url: URL, environment: [String: String]) -> String? {
        guard let name = variable(for: url, environment: environment) else { return nil }
        let host = url.host ?? "the host"
        return "the environment variable \(name) would send its requests, and any API key, through a proxy "
            + "(FoundationNetworking cannot be told not to): unset it for robotd, or list \(host) in no_proxy"
    }

    /// The variables `variable(for:environment:)` reads, from this process's environment now
    /// (what libcurl reads at each transfer).
    public static func processEnvironment() -> [String: String] {
        var found: [String: String] = [:]
        for name in ["http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"] {
            if let value = getenv(name) { found[name] = String(cString: value) }
        }
        return found
    }

    private static func covers(_ list: String, host: String) -> Bool {
        let trimmed = list.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" { return true }
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        guard !name.isEmpty else { return false }
        return list.split(whereSeparator: { $0 == "," || $0 == " " }).contains { entry in
            var e = entry.lowercased()
            if e.hasPrefix("["), e.hasSuffix("]") { e = String(e.dropFirst().dropLast()) }
            return e == name
        }
    }
}
