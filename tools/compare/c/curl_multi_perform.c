/* curl_multi_perform: libcurl's classic multi_perform + multi_poll loop, N transfers in flight against one URL
 * for a fixed time. Written for AlertFanout's comparisons; loopback use only.
 *   usage: curl_multi_perform URL CONCURRENCY SECONDS
 *   prints: requests N errors E seconds S */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s URL CONCURRENCY SECONDS\n", argv[0]); return 64; }
    int conc = atoi(argv[2]);
    double secs = atof(argv[3]);
    curl_global_init(CURL_GLOBAL_ALL);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc);
    for (int i = 0; i < conc; i++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, argv[1]);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
        curl_multi_add_handle(m, e);
    }
    long completed = 0, errors = 0;
    double start = now(), end = start + secs;
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *e = msg->easy_handle;
            if (msg->data.result == CURLE_OK) completed++; else errors++;
            curl_multi_remove_handle(m, e);
            if (now() < end) { curl_multi_add_handle(m, e); running = 1; } else curl_easy_cleanup(e);
        }
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    printf("requests %ld errors %ld seconds %.3f\n", completed, errors, now() - start);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
}
