/* HTTP over libcurl: implemented by the S3 work (issue 3). Placeholder entry points keep the
 * ABI linkable until then; they fail loudly, never silently. */
#include "internal.h"
#include <stdlib.h>
#include <curl/curl.h>

struct cs_http { CURL *curl; };

cs_http *cs_http_new(void) { return NULL; }
void cs_http_free(cs_http *h) { (void)h; }
int32_t cs_http_perform(cs_http *h, const cs_http_request *req, cs_http_result *result, cs_error *err) {
    (void)h; (void)req; (void)result;
    return cs_fail(err, CS_ERR_ARG, 0, "HTTP support is not built yet");
}
const char *cs_http_response_headers(cs_http *h) { (void)h; return ""; }
const void *cs_http_response_body(cs_http *h, size_t *length) { (void)h; if (length) *length = 0; return NULL; }
const char *cs_http_version(void) { return curl_version(); }
