/* A small zip reader for uploaded folders (WireMock's mappings/ and __files/): stored and
 * deflated entries, sizes from the central directory, CRC checked, and every byte inflated
 * counted against MK_IMPORT_MAX_BYTES so a zip bomb stops at the limit. No zip64, no encryption. */
#include "importer/importer_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ZIP_MAX_ENTRIES 20000

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const unsigned char *p)
{
    return le16(p) | le16(p + 2) << 16;
}

bool mk_import_is_zip(const void *data, size_t len)
{
    return len >= 4 && memcmp(data, "PK\3\4", 4) == 0;
}

/* Inflates (or copies) one entry into a new buffer of exactly usize bytes. */
static int entry_bytes(const unsigned char *src, size_t csize, size_t usize, unsigned method,
                       const char *name, unsigned char **out, mk_err_t *err)
{
    unsigned char *buf = malloc(usize + 1);
    if (buf == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (method == 0) {
        if (csize != usize) {
            free(buf);
            return mk_err_set(err, MK_EINVAL, "zip: %s: stored sizes differ", name);
        }
        memcpy(buf, src, usize);
    } else {
        z_stream zs = {0};
        if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
            free(buf);
            return mk_err_set(err, MK_ENOMEM, "zip: inflateInit failed");
        }
        zs.next_in = (unsigned char *)src;
        zs.avail_in = (uInt)csize;
        zs.next_out = buf;
        zs.avail_out = (uInt)usize;
        int zrc = inflate(&zs, Z_FINISH);
        /* Output that would not fit in the declared size is a lie (or a bomb): refused. */
        bool ok = zrc == Z_STREAM_END && zs.total_out == usize;
        inflateEnd(&zs);
        if (!ok) {
            free(buf);
            return mk_err_set(err, MK_EINVAL, "zip: %s: does not inflate to its declared %zu bytes",
                              name, usize);
        }
    }
    buf[usize] = 0;
    *out = buf;
    return 0;
}

int mk_import_unzip(const void *data, size_t len, mk_import_zip_fn fn, void *ud, mk_err_t *err)
{
    const unsigned char *z = data;
    if (len < 22)
        return mk_err_set(err, MK_EINVAL, "zip: too short");
    size_t eocd = len - 22;
    size_t stop = len > 22 + 65535 ? len - 22 - 65535 : 0;
    while (eocd > stop && le32(z + eocd) != 0x06054b50)
        eocd--;
    if (le32(z + eocd) != 0x06054b50)
        return mk_err_set(err, MK_EINVAL, "zip: no end of central directory");
    size_t n = le16(z + eocd + 10);
    size_t cd = le32(z + eocd + 16);
    size_t cdsize = le32(z + eocd + 12);
    if (n > ZIP_MAX_ENTRIES)
        return mk_err_set(err, MK_ETOOBIG, "zip: %zu entries, over the limit of %d", n,
                          ZIP_MAX_ENTRIES);
    if (cd > eocd || cdsize > eocd - cd)
        return mk_err_set(err, MK_EINVAL, "zip: central directory out of bounds (zip64?)");
    size_t total = 0;
    size_t p = cd;
    for (size_t i = 0; i < n; i++) {
        if (p + 46 > eocd || le32(z + p) != 0x02014b50)
            return mk_err_set(err, MK_EINVAL, "zip: central directory entry %zu is damaged", i);
        unsigned flags = le16(z + p + 8), method = le16(z + p + 10);
        uint32_t crc = le32(z + p + 16);
        size_t csize = le32(z + p + 20), usize = le32(z + p + 24);
        size_t namelen = le16(z + p + 28), extra = le16(z + p + 30), comment = le16(z + p + 32);
        size_t local = le32(z + p + 42);
        if (p + 46 + namelen > eocd)
            return mk_err_set(err, MK_EINVAL, "zip: entry %zu: name out of bounds", i);
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)namelen, (const char *)z + p + 46);
        p += 46 + namelen + extra + comment;
        if (name[0] == 0 || name[strlen(name) - 1] == '/')
            continue; /* a folder */
        if (flags & 1)
            return mk_err_set(err, MK_EINVAL, "zip: %s: encrypted entries are not supported", name);
        if (method != 0 && method != 8)
            return mk_err_set(err, MK_EINVAL, "zip: %s: compression method %u is not supported",
                              name, method);
        if (usize > MK_IMPORT_MAX_BYTES - total)
            return mk_err_set(err, MK_ETOOBIG,
                              "zip: %s: the entries inflate past the import limit of %u bytes",
                              name, MK_IMPORT_MAX_BYTES);
        total += usize;
        if (local + 30 > cd || le32(z + local) != 0x04034b50)
            return mk_err_set(err, MK_EINVAL, "zip: %s: local header out of bounds", name);
        size_t start = local + 30 + le16(z + local + 26) + le16(z + local + 28);
        if (start > cd || csize > cd - start)
            return mk_err_set(err, MK_EINVAL, "zip: %s: data out of bounds", name);
        unsigned char *bytes = NULL;
        int rc = entry_bytes(z + start, csize, usize, method, name, &bytes, err);
        if (rc == 0 && (uint32_t)crc32(0, bytes, (uInt)usize) != crc)
            rc = mk_err_set(err, MK_EINVAL, "zip: %s: CRC mismatch", name);
        if (rc == 0)
            rc = fn(ud, name, bytes, usize, err);
        free(bytes);
        if (rc)
            return rc;
    }
    return 0;
}
