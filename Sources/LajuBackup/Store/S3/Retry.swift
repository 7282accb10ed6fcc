/// Retry policy of the S3 store: exponential back-off with jitter (after "Exponential Backoff And
/// Jitter", AWS Architecture Blog; a floor of a quarter of the ceiling keeps retries from coming
/// back at once), a bounded number of attempts. Server errors, throttling and
/// broken connections are retried; client errors (auth, missing objects, bad requests) never are.
struct RetryPolicy {
    var maxAttempts: Int
    var baseDelay: Double = 0.25
    var maxDelay: Double = 8

    /// Delay before attempt `attempt + 1` (attempt counts from 1): random in [c/4, c] with
    /// c = min(max, base·2^(attempt-1)).
    func delay(after attempt: Int) -> Double {
        let ceiling = min(maxDelay, baseDelay * Double(1 << min(attempt - 1, 20)))
        return Double.random(in: ceiling / 4...ceiling)
    }

    func sleep(after attempt: Int) {
        let d = delay(after: attempt)
        var ts = timespec(tv_sec: Int(d), tv_nsec: Int((d - d.rounded(.down)) * 1e9))
        var left = timespec()
        while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
    }

    /// libcurl failures worth another attempt: connection refused/reset, timeouts, stalls, a
    /// connection that closed mid-response, TLS handshakes cut short. Not: bad URLs, DNS names that
    /// do not resolve, local read/write errors, cancellation.
    static func isRetryable(curlCode: Int64) -> Bool {
        switch curlCode {
        case 7,  // CURLE_COULDNT_CONNECT
            16,  // CURLE_HTTP2
            18,  // CURLE_PARTIAL_FILE
            28,  // CURLE_OPERATION_TIMEDOUT (includes the low-speed stall abort)
            35,  // CURLE_SSL_CONNECT_ERROR
            52,  // CURLE_GOT_NOTHING
            55,  // CURLE_SEND_ERROR
            56,  // CURLE_RECV_ERROR
            92:  // CURLE_HTTP2_STREAM
            return true
        default:
            return false
        }
    }
}
