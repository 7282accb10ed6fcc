/// What every Swift fuzz target shares: the libFuzzer driver call and input conversions.
///
/// Why each target defines `<module>_main` instead of relying on libFuzzer's `main`: SwiftPM links
/// an executable target with `--defsym main=<module>_main` (so that tests can link executables),
/// and with `-parse-as-library` no such symbol exists. Each target therefore exports that symbol
/// itself and hands over to libFuzzer's own driver, `LLVMFuzzerRunDriver`, which parses the usual
/// libFuzzer command line (`-runs=`, `-max_total_time=`, corpus directories, `-merge=1`, ...).

public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> CInt

/// Runs libFuzzer with this process's arguments and `callback` as `LLVMFuzzerTestOneInput`.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ callback: FuzzCallback
) -> CInt {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector, callback)
}

/// The input as bytes (libFuzzer passes a null pointer for the empty input).
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// The input as text, decoded the way the project decodes files and HTTP bodies
/// (`String(decoding:as: UTF8.self)`: invalid UTF-8 becomes U+FFFD).
public func fuzzText(_ data: UnsafePointer<UInt8>?, _ size: Int) -> String {
    String(decoding: fuzzBytes(data, size), as: UTF8.self)
}

/// A failed check: prints what broke and traps, so libFuzzer records the input as a crash.
public func fuzzCheck(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() {
        fatalError("fuzz invariant violated: \(message())", file: file, line: line)
    }
}

/// Whether `needle`'s UTF-8 bytes occur anywhere in `haystack`'s. Unlike `String.contains`, which
/// compares Characters, this also sees a secret whose last character merged with a following
/// combining mark: the bytes are all there for anyone reading the log.
public func containsBytes(_ haystack: String, _ needle: String) -> Bool {
    let h = Array(haystack.utf8), n = Array(needle.utf8)
    guard !n.isEmpty else { return true }
    guard h.count >= n.count else { return false }
    for i in 0...(h.count - n.count) where h[i] == n[0] && Array(h[i..<(i + n.count)]) == n {
        return true
    }
    return false
}
