/* libFuzzer harness for the SOAP envelope parser. Input: bytes up to the first NUL are the
 * envelope; what follows (if anything) is an XPath expression evaluated on it. Invariants: a
 * parse either fails with MK_EINVAL/MK_ETOOBIG or yields a version, an operation name and a
 * JSON view of the body; a fault built for either version parses back as an envelope. */
#include "soap/soap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t len = nul ? (size_t)(nul - text) : size;
    mk_soap_msg_t *msg = NULL;
    mk_err_t err;
    int rc = mk_soap_parse(text, len, &msg, &err);
    if (rc != 0) {
        if ((rc != MK_EINVAL && rc != MK_ETOOBIG) || msg != NULL)
            abort();
        return 0;
    }
    const char *op = mk_soap_msg_operation(msg);
    json_t *body = mk_soap_msg_body_json(msg);
    if (op == NULL || !json_is_object(body))
        abort();
    json_decref(body);
    if (nul && (size_t)(nul - text) + 1 < size) {
        size_t xl = size - len - 1;
        char *expr = malloc(xl + 1);
        memcpy(expr, nul + 1, xl);
        expr[xl] = '\0';
        mk_soap_xpath_t *xp;
        if (mk_soap_xpath_compile(expr, &xp, &err) == 0) {
            char *t = NULL;
            mk_soap_xpath_eval(xp, msg, &t);
            free(t);
            mk_soap_xpath_free(xp);
        }
        free(expr);
    }
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_soap_fault_t f = {op, op, op, op};
    if (mk_soap_fault(mk_soap_msg_version(msg), &f, &b) != 0)
        abort();
    mk_soap_msg_t *back = NULL;
    if (mk_soap_parse(b.data, b.len, &back, &err) != 0 ||
        strcmp(mk_soap_msg_operation(back), "Fault") != 0)
        abort();
    mk_soap_msg_free(back);
    mk_buf_free(&b);
    mk_soap_msg_free(msg);
    return 0;
}

/* Inputs past a fuzzer's length cap, replayed by soap_fuzz_replay: nesting 100,000 deep (refused
 * by depth, without recursion), an envelope one byte over the size limit, and one just under it
 * with 100,000 elements in the operation (parsed, turned into JSON, faulted back). */
void mk_fuzz_big_cases(void);

static void run_big(const char *head, const char *unit, size_t n, const char *tail)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_append_str(&b, head);
    for (size_t i = 0; i < n; i++)
        mk_buf_append_str(&b, unit);
    mk_buf_append_str(&b, tail);
    LLVMFuzzerTestOneInput((const uint8_t *)b.data, b.len);
    mk_buf_free(&b);
}

void mk_fuzz_big_cases(void)
{
    const char *open = "<s:Envelope xmlns:s=\"" MK_SOAP_NS_11 "\"><s:Body><op>";
    const char *close = "</op></s:Body></s:Envelope>";
    run_big(open, "<a>", 100000, close);
    run_big(open, "<item k=\"v\">text &amp; more</item>", 100000, close);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_append_str(&b, open);
    while (b.len <= MK_SOAP_MAX_BYTES)
        mk_buf_append_str(&b, "<x>0123456789abcdef</x>");
    mk_buf_append_str(&b, close);
    LLVMFuzzerTestOneInput((const uint8_t *)b.data, b.len);
    mk_buf_free(&b);
}
