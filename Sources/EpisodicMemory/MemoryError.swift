import Foundation
import GRDB

/// Why the memory could not be opened or written, in words that name the file and what to do.
/// Never fatal to the robot: a writer that cannot open runs without memory and says why
/// (`EpisodicMemory.openOrUnavailable`).
public enum MemoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `path` is empty.
    case noPath
    /// The file does not exist (read-only opens never create one).
    case missing(path: String)
    /// The folder for the file could not be made.
    case cannotCreateFolder(path: String, reason: String)
    /// SQLite could not open or create the file (a folder in the way, no permission, a read-only
    /// file system).
    case cannotOpen(path: String, reason: String)
    /// The file is not an SQLite database, or is damaged.
    case notADatabase(path: String, reason: String)
    /// An SQLite database, but not robotd's memory.
    case foreignDatabase(path: String)
    /// Written by a newer robotd (migrations this one does not know).
    case newerSchema(path: String, unknown: [String])
    /// The file or its folder cannot be written.
    case readOnly(path: String, reason: String)
    /// Another connection holds a lock longer than the busy timeout.
    case locked(path: String, reason: String)
    /// The disk is full.
    case full(path: String, reason: String)
    /// Anything else SQLite reported.
    case sqlite(path: String, code: Int32, reason: String)
    /// The memory was closed (`EpisodicMemory.close()`).
    case closed(path: String)

    /// A stable word for counting.
    public var kind: String {
        switch self {
        case .noPath: "no_path"
        case .missing: "missing"
        case .cannotCreateFolder: "cannot_create_folder"
        case .cannotOpen: "cannot_open"
        case .notADatabase: "not_a_database"
        case .foreignDatabase: "foreign_database"
        case .newerSchema: "newer_schema"
        case .readOnly: "read_only"
        case .locked: "locked"
        case .full: "disk_full"
        case .sqlite: "sqlite"
        case .closed: "closed"
        }
    }

    public var description: String {
        switch self {
        case .noPath:
            "memory: the database path is empty"
        case .missing(let path):
            "memory: no database at \(path)"
        case .cannotCreateFolder(let path, let reason):
            "memory: cannot create the folder for \(path): \(reason)"
        case .cannotOpen(let path, let reason):
            "memory: cannot open \(path): \(reason)"
        case .notADatabase(let path, let reason):
            "memory: \(path) is not an SQLite database or is damaged (\(reason)); move it away and robotd starts a new one"
        case .foreignDatabase(let path):
            "memory: \(path) is an SQLite database, but not robotd's memory; point `memory.path` elsewhere"
        case .newerSchema(let path, let unknown):
            "memory: \(path) was written by a newer robotd (unknown migrations: \(unknown.joined(separator: ", ")))"
        case .readOnly(let path, let reason):
            "memory: \(path) cannot be written (\(reason))"
        case .locked(let path, let reason):
            "memory: \(path) is locked by another connection (\(reason))"
        case .full(let path, let reason):
            "memory: the disk holding \(path) is full (\(reason))"
        case .sqlite(let path, let code, let reason):
            "memory: \(path): SQLite error \(code): \(reason)"
        case .closed(let path):
            "memory: \(path) was closed"
        }
    }

    /// SQLite's error in words, for `path`.
    static func from(_ error: any Error, path: String) -> MemoryError {
        if let error = error as? MemoryError { return error }
        guard let error = error as? DatabaseError else {
            return .sqlite(path: path, code: -1, reason: String(describing: error))
        }
        let reason = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT: return .notADatabase(path: path, reason: reason)
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH: return .readOnly(path: path, reason: reason)
        case .SQLITE_BUSY, .SQLITE_LOCKED: return .locked(path: path, reason: reason)
        case .SQLITE_CANTOPEN: return .cannotOpen(path: path, reason: reason)
        case .SQLITE_FULL: return .full(path: path, reason: reason)
        default: return .sqlite(path: path, code: error.extendedResultCode.rawValue, reason: reason)
        }
    }
}
