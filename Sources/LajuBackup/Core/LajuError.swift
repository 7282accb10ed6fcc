/// Every failure the tool reports: what is wrong, what to do, and which exit status it maps to.
public struct LajuError: Error, CustomStringConvertible, Sendable {
    /// Failure classes, each with its own documented exit status.
    public enum Kind: Int32, Sendable, CaseIterable {
        /// Unexpected failure (a bug): exit 1.
        case `internal` = 1
        /// Bad command line or configuration (key, store URL, missing settings): exit 2.
        case usage = 2
        /// The source database is missing, unreadable or not SQLite: exit 3.
        case source = 3
        /// A backup failed verification: checksum, authentication tag, gzip or integrity_check: exit 4.
        case integrity = 4
        /// The object store failed or refused (network, credentials, missing object): exit 5.
        case storage = 5
        /// Local filesystem trouble: no space, output exists, unwritable directory: exit 6.
        case local = 6
        /// Another run holds the lock, or the database stayed locked: exit 7.
        case busy = 7
        /// The catalog table is missing or has an unexpected shape: exit 8.
        case catalog = 8

        public var exitCode: Int32 { rawValue }
    }

    public let kind: Kind
    public let message: String
    public let hint: String?
    /// Set by stores when the object does not exist (S3 404, missing file).
    public var isNotFound = false
    /// The S3 error code (`AccessDenied`, `SignatureDoesNotMatch`...), when S3 refused.
    public var code: String?

    /// S3 refused the request for lack of permission, which also proves that it accepted the
    /// signature (wrong credentials give `SignatureDoesNotMatch` or `InvalidAccessKeyId`).
    public var isAccessDenied: Bool { code == "AccessDenied" || code == "Forbidden" }

    public init(_ kind: Kind, _ message: String, hint: String? = nil, isNotFound: Bool = false) {
        self.kind = kind
        self.message = message
        self.hint = hint
        self.isNotFound = isNotFound
    }

    public var description: String {
        guard let hint else { return message }
        return "\(message); \(hint)"
    }
}
