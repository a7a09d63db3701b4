import Foundation
import Glibc
import Platform

/// Why robotd-sim could not start, in words (printed as "Error: …", exit status 1).
struct SimCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The rover world's paths under one directory: the port link (`rover`, a symlink to the pty
/// slave), the gamepad FIFO (`gamepad`) and a lock file that keeps a second robotd-sim from
/// replacing a running one's paths. Links and FIFOs left by a run that was killed are removed
/// at start; `remove()` removes ours at exit (and the directory, if this run created it).
final class DevicePaths {
    let directory: String
    var rover: String { directory + "/rover" }
    var gamepad: String { directory + "/gamepad" }
    private var lockPath: String { directory + "/robotd-sim.lock" }
    private let lockFD: Int32
    private let createdDirectory: Bool

    init(directory: String) throws {
        self.directory = directory
        var isDirectory: ObjCBool = false
        let existed = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
        if existed && !isDirectory.boolValue { throw SimCommandError("\(directory) exists and is not a directory") }
        createdDirectory = !existed
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(directory + "/robotd-sim.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SimCommandError("cannot create \(directory)/robotd-sim.lock: \(SystemErrorWords.text(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let pid = String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw SimCommandError("another robotd-sim\(pid.isEmpty ? "" : " (pid \(pid))") is using \(directory): stop it, or give another --directory")
        }
        lockFD = fd
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        do {
            try Self.removeStale(directory + "/rover", kind: S_IFLNK, what: "a symlink")
            try Self.removeStale(directory + "/gamepad", kind: S_IFIFO, what: "a FIFO")
        } catch {
            remove()
            throw error
        }
    }

    /// Removes a link or FIFO a previous run left behind; anything else there is not ours to delete.
    private static func removeStale(_ path: String, kind: mode_t, what: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard info.st_mode & S_IFMT == kind else {
            throw SimCommandError("\(path) exists and is not \(what) robotd-sim made: remove it, or give another --directory")
        }
        guard unlink(path) == 0 else { throw SimCommandError("cannot remove the stale \(path): \(SystemErrorWords.text(errno))") }
    }

    /// Removes our link, FIFO and lock (only if they are still a link and a FIFO), then the
    /// directory if this run created it and it is empty.
    func remove() {
        for (path, kind) in [(rover, S_IFLNK), (gamepad, S_IFIFO)] {
            var info = stat()
            if lstat(path, &info) == 0 && info.st_mode & S_IFMT == kind { unlink(path) }
        }
        unlink(lockPath)
        close(lockFD)
        if createdDirectory { rmdir(directory) }
    }
}
