/* HTTP over libcurl for the S3 store: one request per cs_http_perform call, on one reusable easy
 * handle per cs_http (so connections stay alive between requests; curl_easy_reset keeps them).
 *
 * Deliberate choices (each one avoids a problem S3-compatible servers show in the wild):
 *   - bodies always have a known length: PUT uses CURLOPT_INFILESIZE_LARGE, POST
 *     CURLOPT_POSTFIELDSIZE_LARGE, so curl sends Content-Length and never chunked encoding;
 *   - `Expect: 100-continue` is disabled (some gateways mishandle it, and it costs a round trip);
 *   - the request body is read with pread() from an fd range, so a 10 GiB part never sits in
 *     memory, and a SEEKFUNCTION lets curl rewind when it transparently retries on a dead
 *     kept-alive connection;
 *   - a 2xx response body goes straight to an fd with pwrite(); any other body is buffered
 *     (bounded) for the caller's XML error parsing;
 *   - TLS verification stays on with the system CA bundle; only http and https are allowed, and
 *     redirects are not followed (a redirect from S3 is an error the caller must see). */
#include "internal.h"
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cs_http {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    /* Response headers of the last request: "name: value\n" lines, names lowercase. */
    char *headers;
    size_t headers_len, headers_cap;
    /* In-memory response body of the last request (bounded by the request's cap). */
    unsigned char *body;
    size_t body_len, body_cap;
};

/* Per-request state the callbacks see. */
typedef struct transfer {
    cs_http *h;
    const cs_http_request *req;
    int64_t sent;       /* request body bytes handed to curl */
    int64_t out_pos;    /* next pwrite position in response_fd */
    int64_t received;   /* response body bytes accepted (written or buffered) */
    int write_errno;    /* errno of a failed response write, reported after curl returns */
    int read_errno;     /* errno of a failed request body read */
    int truncated_once; /* a 200 to a ranged request restarted the output file */
    int body_truncated; /* a buffered body was longer than the cap */
    int deadline_hit;   /* the transfer ran past its size-dependent deadline */
    double started;     /* CLOCK_MONOTONIC seconds at the start of the request */
} transfer;

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

cs_http *cs_http_new(void) {
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) return NULL;
    cs_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        return NULL;
    }
    return h;
}

void cs_http_free(cs_http *h) {
    if (!h) return;
    curl_easy_cleanup(h->curl);
    free(h->headers);
    free(h->body);
    free(h);
}

static int append(char **buf, size_t *len, size_t *cap, const void *data, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t want = *cap ? *cap : 1024;
        while (want < *len + n + 1) want *= 2;
        char *p = realloc(*buf, want);
        if (!p) return -1;
        *buf = p;
        *cap = want;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

static long response_code(cs_http *h) {
    long code = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

/* Request body: pread from the fd range, or copy from the memory buffer. */
static size_t read_cb(char *dst, size_t size, size_t nitems, void *userdata) {
    transfer *t = userdata;
    const cs_http_request *r = t->req;
    size_t want = size * nitems;
    if (r->body_fd >= 0) {
        int64_t left = r->body_fd_length - t->sent;
        if (left <= 0) return 0;
        if ((int64_t)want > left) want = (size_t)left;
        ssize_t n;
        do {
            n = pread(r->body_fd, dst, want, r->body_fd_offset + t->sent);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            t->read_errno = errno;
            return CURL_READFUNC_ABORT;
        }
        if (n == 0) {
            t->read_errno = EIO;
            return CURL_READFUNC_ABORT;
        } /* file shrank under us */
        t->sent += n;
        return (size_t)n;
    }
    int64_t left = (int64_t)r->body_length - t->sent;
    if (left <= 0) return 0;
    if ((int64_t)want > left) want = (size_t)left;
    memcpy(dst, (const char *)r->body + t->sent, want);
    t->sent += (int64_t)want;
    return want;
}

/* curl rewinds the body when it retries a request on a kept-alive connection that turned out
 * dead. */
static int seek_cb(void *userdata, curl_off_t offset, int origin) {
    transfer *t = userdata;
    if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
    t->sent = offset;
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata) {
    transfer *t = userdata;
    const cs_http_request *r = t->req;
    size_t n = size * nmemb;
    long code = response_code(t->h);
    if (r->response_fd >= 0 && code >= 200 && code < 300) {
        /* A server that ignores Range answers 200 with the whole object: start the file over. */
        if (code == 200 && t->out_pos > 0 && !t->truncated_once && t->received == 0) {
            if (ftruncate(r->response_fd, 0) != 0) {
                t->write_errno = errno;
                return 0;
            }
            t->out_pos = 0;
            t->truncated_once = 1;
        }
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(r->response_fd, data + done, n - done, t->out_pos);
            if (w < 0) {
                if (errno == EINTR) continue;
                t->write_errno = errno;
                return 0; /* makes curl fail with CURLE_WRITE_ERROR */
            }
            done += (size_t)w;
            t->out_pos += w;
        }
        t->received += (int64_t)n;
        return n;
    }
    /* Error bodies (and 2xx bodies without an fd) are kept in memory up to the cap; the rest is
     * dropped, never an error: an S3 error document is small. */
    cs_http *h = t->h;
    size_t room = r->response_buffer_cap > h->body_len ? r->response_buffer_cap - h->body_len : 0;
    size_t keep = n < room ? n : room;
    if (keep < n) t->body_truncated = 1;
    if (keep > 0 && append((char **)&h->body, &h->body_len, &h->body_cap, data, keep) != 0)
        return 0;
    t->received += (int64_t)n;
    return n;
}

/* Collects the final response's headers with lowercase names (a new status line, e.g. after a
 * 100 Continue, starts over). */
static size_t header_cb(char *data, size_t size, size_t nitems, void *userdata) {
    transfer *t = userdata;
    cs_http *h = t->h;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        h->headers_len = 0;
        if (h->headers) h->headers[0] = 0;
        return n;
    }
    size_t len = n;
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n')) len--;
    if (len == 0) return n;
    char line[8192];
    if (len >= sizeof line) len = sizeof line - 1;
    memcpy(line, data, len);
    line[len] = 0;
    char *colon = strchr(line, ':');
    if (!colon) return n;
    for (char *p = line; p < colon; p++) *p = (char)tolower((unsigned char)*p);
    if (append(&h->headers, &h->headers_len, &h->headers_cap, line, len) != 0 ||
        append(&h->headers, &h->headers_len, &h->headers_cap, "\n", 1) != 0)
        return 0;
    return n;
}

static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    transfer *t = userdata;
    const cs_http_request *r = t->req;
    if (r->min_rate > 0) {
        /* A trickle above curl's low-speed limit would otherwise keep a transfer alive forever. */
        curl_off_t bytes = ultotal > dltotal ? ultotal : dltotal;
        double allowed = (double)r->deadline_base_s + (double)bytes / (double)r->min_rate;
        if (mono_seconds() - t->started > allowed) {
            t->deadline_hit = 1;
            return 1;
        }
    }
    if (!r->progress) return 0;
    int64_t done = ultotal > 0 ? (int64_t)ulnow : (int64_t)dlnow;
    int64_t total = ultotal > 0 ? (int64_t)ultotal : (int64_t)dltotal;
    return r->progress(r->progress_ctx, done, total) != 0;
}

/* ------------------------------------------------------------------------------------------------
 * One request, in the order cs_http_perform takes the steps
 * ---------------------------------------------------------------------------------------------- */

/* The caller's headers, plus empty ones that stop curl from adding its own: no 100-continue round
 * trip, no chunked bodies, no form content type curl would add on POST. NULL when out of memory. */
static struct curl_slist *request_headers(const cs_http_request *req) {
    struct curl_slist *list = NULL, *tmp;
    int has_content_type = 0;
    for (size_t i = 0; i < req->header_count; i++) {
        if (strncasecmp(req->headers[i], "content-type:", 13) == 0) has_content_type = 1;
        if (!(tmp = curl_slist_append(list, req->headers[i]))) goto nomem;
        list = tmp;
    }
    if (!(tmp = curl_slist_append(list, "Expect:"))) goto nomem;
    list = tmp;
    if (!(tmp = curl_slist_append(list, "Transfer-Encoding:"))) goto nomem;
    list = tmp;
    if (!has_content_type) {
        if (!(tmp = curl_slist_append(list, "Content-Type:"))) goto nomem;
        list = tmp;
    }
    return list;
nomem:
    curl_slist_free_all(list);
    return NULL;
}

/* Where the request goes and how: protocols, TLS, timeouts. Fails only when this libcurl cannot
 * restrict the protocols. */
static int32_t set_connection_options(CURL *c, cs_http *h, const cs_http_request *req,
                                      struct curl_slist *list, cs_error *err) {
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    /* Only http and https (7.85+ spells this CURLOPT_PROTOCOLS_STR); refuse to run otherwise. */
    if (curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
        return cs_fail(err, CS_ERR_CURL, CURLE_UNKNOWN_OPTION,
                       "this libcurl cannot restrict protocols to http and https "
                       "(needs 7.85 or later)");
    /* Keys are sent exactly as signed: no dot-segment removal ("a/../b" must never become "b"). */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "laju-backup");
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
    long connect = req->connect_timeout_s > 0 ? req->connect_timeout_s : 15;
    long low_speed_time = req->low_speed_time_s > 0 ? req->low_speed_time_s : 60;
    long low_speed_limit = req->low_speed_limit > 0 ? req->low_speed_limit : 1;
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, low_speed_time);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, low_speed_limit);
    if (req->total_timeout_s > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)req->total_timeout_s);
    return CS_OK;
}

/* The callbacks above, all given the transfer's state. */
static void set_callbacks(CURL *c, transfer *t) {
    const cs_http_request *req = t->req;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, t);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, (req->progress || req->min_rate > 0) ? 0L : 1L);
}

/* The verb, and the body's length announced up front (Content-Length, never chunked). */
static void set_method(CURL *c, const cs_http_request *req) {
    int has_body = req->body_fd >= 0 || req->body_length > 0;
    int64_t body_len = req->body_fd >= 0 ? req->body_fd_length : (int64_t)req->body_length;
    const char *m = req->method;
    if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(m, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        /* DELETE and anything else: a custom verb, with a body only if one was given. */
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
        if (has_body) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
        }
    }
}

/* What the transfer did, whether or not it succeeded. */
static void collect_result(cs_http *h, const transfer *t, cs_http_result *result) {
    result->status = (int32_t)response_code(h);
    result->bytes_received = t->received;
    result->bytes_sent = t->sent;
    result->body_truncated = t->body_truncated;
    double secs = 0;
    curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME, &secs);
    result->total_seconds = secs;
}

/* curl's result as a status: our own callbacks' failures first, as they say more than curl. */
static int32_t transfer_status(cs_http *h, const transfer *t, CURLcode rc, cs_error *err) {
    if (rc == CURLE_OK) return CS_OK;
    if (rc == CURLE_WRITE_ERROR && t->write_errno)
        return cs_fail_errno(err, t->write_errno, "writing the downloaded body");
    if ((rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_READ_ERROR) && t->read_errno)
        return cs_fail_errno(err, t->read_errno, "reading the request body");
    if (rc == CURLE_ABORTED_BY_CALLBACK && t->deadline_hit)
        return cs_fail(err, CS_ERR_CURL, CURLE_OPERATION_TIMEDOUT,
                       "transfer too slow: no answer within %.0f s "
                       "(%lld bytes sent, %lld received)",
                       mono_seconds() - t->started, (long long)t->sent, (long long)t->received);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return cs_fail(err, CS_ERR_CANCELLED, rc, "transfer cancelled");
    return cs_fail(err, CS_ERR_CURL, rc, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
}

int32_t cs_http_perform(cs_http *h, const cs_http_request *req, cs_http_result *result,
                        cs_error *err) {
    if (!h || !req || !req->method || !req->url || !result)
        return cs_fail(err, CS_ERR_ARG, 0, "cs_http_perform: missing handle, request or result");
    memset(result, 0, sizeof *result);
    h->headers_len = 0;
    if (h->headers) h->headers[0] = 0;
    h->body_len = 0;

    CURL *c = h->curl;
    curl_easy_reset(c); /* options only: live connections, DNS and TLS session caches stay */
    transfer t = {.h = h,
                  .req = req,
                  .out_pos = req->response_fd >= 0 ? req->response_fd_offset : 0,
                  .started = mono_seconds()};
    h->errbuf[0] = 0;
    if (req->body_fd >= 0 && (req->body_fd_offset < 0 || req->body_fd_length < 0))
        return cs_fail(err, CS_ERR_ARG, 0, "cs_http_perform: negative body range");

    struct curl_slist *list = request_headers(req);
    if (!list) return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory building request headers");
    int32_t status = set_connection_options(c, h, req, list, err);
    if (status != CS_OK) {
        curl_slist_free_all(list);
        return status;
    }
    set_callbacks(c, &t);
    set_method(c, req);

    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(list);
    collect_result(h, &t, result);
    /* Never keep a pointer to the caller's header strings or our stack beyond this call. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    return transfer_status(h, &t, rc, err);
}

const char *cs_http_response_headers(cs_http *h) { return h && h->headers ? h->headers : ""; }

const void *cs_http_response_body(cs_http *h, size_t *length) {
    if (length) *length = h ? h->body_len : 0;
    return h ? h->body : NULL;
}

const char *cs_http_version(void) { return curl_version(); }
