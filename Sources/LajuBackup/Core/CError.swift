internal import CSupport

/// A failure reported by the C core (`CSupport`), carrying the library's own code and message.
///
/// `status` is one of the `CS_ERR_*` codes of `csupport.h`; `libraryCode` is what the wrapped
/// library said (an `errno`, an extended SQLite result code, a `CURLcode`, an OpenSSL error).
public struct CError: Error, CustomStringConvertible, Sendable {
    public enum Status: Int32, Sendable {
        case argument = 1, io, noSpace, sqlite, notADatabase, busy, zlib, crypto,
            authentication, curl, noMemory, cancelled, archive
    }
    public let status: Status
    public let libraryCode: Int64
    public let message: String
    public var description: String { message }
}

/// Every C call that can fail goes through here (in the manner of swift-system's `valueOrErrno`):
/// one place turns a status plus message buffer into a Swift error, so failure paths are uniform
/// and testable.
@discardableResult
func cCall(_ body: (UnsafeMutablePointer<cs_error>) -> Int32) throws(CError) -> Int32 {
    var err = cs_error()
    let rc = body(&err)
    if rc == CS_OK || rc == CS_ROW || rc == CS_DONE { return rc }
    let message = withUnsafeBytes(of: &err.message) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    throw CError(
        status: CError.Status(rawValue: rc) ?? .argument, libraryCode: err.lib_code,
        message: message.isEmpty ? "C core error \(rc)" : message)
}

/// Boxes a Swift progress closure for a C `cs_progress_fn` callback.
final class ProgressTrampoline {
    let body: (Int64, Int64) -> Bool
    init(_ body: @escaping (Int64, Int64) -> Bool) { self.body = body }

    /// The C function pointer: returns non-zero to cancel.
    static let callback: cs_progress_fn = { ctx, done, total in
        guard let ctx else { return 0 }
        let box = Unmanaged<ProgressTrampoline>.fromOpaque(ctx).takeUnretainedValue()
        return box.body(done, total) ? 0 : 1
    }

    /// Runs `call` with a context pointer valid for its duration.
    @discardableResult
    func with<R>(_ call: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            try call(Unmanaged.passUnretained(self).toOpaque())
        }
    }
}

/// Makes a rename in `dir` durable ([`cs_fsync_path`]).
func cFsyncDirectory(_ dir: String) throws {
    try cCall { cs_fsync_path(dir, $0) }
}
