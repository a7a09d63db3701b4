import Foundation

/// An MQTT password is never written inline (a configuration file, a command line that `ps` shows):
/// it comes from an environment variable or a file only its owner reads.
public enum MQTTPassword {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// The variable's value, or the file's first line (trailing newline removed); nil when neither
    /// is named. A named variable that is unset or a file that cannot be read is an error.
    public static func read(environment name: String?, file path: String?) throws(Missing) -> String? {
        if let name {
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw Missing(description: "the environment variable \(name) (password_env) is not set")
            }
            return value
        }
        if let path {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw Missing(description: "cannot read the password file \(path)")
            }
            return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        }
        return nil
    }
}
