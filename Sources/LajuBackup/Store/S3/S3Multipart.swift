import Synchronization

/// Multipart upload: CreateMultipartUpload (with the object's metadata), UploadPart on
/// `BACKUP_UPLOAD_CONCURRENCY` threads (each part read by curl straight from the file range, so
/// memory stays bounded whatever the object size), CompleteMultipartUpload, and
/// AbortMultipartUpload on any failure so no orphaned parts are billed.
extension S3Store {
    func putMultipart(
        key: String, fd: Int32, size: Int64, md5: [UInt8], metadata: [String: String],
        progress: TransferProgress?, sealedParts: PartDigests? = nil
    ) throws {
        let partSize = configuration.effectivePartSize(for: size)
        let count = Int((size + partSize - 1) / partSize)
        // The seal pass hashed the object in pieces of the configured part size; they are this
        // upload's parts unless the object needs more than 10,000 of them (then the part size
        // doubles, MD5s cannot be combined, and each part is read once more to hash it).
        let sealed = sealedParts.flatMap { p in
            p.partSize == partSize && p.md5.count == count && (!configuration.signPayload || p.sha256?.count == count)
                ? p : nil
        }
        let created = try send(
            operation: "CreateMultipartUpload \(key)", method: "POST", key: key,
            query: [("uploads", "")], headers: objectHeaders(metadata))
        guard let uploadID = XMLScan(created.body).first("UploadId"), !uploadID.isEmpty else {
            throw LajuError(.storage, "S3 CreateMultipartUpload \(key): the answer holds no UploadId")
        }
        let state = PartState(count: count, total: size, progress: progress)
        // Parts are billed until the upload is completed or aborted: if a signal ends the run,
        // stop the workers and abort the upload before the process exits.
        let onSignal = CleanupRegistry.shared.add(action: { [self] _ in
            state.fail(LajuError(.storage, "interrupted"))
            // A signal wants the process gone: one quick try (10 s at most), not the usual retries.
            _ = abort(key: key, uploadID: uploadID, maxAttempts: 1, totalTimeout: 10)
        })
        defer { CleanupRegistry.shared.remove(onSignal) }
        do {
            let etags = try uploadParts(
                key: key, uploadID: uploadID, fd: fd, size: size, partSize: partSize,
                count: count, state: state, sealed: sealed)
            try complete(key: key, uploadID: uploadID, etags: etags, size: size, md5: md5)
        } catch let error as LajuError {
            if let abortError = abort(key: key, uploadID: uploadID) {
                throw LajuError(
                    error.kind,
                    "\(error.message) (and the incomplete multipart upload \(uploadID) could not be aborted: \(abortError.message); a bucket lifecycle rule for incomplete uploads removes it)",
                    hint: error.hint)
            }
            throw error
        }
    }

    /// Uploads every part; returns the ETags in part order. The first failure stops the others.
    func uploadParts(
        key: String, uploadID: String, fd: Int32, size: Int64, partSize: Int64, count: Int,
        state: PartState, sealed: PartDigests? = nil
    ) throws -> [String] {
        let workers = min(configuration.concurrency, count)
        runThreads(workers) { [self] in
            while let index = state.next() {
                let offset = Int64(index) * partSize
                let length = min(partSize, size - offset)
                do {
                    let etag = try uploadPart(
                        key: key, uploadID: uploadID, number: index + 1, fd: fd,
                        offset: offset, length: length,
                        digests: sealed.map { ($0.md5[index], $0.sha256?[index]) }
                    ) { done in state.progress(part: index, bytes: done) }
                    state.finish(part: index, etag: etag, bytes: length)
                } catch {
                    state.fail(error)
                    return
                }
            }
        }
        return try state.result()
    }

    func uploadPart(
        key: String, uploadID: String, number: Int, fd: Int32, offset: Int64, length: Int64,
        digests: (md5: [UInt8], sha256: [UInt8]?)? = nil,
        progress: @escaping (Int64) -> Bool
    ) throws -> String {
        // Digests from the seal pass when there are some; else read the part to hash it.
        let (md5, sha) =
            try digests.map { d in
                (d.md5, configuration.signPayload ? d.sha256!.hexString : "UNSIGNED-PAYLOAD")
            }
            ?? localDigest {
                (
                    try Digest.hash(.md5, fileDescriptor: fd, offset: offset, length: length),
                    try payloadHash(fd: fd, offset: offset, length: length)
                )
            }
        let r = try send(
            operation: "UploadPart \(number) of \(key)", method: "PUT", key: key,
            query: [("partNumber", String(number)), ("uploadId", uploadID)],
            headers: [("Content-MD5", Data(md5).base64EncodedString())],
            body: .file(fd: fd, offset: offset, length: length), payloadHash: sha,
            progress: { done, _ in progress(done) })
        guard let etag = r.headers["etag"], !etag.isEmpty else {
            throw LajuError(.storage, "S3 UploadPart \(number) of \(key): the answer holds no ETag")
        }
        return etag
    }

    func complete(key: String, uploadID: String, etags: [String], size: Int64, md5: [UInt8]) throws {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for (i, etag) in etags.enumerated() {
            xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(XMLScan.escape(etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let body = Array(xml.utf8)
        let operation = "CompleteMultipartUpload \(key)"
        do {
            // S3 may answer 200 and still fail: the error is then in the body.
            _ = try send(
                operation: operation, method: "POST", key: key, query: [("uploadId", uploadID)],
                headers: [
                    ("Content-Type", "application/xml"),
                    ("Content-MD5", Data(Digest.hash(.md5, body)).base64EncodedString())
                ],
                body: .bytes(body), payloadHash: sha256Hex(body),
                check: { r in
                    let doc = XMLScan(r.body)
                    guard !doc.elements("Error").isEmpty else { return nil }
                    return S3ErrorResponse(status: r.status, body: r.body, headers: r.headers)
                })
        } catch let e as LajuError where e.message.contains("NoSuchUpload") {
            // A retried Complete whose first try went through: the object is there, whole.
            if let info = try? head(key: key), info.size == size, info.metadata["checksum"] == md5.hexString { return }
            throw e
        }
    }

    /// Best effort, with retries; returns the error when the upload could not be aborted.
    func abort(key: String, uploadID: String, maxAttempts: Int? = nil, totalTimeout: Int32 = 0) -> LajuError? {
        do {
            _ = try send(
                operation: "AbortMultipartUpload \(key)", method: "DELETE", key: key,
                query: [("uploadId", uploadID)], passthrough: [404], maxAttempts: maxAttempts,
                totalTimeout: totalTimeout)
            return nil
        } catch let e as LajuError {
            return e
        } catch {
            return LajuError(.storage, "\(error)")
        }
    }
}

/// Shared bookkeeping of the part workers: the next part to take, ETags, bytes done, first error.
///
/// `@unchecked Sendable` because the user's progress closure is not `Sendable`: it is only ever
/// called while `state`'s lock is held, so two workers never run it at the same time. Every
/// mutable field lives inside the `Mutex`.
final class PartState: @unchecked Sendable {
    private struct Inner {
        var nextIndex = 0
        var etags: [String?]
        var inFlight: [Int: Int64] = [:]
        var finished: Int64 = 0
        var error: Error?
        var done: Int64 { finished + inFlight.values.reduce(0, +) }
    }
    private let state: Mutex<Inner>
    private let count: Int
    private let total: Int64
    private let userProgress: TransferProgress?

    init(count: Int, total: Int64, progress: TransferProgress?) {
        self.count = count
        self.total = total
        state = Mutex(Inner(etags: Array(repeating: nil, count: count)))
        userProgress = progress
    }

    /// The next part index, or nil when all are taken or something failed.
    func next() -> Int? {
        state.withLock { s in
            guard s.error == nil, s.nextIndex < count else { return nil }
            defer { s.nextIndex += 1 }
            return s.nextIndex
        }
    }

    /// Progress of one in-flight part; the user's callback runs under the lock (one caller at a time).
    func progress(part: Int, bytes: Int64) -> Bool {
        state.withLock { s in
            guard s.error == nil else { return false }
            s.inFlight[part] = bytes
            guard let userProgress else { return true }
            return userProgress(s.done, total)
        }
    }

    func finish(part: Int, etag: String, bytes: Int64) {
        state.withLock { s in
            s.etags[part] = etag
            s.inFlight[part] = nil
            s.finished += bytes
            _ = userProgress?(s.done, total)
        }
    }

    func fail(_ e: Error) {
        state.withLock { s in if s.error == nil { s.error = e } }
    }

    func result() throws -> [String] {
        let (error, etags) = state.withLock { ($0.error, $0.etags) }
        if let error {
            if let e = error as? LajuError { throw e }
            throw LajuError(.storage, "multipart upload failed: \(error)")
        }
        let done = etags.compactMap { $0 }
        guard done.count == count else { throw LajuError(.storage, "multipart upload cancelled") }
        return done
    }
}

/// Incomplete multipart uploads (ListMultipartUploads / AbortMultipartUpload): what a `kill -9`
/// during a large upload leaves behind, billed until aborted. `clean --orphans` reports them and
/// `--delete-orphans` aborts those of this profile older than the grace period.
extension S3Store {
    public func partialUploads(prefix: String) throws -> [PartialUpload] {
        var out: [PartialUpload] = []
        var keyMarker: String?
        var idMarker: String?
        var seen = Set<String>()
        for _ in 0..<S3Store.maxListPages {
            var query: [(String, String)] = [("uploads", "")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let idMarker { query.append(("upload-id-marker", idMarker)) }
            let operation = "ListMultipartUploads \(prefix)"
            let r = try send(
                operation: operation, method: "GET", key: nil, query: query, responseBufferCap: S3Store.listBufferCap)
            func malformed(_ why: String) -> LajuError {
                LajuError(
                    .storage, "S3 \(Display.safe(operation)): malformed answer: \(why)",
                    hint: "the S3 server is misbehaving; nothing was changed")
            }
            if r.bodyTruncated { throw malformed("larger than \(S3Store.listBufferCap >> 20) MiB") }
            guard let root = XMLScan(r.body).elements("ListMultipartUploadsResult").first else {
                throw malformed("no complete <ListMultipartUploadsResult> document")
            }
            let doc = XMLScan(text: String(root))
            let uploads = doc.elements("Upload")
            guard uploads.count == doc.count(opening: "Upload") else {
                throw malformed("an <Upload> element is not closed")
            }
            for u in uploads {
                let e = XMLScan(text: String(u))
                guard let key = e.first("Key"), let id = e.first("UploadId"), !id.isEmpty else {
                    throw malformed("an <Upload> without <Key> or <UploadId>")
                }
                guard key.hasPrefix(prefix) else { throw malformed("key \(Display.quoted(key)) is outside the prefix") }
                out.append(
                    PartialUpload(
                        key: key, uploadID: id, started: e.first("Initiated").flatMap(HTTPDate.parseISO),
                        ownerGone: false))
            }
            let top = XMLScan(text: doc.text.replacingContents(of: "Upload"))
            guard top.first("IsTruncated")?.trimmingSpaces.lowercased() == "true" else { return out }
            keyMarker = top.first("NextKeyMarker")
            idMarker = top.first("NextUploadIdMarker")
            let marker = (keyMarker ?? "") + "\u{0}" + (idMarker ?? "")
            guard keyMarker != nil, seen.insert(marker).inserted else {
                throw malformed("the listing does not advance")
            }
        }
        throw LajuError(
            .storage,
            "S3 ListMultipartUploads \(Display.safe(prefix)): more than \(S3Store.maxListPages) pages; giving up")
    }

    public func removePartialUpload(_ upload: PartialUpload) throws {
        guard let id = upload.uploadID else { throw LajuError(.usage, "no UploadId for \(Display.quoted(upload.key))") }
        if let error = abort(key: upload.key, uploadID: id) { throw error }
    }
}
