/* The run's cookie jar: Set-Cookie answers are kept and sent back with later requests to the
 * same host and path, as Newman's jar does (RFC 6265, without public-suffix checks: a run talks
 * to the hosts its collection names). Cookies live in a JSON list of {name, value, domain, path,
 * hostOnly}. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apitest/internal.h"

/* host (lower case, no port) and path of url into the buffers; 0, or -1 when url is not
 * http(s)://host... */
static int url_parts(const char *url, char *host, size_t hn, char *path, size_t pn)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    size_t len = strcspn(p, ":/?#");
    if (!len || len >= hn)
        return -1;
    for (size_t i = 0; i < len; i++)
        host[i] = (char)tolower((unsigned char)p[i]);
    host[len] = '\0';
    p += len;
    p += strcspn(p, "/?#");
    size_t plen = *p == '/' ? strcspn(p, "?#") : 0;
    if (!plen) {
        snprintf(path, pn, "/");
    } else {
        snprintf(path, pn, "%.*s", (int)plen, p);
    }
    return 0;
}

static int domain_match(const char *host, const char *domain, int host_only)
{
    if (strcasecmp(host, domain) == 0)
        return 1;
    size_t h = strlen(host), d = strlen(domain);
    return !host_only && h > d && host[h - d - 1] == '.' && strcasecmp(host + h - d, domain) == 0;
}

static int path_match(const char *req, const char *cookie)
{
    size_t c = strlen(cookie);
    if (strncmp(req, cookie, c) != 0)
        return 0;
    return req[c] == '\0' || cookie[c - 1] == '/' || req[c] == '/';
}

/* The attribute value of name in the "; a=b; c" list of a Set-Cookie value, or NULL. */
static char *attribute(const char *attrs, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = attrs; p && *p;) {
        while (*p == ';' || *p == ' ')
            p++;
        const char *end = p + strcspn(p, ";");
        if ((size_t)(end - p) >= n && strncasecmp(p, name, n) == 0) {
            const char *q = p + n;
            while (*q == ' ')
                q++;
            if (q == end)
                return strdup("");
            if (*q == '=') {
                q++;
                while (*q == ' ')
                    q++;
                const char *e = end;
                while (e > q && e[-1] == ' ')
                    e--;
                char *v = malloc((size_t)(e - q) + 1);
                if (v) {
                    memcpy(v, q, (size_t)(e - q));
                    v[e - q] = '\0';
                }
                return v;
            }
        }
        p = end;
    }
    return NULL;
}

void mk_apitest_jar_store(json_t *jar, const char *url, const char *set_cookie)
{
    char host[256], rpath[1024];
    if (url_parts(url, host, sizeof host, rpath, sizeof rpath) < 0)
        return;
    const char *semi = strchr(set_cookie, ';');
    size_t pair = semi ? (size_t)(semi - set_cookie) : strlen(set_cookie);
    const char *eq = memchr(set_cookie, '=', pair);
    if (!eq || eq == set_cookie)
        return;
    const char *attrs = semi ? semi : "";
    char *name = strndup(set_cookie, (size_t)(eq - set_cookie));
    char *value = strndup(eq + 1, pair - (size_t)(eq + 1 - set_cookie));
    char *domain = attribute(attrs, "domain");
    char *path = attribute(attrs, "path");
    char *max_age = attribute(attrs, "max-age");
    char *expires = attribute(attrs, "expires");
    int host_only = !domain || !domain[0];
    const char *dom = host_only ? host : domain + (domain[0] == '.');
    char def_path[1024];
    /* the default path: the request path up to its last '/' */
    const char *slash = strrchr(rpath, '/');
    snprintf(def_path, sizeof def_path, "%.*s", slash && slash != rpath ? (int)(slash - rpath) : 1,
             rpath);
    const char *p = path && path[0] == '/' ? path : def_path;
    /* deleted by a past expiry or Max-Age <= 0 (an Expires in 1970 is how servers say it) */
    int gone = (max_age && atol(max_age) <= 0) || (expires && strstr(expires, "1970"));
    if (name && value && domain_match(host, dom, 0)) {
        size_t i;
        json_t *c;
        json_array_foreach(jar, i, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0 &&
                strcasecmp(json_string_value(json_object_get(c, "domain")), dom) == 0 &&
                strcmp(json_string_value(json_object_get(c, "path")), p) == 0) {
                json_array_remove(jar, i);
                break;
            }
        }
        if (!gone)
            json_array_append_new(jar, json_pack("{s:s, s:s, s:s, s:s, s:b}", "name", name, "value",
                                                 value, "domain", dom, "path", p, "hostOnly",
                                                 host_only));
    }
    free(name);
    free(value);
    free(domain);
    free(path);
    free(max_age);
    free(expires);
}

char *mk_apitest_jar_header(const json_t *jar, const char *url)
{
    char host[256], path[1024];
    if (!json_array_size(jar) || url_parts(url, host, sizeof host, path, sizeof path) < 0)
        return NULL;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    size_t i;
    const json_t *c;
    json_array_foreach(jar, i, c)
    {
        if (!domain_match(host, json_string_value(json_object_get(c, "domain")),
                          json_is_true(json_object_get(c, "hostOnly"))) ||
            !path_match(path, json_string_value(json_object_get(c, "path"))))
            continue;
        mk_buf_appendf(&b, "%s%s=%s", b.len ? "; " : "",
                       json_string_value(json_object_get(c, "name")),
                       json_string_value(json_object_get(c, "value")));
    }
    return b.len ? mk_buf_take(&b) : (mk_buf_free(&b), NULL);
}
